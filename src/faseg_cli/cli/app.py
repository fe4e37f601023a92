"""The ``faseg`` Typer application: global options and command registration."""

from __future__ import annotations

import typer

from faseg_cli import __version__
from faseg_cli.cli.console import configure_logging
from faseg_cli.cli.help import Command, Group
from faseg_cli.cli.options import HELP, quiet_option

app = typer.Typer(
    name="faseg",
    help="Segment images by free-text class names with FA-Seg: fast, training-free, open-vocabulary.",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"faseg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=HELP["quiet"]),
) -> None:
    """Global options."""
    configure_logging(quiet)


def _register() -> None:
    """Register every command with its examples, each accepting -q/--quiet after its name too."""
    from faseg_cli.cli import attention, candidates, download, evaluate, segment, serve

    commands = {
        "segment": (segment.segment, segment.EXAMPLES),
        "candidates": (candidates.candidates_command, candidates.EXAMPLES),
        "attention": (attention.attention, attention.EXAMPLES),
        "eval": (evaluate.evaluate, evaluate.EXAMPLES),
        "download": (download.download, download.EXAMPLES),
        "serve": (serve.serve, serve.EXAMPLES),
    }
    for name, (command, examples) in commands.items():
        app.command(name, cls=Command, epilog=examples)(quiet_option(command))


_register()


def main() -> None:
    """Console-script entry point."""
    app()
