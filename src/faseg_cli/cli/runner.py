"""Process inputs batch by batch with progress on stderr; one bad input never stops the rest."""

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from faseg_cli.cli.console import configure_logging, error, note, progress_bar, shared_stdout
from faseg_cli.errors import DiskFull, FasegError, InputError, UsageError

Entry = TypeVar("Entry")

RUN_TIMEOUT = timedelta(days=7)
"""How long the processes of a run wait for each other at the end (shards may finish hours apart)."""


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
    show: bool = True,
) -> None:
    """For each batch: ``load`` every entry, ``compute`` results for the loaded ones, ``emit`` each.

    Failures of one input (``FasegError`` from load or emit) are reported and counted;
    a failure of ``compute`` fails its whole batch. Usage errors and a full disk still stop the run.
    ``show``: whether to show the progress bar (on a terminal).
    """
    with progress_bar(show=show) as progress:
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
                except DiskFull:
                    raise
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
    *,
    finish: Callable | None = None,
    made_with: Callable | None = None,
    replay: Callable | None = None,
) -> int:
    """The flow every per-image command shares; returns the command's exit code.

    Expands ``batch.inputs`` (a ``BatchOptions``; missing files are reported here),
    plans the output files of each (``kinds``) with the request they are made with
    (``made_with(item)``, see ``provenance``), skips with ``--skip-existing`` those
    whose outputs all exist, decode completely and carry that request (``replay((item,
    plan), records)``, if given, is called for each, in input order, with the records of
    its outputs, to print its result line again), then, only if work remains, checks that
    the output folder can be written (without creating it), calls ``prepare()`` (which
    loads the models and returns the batch ``compute`` function) and processes the
    batches: ``load(path)`` per image (default: the image itself), ``compute(loaded
    items)``, ``emit((item, plan), loaded, result, seconds)``.

    Under ``torchrun`` each process takes every N-th input of the expanded list (a
    stable order, so ``--skip-existing`` resumes a run with the same N), runs on its own
    GPU and writes its own outputs; result lines never interleave, the counts are summed
    and rank 0 prints the summary. ``finish(workers, entries)``, if given, runs on every
    process after the batches while they are still connected (to gather results);
    ``entries`` are all the inputs with their plans, ``(item, plan)``, in order.
    """
    import sys

    import torch

    from faseg_cli.evaluation.sharding import Workers
    from faseg_cli.files.images import load_image
    from faseg_cli.files.inputs import collect_inputs
    from faseg_cli.files.outputs import check_writable, plan_outputs
    from faseg_cli.files.provenance import ResumeCheck

    workers = Workers.from_env()
    if workers.distributed and "-" in batch.inputs:
        raise UsageError("- (paths on stdin) cannot be shared by several processes: give files, folders or patterns")
    if not workers.primary:
        configure_logging(quiet=True)
    found = collect_inputs(batch.inputs, batch.recursive, sys.stdin, batch.null, outputs=batch.output_dir)
    if workers.primary:
        for message in found.notes:
            note(message)
        for message in found.errors:
            error(message)
    tally = Tally(failed=len(found.errors) if workers.primary else 0)
    plans = plan_outputs(found.items, batch.output_dir or Path(), kinds)
    if made_with is not None:
        plans = [replace(plan, request=made_with(item)) for item, plan in zip(found.items, plans)]
    mine = workers.shard(list(zip(found.items, plans)))
    if not found.items and not found.errors:
        raise UsageError("no images to process")
    with workers.connected(torch.device("cpu"), timeout=RUN_TIMEOUT), shared_stdout(workers.whole_lines):
        check, todo = ResumeCheck(), []
        for item, plan in mine:
            if not (batch.skip_existing and check.keep(plan.expected())):
                todo.append((item, plan))
            elif replay is not None:
                replay((item, plan), check.kept)
        tally.skipped = len(mine) - len(todo)
        if workers.primary and (message := check.message("outputs")):
            note(message)
        if todo:
            if kinds:
                check_writable(batch.output_dir)
            workers.use_own_gpu()
            compute = prepare()
            load = load or load_image
            read = lambda entry: load(entry[0].path)  # noqa: E731
            run_batches(todo, batch.batch_size, read, compute, emit, tally, f"{verb}…", show=workers.primary)
        if finish is not None:
            finish(workers, list(zip(found.items, plans)))
        tally = _total(workers, tally)
    if workers.primary:
        report(tally, verb)
    return tally.exit_code


def _total(workers, tally: Tally) -> Tally:
    """The counts of all processes."""
    counts = [tally.done, tally.failed, tally.skipped, round(tally.seconds * 1e6)]
    done, failed, skipped, micros = (int(v) for v in workers.sum(counts))
    return Tally(done, failed, skipped, micros / 1e6)
