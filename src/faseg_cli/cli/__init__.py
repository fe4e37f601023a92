"""The faseg command line: thin Typer commands over the engine."""

from faseg_cli.cli.app import app, main

__all__ = ["app", "main"]
