"""The ``faseg`` Typer application: global options and command registration."""

from __future__ import annotations

import sys

import typer

from faseg_cli import __version__
from faseg_cli.cli.console import CLICK_ERROR, CLICK_USAGE_ERROR, configure_logging, usage_error
from faseg_cli.cli.help import Command, Group
from faseg_cli.cli.options import HELP, quiet_option


class FasegGroup(Group):
    """The ``faseg`` group: every command-line error (missing argument, unknown option or command, bad
    value) is one ``error:`` line and one hint line with exit code 2, never Typer's multi-line box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except CLICK_ERROR as exc:
            code = usage_error(exc)
        except typer.Abort:
            code = 1
        sys.exit(code if isinstance(code, int) else 0)

    def resolve_command(self, ctx, args):
        """An unknown command names the ones that exist and the one most likely meant."""
        import difflib

        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            commands = self.list_commands(ctx)
            close = difflib.get_close_matches(name, commands, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise CLICK_USAGE_ERROR(f"no command {name!r}{hint}: expected one of {', '.join(commands)}", ctx)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="faseg",
    help="Segment images by free-text class names with FA-Seg: fast, training-free, open-vocabulary.",
    cls=FasegGroup,
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
    from faseg_cli.cli import attention, candidates, download, evaluate, listing, segment, serve

    commands = {
        "segment": (segment.segment, segment.EXAMPLES),
        "candidates": (candidates.candidates_command, candidates.EXAMPLES),
        "attention": (attention.attention, attention.EXAMPLES),
        "eval": (evaluate.evaluate, evaluate.EXAMPLES),
        "download": (download.download, download.EXAMPLES),
        "models": (listing.models_command, listing.MODELS_EXAMPLES),
        "vocab": (listing.vocab_command, listing.VOCAB_EXAMPLES),
        "serve": (serve.serve, serve.EXAMPLES),
    }
    for name, (command, examples) in commands.items():
        app.command(name, cls=Command, epilog=examples)(quiet_option(command))


_register()


def main() -> None:
    """Console-script entry point."""
    app()
