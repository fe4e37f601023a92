"""Terminal plumbing shared by all commands.

Results go to stdout as plain text; progress, notes and errors go to stderr through
rich, which drops colours and animation when stderr is not a terminal (a log file, CI,
nohup): progress is then a plain line every ``PlainProgress.every`` items or 30 s. Expected
failures become one ``error:`` line and an exit code, never a traceback. Quiet mode
(the ``faseg`` logger at WARNING) keeps only warnings and errors: no notes, summaries
or progress.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
import warnings
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

import typer
from rich.console import Console

from faseg_cli.errors import FasegError

INTERRUPTED = 130
BROKEN_PIPE = 141
"""Exit status when stdout's reader goes away (``| head``): 128 + SIGPIPE, as the shell reports for ``cat``."""


_live: list = []
"""The progress display being shown, if any: notes and errors print above it."""

_stdout_lock: list = []
"""A lock shared with the other processes of a run (``Workers.whole_lines``), if any."""


def stderr() -> Console:
    """The console for messages: the live progress display's, else one on the current ``sys.stderr``."""
    return _live[-1].console if _live else Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def print_result(text: str) -> None:
    """Write one result line to stdout (above the progress bar when both share the terminal)."""
    if _live and sys.stdout.isatty():
        _live[-1].console.print(text, markup=False, highlight=False, soft_wrap=True)
    elif _stdout_lock:
        with _stdout_lock[-1]():
            typer.echo(text)
    else:
        typer.echo(text)


@contextmanager
def shared_stdout(lock):
    """While inside, result lines are written whole while holding ``lock()``, so processes never interleave them."""
    _stdout_lock.append(lock)
    try:
        yield
    finally:
        _stdout_lock.pop()


class PlainProgress:
    """Progress as plain lines on stderr, for when it is not a terminal: one line every ``every(total)``
    items or every ``SECONDS``, whichever comes first. The same calls as rich's ``Progress`` (one task)."""

    SECONDS = 30.0

    def __init__(self, extra: str | None = None, clock=time.monotonic) -> None:
        self.extra = extra
        self.clock = clock
        self.description, self.total, self.completed, self.fields = "", None, 0, {}
        self.started = self.last_time = clock()
        self.first = self.last_count = 0

    @staticmethod
    def every(total: int | None) -> int:
        """Items between lines: 10, or a twentieth of a longer run."""
        return max(10, (total or 0) // 20)

    def add_task(self, description: str, total: int | None = None, **fields) -> int:
        self.description, self.total, self.fields = description.rstrip("…"), total, fields
        return 0

    def advance(self, task: int, advance: int = 1) -> None:
        self.update(task, completed=self.completed + advance)

    def update(self, task: int, total: int | None = None, completed: int | None = None, **fields) -> None:
        if self.total is None and total is not None:  # the first report: what was done before this run
            self.first = self.last_count = completed or 0
        self.total = self.total if total is None else total
        self.completed = self.completed if completed is None else completed
        self.fields.update(fields)
        now = self.clock()
        due = self.completed - self.last_count >= self.every(self.total) or now - self.last_time >= self.SECONDS
        if self.completed > self.last_count and due:
            self.last_time, self.last_count = now, self.completed
            note(self.line(now))

    def line(self, now: float) -> str:
        """E.g. "Segmented 40/200 (20%), 0:01:10 elapsed, about 0:04:40 left"."""
        total = f"/{self.total} ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.description} {self.completed}{total}"]
        if self.extra:
            parts.append(self.extra.format(task=SimpleNamespace(fields=self.fields)))
        elapsed = now - self.started
        parts.append(f"{_clock(elapsed)} elapsed")
        if self.total and self.completed > self.first:
            left = elapsed / (self.completed - self.first) * (self.total - self.completed)
            parts.append(f"about {_clock(left)} left")
        return ", ".join(parts)


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


@contextmanager
def progress_bar(extra: str | None = None, show: bool = True):
    """A rich progress display on stderr on a terminal (plain lines otherwise, see ``PlainProgress``);
    messages print above it meanwhile.

    Columns: the task's description, bar, done/total, ``extra`` (a template of task
    fields such as ``"mIoU {task.fields[miou]}"``), elapsed and remaining time.
    """
    from rich import progress

    columns = [progress.TextColumn("{task.description}"), progress.BarColumn(), progress.MofNCompleteColumn()]
    columns += [progress.TextColumn(extra)] if extra else []
    columns += [progress.TimeElapsedColumn(), progress.TimeRemainingColumn()]
    console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    if show and not quiet() and not console.is_terminal:
        yield PlainProgress(extra)
        return
    visible = show and not quiet() and console.is_terminal
    options = {"console": console, "disable": not visible, "redirect_stdout": False, "redirect_stderr": False}
    with progress.Progress(*columns, **options) as bar:
        if visible:
            _live.append(bar)
        try:
            yield bar
        finally:
            if visible:
                _live.pop()


def quiet() -> bool:
    """True in quiet mode: only warnings and errors reach stderr."""
    return not logging.getLogger("faseg").isEnabledFor(logging.INFO)


def note(message) -> None:
    """Print an informational message or rich renderable on stderr, unless quiet."""
    if not quiet():
        stderr().print(message, markup=False)


def error(message: str) -> None:
    stderr().print(f"[bold red]error:[/] {_escape(message)}")


def warning(message: str) -> None:
    """Something done as documented but likely not what the user meant (the run goes on)."""
    stderr().print(f"[yellow]warning:[/] {_escape(message)}")


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
    warnings.filterwarnings("ignore", category=UserWarning, module="(diffusers|transformers|torch|huggingface_hub)")


def _discard_stdout() -> None:
    """Point the stdout file descriptor at the null device, so that the interpreter's final
    flush of what is still buffered cannot fail (the Python docs' advice for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def guarded(func):
    """Run a command body, turning expected failures and Ctrl-C into one line and an exit code.

    A closed stdout (``faseg segment ... | head -1``) ends the run at once and silently,
    as it ends Unix tools: files already written are complete.
    """

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
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(BROKEN_PIPE) from None

    return wrapper
