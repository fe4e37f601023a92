"""`python -m faseg_cli` runs the command-line tool."""

from faseg_cli.cli import main

main()
