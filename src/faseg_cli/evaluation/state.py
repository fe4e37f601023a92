"""What an evaluation has done so far, saved after every batch so that it can be resumed.

The state holds one confusion matrix per threshold, the ids of the samples counted
in them, and the compute time spent, plus a *fingerprint* of everything that
changes the numbers (dataset, model, settings, sources, thresholds, process
layout). It is written atomically, so an interruption leaves the previous batch's
state; resuming with a different fingerprint is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faseg_cli.errors import UsageError
from faseg_cli.evaluation.metrics import ConfusionMatrix
from faseg_cli.files.outputs import atomic_write

VERSION = 1


class DamagedState(Exception):
    """A state file that cannot be read back: the run starts over (and replaces it)."""


@dataclass
class EvalState:
    fingerprint: dict[str, Any]
    matrices: list[ConfusionMatrix]
    finished: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def new(cls, fingerprint: dict[str, Any], count: int, num_classes: int) -> EvalState:
        """An empty state with ``count`` matrices."""
        return cls(fingerprint, [ConfusionMatrix(num_classes) for _ in range(count)])

    def save(self, path: Path) -> None:
        data = {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "finished": self.finished,
            "seconds": self.seconds,
            "matrices": [m.to_dict() for m in self.matrices],
        }
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data), "utf-8"))

    @classmethod
    def load(cls, path: Path, fingerprint: dict[str, Any]) -> EvalState | None:
        """The state saved at ``path`` (None if there is none); refuses one made by a different run
        (``UsageError``), ``DamagedState`` when it cannot be read back."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')}")
            state = cls(
                data["fingerprint"],
                [ConfusionMatrix.from_dict(m) for m in data["matrices"]],
                [str(i) for i in data["finished"]],
                float(data["seconds"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DamagedState(f"{path} is damaged or not a faseg evaluation state ({exc})") from None
        keys = {**fingerprint, **state.fingerprint}
        changed = [key for key in keys if state.fingerprint.get(key) != fingerprint.get(key)]
        if changed:
            raise UsageError(
                f"cannot resume from {path}: it was made with a different {', '.join(changed)}; "
                "run without --resume to start over"
            )
        return state


def state_path(output: Path, rank: int, world_size: int) -> Path:
    """Where the state of the run writing ``output`` lives: beside it, one file per process."""
    suffix = ".partial" if world_size == 1 else f".partial-{rank}-of-{world_size}"
    return output.with_name(output.name + suffix)
