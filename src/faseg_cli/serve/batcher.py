"""Gather requests that arrive together into batches; run the batches one at a time.

Pure asyncio, no model: ``compute`` receives a list of items and returns one outcome
per item (a result, or the exception that item failed with). It runs in one
dedicated thread, so batches never overlap and the event loop keeps accepting
requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class BatchStats:
    """What the batcher has done so far (reported by ``/health``)."""

    requests: int = 0
    batches: int = 0
    largest: int = 0


class Batcher:
    """``await submit(item)`` -> its outcome. Waits up to ``max_wait`` seconds for more
    items after the first one of a batch, up to ``max_batch`` items per batch."""

    def __init__(self, compute: Callable[[list], list], max_batch: int = 4, max_wait: float = 0.02) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be positive and max_wait not negative")
        self.compute = compute
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats = BatchStats()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faseg-model")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def submit(self, item):
        """The outcome of ``item``; an exception raised for it by ``compute`` is raised here."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work())
        future = loop.create_future()
        await self._queue.put((item, future))
        outcome = await future
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def close(self) -> None:
        """Stop the worker (pending requests are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = self._loop = self._queue = None

    async def _work(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                try:
                    batch.append(queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(queue.get(), timeout))
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                continue
            outcomes = await asyncio.get_running_loop().run_in_executor(self._thread, self._run, [i for i, _ in live])
            for (_, future), outcome in zip(live, outcomes):
                if not future.done():
                    future.set_result(outcome)

    def _run(self, items: list) -> list:
        """``compute`` on one batch (in the model thread)."""
        try:
            outcomes = self.compute(items)
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the failure
            outcomes = [exc] * len(items)
        self.stats.requests += len(items)
        self.stats.batches += 1
        self.stats.largest = max(self.stats.largest, len(items))
        return outcomes
