from datacap.cli import main

main()
