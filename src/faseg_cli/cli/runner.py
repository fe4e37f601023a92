"""Process inputs batch by batch with progress on stderr; one bad input never stops the rest."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from faseg_cli.cli.console import error, note, progress_bar
from faseg_cli.errors import FasegError, InputError, UsageError

Entry = TypeVar("Entry")


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def summary(self, verb: str) -> str:
        per = f" ({self.seconds / self.done:.2f} s/image)" if self.done else ""
        parts = [f"{verb} {self.done} image{'s' * (self.done != 1)} in {self.seconds:.1f} s{per}"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (already done)")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return "; ".join(parts)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def run_batches(
    entries: Sequence[Entry],
    batch_size: int,
    load: Callable[[Entry], object],
    compute: Callable[[list], list],
    emit: Callable[[Entry, object, object, float], None],
    tally: Tally,
    description: str,
) -> None:
    """For each batch: ``load`` every entry, ``compute`` results for the loaded ones, ``emit`` each.

    Failures of one input (``FasegError`` from load or emit) are reported and counted;
    a failure of ``compute`` fails its whole batch. Usage errors still stop the run.
    """
    with progress_bar() as progress:
        task = progress.add_task(description, total=len(entries))
        for start in range(0, len(entries), batch_size):
            loaded = []
            for entry in entries[start : start + batch_size]:
                try:
                    loaded.append((entry, load(entry)))
                except InputError as exc:
                    _fail(tally, str(exc))
                    progress.advance(task)
            if not loaded:
                continue
            began = time.perf_counter()
            try:
                results = compute([item for _, item in loaded])
            except UsageError:
                raise
            except FasegError as exc:
                for _ in loaded:
                    _fail(tally, str(exc))
                progress.advance(task, len(loaded))
                continue
            share = (time.perf_counter() - began) / len(loaded)
            for (entry, item), result in zip(loaded, results):
                try:
                    emit(entry, item, result, share)
                    tally.done += 1
                    tally.seconds += share
                except FasegError as exc:
                    _fail(tally, str(exc))
                progress.advance(task)


def _fail(tally: Tally, message: str) -> None:
    tally.failed += 1
    error(message)


def report(tally: Tally, verb: str) -> None:
    """Print the closing summary line on stderr."""
    note(tally.summary(verb))


def run_image_command(
    batch,
    kinds: list,
    prepare: Callable[[], Callable[[list], list]],
    emit: Callable,
    verb: str,
    load: Callable | None = None,
) -> int:
    """The flow every per-image command shares; returns the command's exit code.

    Expands ``batch.inputs`` (a ``BatchOptions``), plans the output files of each
    (``kinds``), skips finished ones with ``--skip-existing``, then, only if work
    remains, calls ``prepare()`` (which loads the models and returns the batch
    ``compute`` function) and processes the batches: ``load(path)`` per image (default:
    the image itself), ``compute(loaded items)``, ``emit((item, plan), loaded, result, seconds)``.
    """
    import sys

    from faseg_cli.images import load_image
    from faseg_cli.inputs import collect_inputs
    from faseg_cli.outputs import ensure_writable, plan_outputs

    found = collect_inputs(batch.inputs, batch.recursive, sys.stdin, batch.null)
    for message in found.notes:
        note(message)
    for message in found.errors:
        error(message)
    tally = Tally(failed=len(found.errors))
    plans = plan_outputs(found.items, batch.output_dir or Path(), kinds)
    todo = [(item, plan) for item, plan in zip(found.items, plans) if not (batch.skip_existing and plan.done())]
    tally.skipped = len(found.items) - len(todo)
    if not found.items and not found.errors:
        raise UsageError("no images to process")
    if todo:
        if kinds:
            ensure_writable(batch.output_dir)
        compute = prepare()
        load = load or load_image
        run_batches(todo, batch.batch_size, lambda entry: load(entry[0].path), compute, emit, tally, f"{verb}…")
    report(tally, verb)
    return tally.exit_code
