"""The FA-Seg constants, as one overridable settings object.

Defaults are the reference values (SPEC §2, published code). Per-resolution weights
are listed coarse to fine: the latent size divided by 8, 4, 2 and 1, which is
8, 16, 32 and 64 at the default 512 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from faseg_cli.errors import UsageError

LEVELS = (8, 4, 2, 1)
"""Divisors of the latent size that the weight tuples refer to, coarse to fine."""

INVERSIONS = ("ddim", "none", "euler")
"""``ddim``: the published code (a DDIM step, then the recorded pass); ``none``: one recorded pass on the
clean latent; ``euler``: a rectified-flow Euler step (the paper's reading, an ablation). Kept here, free of
torch, so that the command line can check the choice without loading the engine."""


@dataclass(frozen=True)
class FasegSettings:
    """Everything that changes the maths of a segmentation."""

    resolution: int = 512
    """Side of the square the image is resized to before the VAE (a multiple of 64)."""
    cross_weights: tuple[float, ...] = (0.15, 0.70, 0.15, 0.0)
    """Weights of the cross-attention maps per level (SPEC §2.6)."""
    self_weights: tuple[float, ...] = (0.1, 0.1, 0.5, 0.3)
    """Weights of the refined maps per level (SPEC §2.7)."""
    tau: int = 2
    """Power of the lifted self-attention affinity."""
    threshold: float = 0.55
    """Pixels whose best class score is below this are background."""
    flip: bool = True
    """Test-time flipping: average with the mirrored image's prediction."""
    refine: bool = True
    """Refine the fused cross-attention with self-attention (HARD); off = min-max of the fused map."""
    inversion: str = "ddim"
    """How the latent reaches the recording timestep (``INVERSIONS``): ``ddim`` is the published code's
    DDIM step with the UNet, then a second, recorded pass; ``none`` one recorded pass on the clean latent (faster,
    an approximation); ``euler`` a rectified-flow Euler step (ablation)."""
    timestep: int | None = None
    """Timestep (0-999) of the recorded pass; None: 1 for ``ddim`` and ``euler`` (as published), 0 for ``none``."""

    def __post_init__(self) -> None:
        if self.resolution < 64 or self.resolution % 64:
            raise UsageError(f"--resolution {self.resolution}: must be a positive multiple of 64")
        for name in ("cross_weights", "self_weights"):
            weights = getattr(self, name)
            if len(weights) != len(LEVELS) or any(not math.isfinite(w) or w < 0 for w in weights):
                raise UsageError(f"--{name.replace('_', '-')}: expected {len(LEVELS)} non-negative numbers")
            if sum(weights) == 0:
                raise UsageError(f"--{name.replace('_', '-')}: at least one weight must be positive")
        if self.tau < 1:
            raise UsageError(f"--tau {self.tau}: must be at least 1")
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1")
        if self.inversion not in INVERSIONS:
            raise UsageError(f"--inversion {self.inversion}: expected one of {', '.join(INVERSIONS)}")
        if self.timestep is not None and not 0 <= self.timestep <= 999:
            raise UsageError(f"--timestep {self.timestep}: must be between 0 and 999")

    def summary(self) -> dict:
        """What a result line says about how it was made."""
        return {"method": "fa-seg", "inversion": self.inversion, "timestep": self.record_timestep}

    @property
    def record_timestep(self) -> int:
        """The timestep attention is recorded at."""
        if self.timestep is not None:
            return self.timestep
        return 0 if self.inversion == "none" else 1

    @property
    def latent_size(self) -> int:
        return self.resolution // 8

    def level_weights(self, weights: tuple[float, ...]) -> dict[int, float]:
        """Map a per-level weight tuple to ``{resolution: weight}`` for this input size."""
        return {self.latent_size // level: w for level, w in zip(LEVELS, weights)}

    def with_(self, **changes) -> FasegSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def parse_weights(text: str) -> tuple[float, ...]:
    """Parse ``"0.15,0.7,0.15,0"`` into a tuple of floats."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"{text!r}: expected comma-separated numbers, e.g. 0.15,0.7,0.15,0") from None
