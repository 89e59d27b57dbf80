from datacap.cli.glance import main

main()
