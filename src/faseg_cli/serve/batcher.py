"""Gather requests that arrive together into batches; run the batches one at a time.

Pure asyncio, no model: ``compute`` receives a list of items and returns one outcome
per item (a result, or the exception that item failed with). It runs in one
dedicated thread, so batches never overlap and the event loop keeps accepting
requests meanwhile. The queue is bounded (``Busy`` past ``max_queue`` waiting
items); an item whose future is done (its client gave up, or its deadline passed)
before its batch starts is dropped, so the model never computes it; ``refuse``
fails every waiting item at once and ``abandon`` those of the running batch (shutdown).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


class Busy(Exception):
    """The queue is full: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy: {retry_after} s")
        self.retry_after = retry_after


class Refused(Exception):
    """The item was waiting when the batcher was told to refuse work (the server is stopping)."""


@dataclass
class BatchStats:
    """What the batcher has done so far (reported by ``/health``)."""

    requests: int = 0
    batches: int = 0
    largest: int = 0
    dropped: int = 0
    """Items dropped before their batch ran (client gone, deadline passed)."""
    busy: int = 0
    """Items refused because the queue was full."""
    seconds: float = 0.0
    """Time spent computing batches."""


class Batcher:
    """``await submit(item)`` -> its outcome. Waits up to ``max_wait`` seconds for more
    items after the first one of a batch, up to ``max_batch`` items per batch; at most
    ``max_queue`` items wait (None: no limit)."""

    def __init__(
        self, compute: Callable[[list], list], max_batch: int = 4, max_wait: float = 0.02, max_queue: int | None = None
    ) -> None:
        if max_batch < 1 or max_wait < 0 or (max_queue is not None and max_queue < 0):
            raise ValueError("max_batch must be positive, max_wait and max_queue not negative")
        self.compute = compute
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.stats = BatchStats()
        self.refusing = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faseg-model")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: deque = deque()
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._running: list[asyncio.Future] = []
        self._computing = False

    @property
    def busy(self) -> bool:
        """True while the model thread computes a batch."""
        return self._computing

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not counting those already dropped)."""
        return sum(not future.done() for _, future in self._waiting)

    def computing(self, future: asyncio.Future) -> bool:
        """True while the item of ``future`` is in the batch the model thread is computing."""
        return future in self._running

    def future(self, item) -> asyncio.Future:
        """Queue ``item``; its future gets the outcome (an exception instance for a failure).

        Cancel the future to drop the item before it runs. Raises ``Busy`` when the queue
        is full and ``Refused`` once ``refuse`` has been called.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._waiting, self._arrived = loop, deque(), asyncio.Event()
            self._worker = loop.create_task(self._work())
        self.admit()
        future = loop.create_future()
        self._waiting.append((item, future))
        self._arrived.set()
        return future

    def admit(self) -> None:
        """Raise ``Refused`` after ``refuse``, ``Busy`` while the queue is full (checked again by ``future``;
        a server checks it first, before reading and decoding an upload that would be refused)."""
        if self.refusing:
            raise Refused("the server is shutting down")
        if self.max_queue is not None and self.queued >= self.max_queue:
            self.stats.busy += 1
            raise Busy(self.retry_after())

    async def submit(self, item):
        """The outcome of ``item``; an exception raised for it by ``compute`` is raised here."""
        outcome = await self.future(item)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def retry_after(self) -> int:
        """Seconds until the queue has likely room again: the waiting batches at the mean batch time."""
        mean = self.stats.seconds / self.stats.batches if self.stats.batches else 1.0
        return max(1, math.ceil(mean * (self.queued / self.max_batch + 1)))

    def refuse(self) -> int:
        """Fail every waiting item with ``Refused`` and refuse new ones; the running batch goes on.
        Returns how many were refused."""
        self.refusing = True
        refused = 0
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(Refused("the server is shutting down"))
                refused += 1
        return refused

    def abandon(self) -> int:
        """Fail the items of the running batch with ``Refused`` (their computation goes on, unanswered);
        returns how many."""
        running = [future for future in self._running if not future.done()]
        for future in running:
            future.set_result(Refused("the server is shutting down: the request did not finish in time"))
        return len(running)

    async def close(self) -> None:
        """Stop the worker (waiting requests are refused)."""
        self.refuse()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = self._loop = None
        self._thread.shutdown(wait=False)

    async def _next(self, timeout: float | None):
        """The next live waiting item, or None after ``timeout`` seconds (None: wait as long as it takes)."""
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while True:
            while self._waiting:
                item, future = self._waiting.popleft()
                if future.done():
                    self.stats.dropped += 1
                else:
                    return item, future
            self._arrived.clear()
            left = None if end is None else end - loop.time()
            if left is not None and left <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                return None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._next(None)]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                entry = await self._next(max(0.0, deadline - loop.time()))
                if entry is None:
                    break
                batch.append(entry)
            live = [(item, future) for item, future in batch if not future.done()]
            self.stats.dropped += len(batch) - len(live)
            if not live:
                continue
            began = loop.time()
            self._running = [future for _, future in live]
            try:
                outcomes = await loop.run_in_executor(self._thread, self._run, [i for i, _ in live])
            finally:
                self._running = []
            self.stats.seconds += loop.time() - began
            for (_, future), outcome in zip(live, outcomes):
                if not future.done():
                    future.set_result(outcome)

    def _run(self, items: list) -> list:
        """``compute`` on one batch (in the model thread)."""
        self._computing = True
        try:
            outcomes = self.compute(items)
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the failure
            outcomes = [exc] * len(items)
        finally:
            self._computing = False
        self.stats.requests += len(items)
        self.stats.batches += 1
        self.stats.largest = max(self.stats.largest, len(items))
        return outcomes
