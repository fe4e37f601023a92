"""Terminal plumbing shared by all commands.

Results go to stdout as plain text; progress, notes and errors go to stderr through
rich, which drops colours and animation when stderr is not a terminal. Expected
failures become one ``error:`` line and an exit code, never a traceback.
"""

from __future__ import annotations

import functools
import logging
import warnings

import typer
from rich.console import Console

from faseg_cli.errors import FasegError

INTERRUPTED = 130


def stderr() -> Console:
    """A console on the current ``sys.stderr`` (looked up at print time, so tests can capture it)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def note(message: str) -> None:
    stderr().print(message, markup=False)


def error(message: str) -> None:
    stderr().print(f"[bold red]error:[/] {_escape(message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        stderr().print(f"[{style}]{_escape(record.getMessage())}[/]")


def configure_logging(quiet: bool) -> None:
    """Route the engine's ``faseg`` logger to stderr and silence library chatter."""
    logger = logging.getLogger("faseg")
    logger.handlers[:] = [_StderrHandler()]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(diffusers|transformers|torch)")


def guarded(func):
    """Run a command body, turning expected failures and Ctrl-C into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FasegError as exc:
            error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(INTERRUPTED) from None

    return wrapper
