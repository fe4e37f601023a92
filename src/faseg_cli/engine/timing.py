"""Optional per-stage wall-clock timing of the engine, for benchmarks and profiling."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch


class StageTimer:
    """Collects the seconds spent in each named stage; waits for the GPU so its work is counted."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    @contextmanager
    def __call__(self, stage: str):
        self._sync()
        began = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[stage].append(time.perf_counter() - began)
