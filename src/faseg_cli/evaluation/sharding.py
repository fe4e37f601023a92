"""Several processes, one run: each takes a strided shard of a split (or a folder); evaluation counts are summed.

Launchers (``torchrun``, ``accelerate launch``) start one process per device and set
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
Without them there is one process and torch.distributed is never touched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from faseg_cli.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: no flock; lines are written unlocked there
    fcntl = None

T = TypeVar("T")


class Workers:
    """This process's place among the processes of a run."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0) -> None:
        if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
            raise UsageError(f"rank {rank} of {world_size} processes (local rank {local_rank}) is not a valid launch")
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self._device = torch.device("cpu")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Workers:
        """Read the launcher's variables; a single process when they are absent."""
        environ = os.environ if environ is None else environ
        try:
            rank = int(environ.get("RANK", 0))
            world_size = int(environ.get("WORLD_SIZE", 1))
            local_rank = int(environ.get("LOCAL_RANK", rank))
        except ValueError:
            raise UsageError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
        return cls(rank, world_size, local_rank)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def primary(self) -> bool:
        """Whether this process reports and writes the results (rank 0)."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share: every ``world_size``-th item starting at ``rank``."""
        return list(items[self.rank :: self.world_size])

    def device(self, spec: str) -> str:
        """``auto`` or ``cuda`` become this process's own GPU, ``cuda:LOCAL_RANK``, when several share CUDA."""
        if self.distributed and spec.strip().lower() in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return spec

    def use_own_gpu(self) -> None:
        """Make ``cuda`` (and ``auto``) mean this process's GPU, ``cuda:LOCAL_RANK``, when several share CUDA."""
        if self.distributed and torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)

    @contextmanager
    def connected(self, device: torch.device, timeout: timedelta | None = None) -> Iterator[Workers]:
        """Join the process group for the run (NCCL on CUDA, else Gloo); leave it afterwards.

        ``timeout`` bounds how long one process waits for the others (torch's default if None).
        """
        dist = torch.distributed
        if not self.distributed or dist.is_initialized():
            yield self
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(device)
        self._device = device if backend == "nccl" else torch.device("cpu")
        extra = {"timeout": timeout} if timeout is not None else {}
        dist.init_process_group(backend, rank=self.rank, world_size=self.world_size, **extra)
        try:
            yield self
            dist.barrier()  # every process has written its last line: the line lock can go
        finally:
            if self.local_rank == 0:  # one process per machine removes that machine's lock file
                self._lock_path().unlink(missing_ok=True)
            dist.destroy_process_group()

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum of an int64 array over all processes (the array itself when alone)."""
        values = np.asarray(values, dtype=np.int64)
        if not self.distributed:
            return values
        tensor = torch.from_numpy(values.copy()).to(self._device)
        torch.distributed.all_reduce(tensor)
        return tensor.cpu().numpy()

    def gather(self, value: T) -> list[T]:
        """``value`` from every process, in rank order (``[value]`` when alone)."""
        if not self.distributed:
            return [value]
        values: list = [None] * self.world_size
        torch.distributed.all_gather_object(values, value)
        return values

    @staticmethod
    def _lock_path() -> Path:
        """The file locked by ``whole_lines``: one per run and machine, removed when the run leaves ``connected``."""
        from faseg_cli.files.outputs import safe_name

        env = os.environ
        run = env.get("TORCHELASTIC_RUN_ID") or f"{env.get('MASTER_ADDR')}-{env.get('MASTER_PORT')}"
        return Path(tempfile.gettempdir()) / f"faseg-stdout-{safe_name(run)}.lock"

    @contextmanager
    def whole_lines(self) -> Iterator[None]:
        """Hold a lock shared by this run's processes on this machine, so lines they write never interleave."""
        if not self.distributed or fcntl is None:
            yield
            return
        with open(self._lock_path(), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
