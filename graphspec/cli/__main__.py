from graphspec.cli import main

main()
