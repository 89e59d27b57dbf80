from datacap.glance import main

main()
