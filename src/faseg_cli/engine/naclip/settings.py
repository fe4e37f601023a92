"""NACLIP's constants, as one overridable settings object.

Defaults are those of the published code (github sinahmr/NACLIP, commit 0cac3a6,
``naclip.py`` and ``configs/``); ``for_dataset`` applies a benchmark's own config
(whole image for VOC, short side 560 for Cityscapes, background per dataset).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from faseg_cli.errors import UsageError

STUFF = (
    "sky", "wall", "tree", "wood", "grass", "road", "sea", "river", "mountain", "sands", "desk", "bed", "building",
    "cloud", "lamp", "door", "window", "wardrobe", "ceiling", "shelf", "curtain", "stair", "floor", "hill", "rail",
    "fence",
)  # fmt: skip
"""The background queries of the published VOC21 and COCO-Object name files (their line 0)."""


@dataclass(frozen=True)
class NaclipSettings:
    """Everything that changes the maths of a NACLIP segmentation."""

    short_side: int = 336
    """The image is resized (bilinear, aspect kept) so that its short side is this (mmcv ``Resize(2048, 336)``)."""
    long_side: int = 2048
    """...unless that makes the long side exceed this."""
    window: int = 224
    """Side of the sliding windows; 0 = the whole image in one pass (interpolated position embeddings)."""
    stride: int = 112
    """Step between sliding windows."""
    gaussian_std: float = 5.0
    """Standard deviation, in patches, of the Gaussian neighbourhood added to the last block's attention logits."""
    logit_scale: float = 40.0
    """Cosine similarities are multiplied by this before the softmax over queries."""
    threshold: float = 0.1
    """Pixels whose best class probability is below this are background (0 = argmax only)."""
    background: tuple[str, ...] = STUFF
    """Queries whose wins are background (class 0), e.g. ("background",) for Context60; () = no background query."""
    background_ties: bool = False
    """False: a background query equal to a prompt of a requested class is dropped, so that class can win.
    True (the published protocol, ``faseg eval``): it stays, ties with the class, and background wins."""
    pamr_steps: int = 10
    """PAMR refinement iterations; 0 = off."""
    pamr_dilations: tuple[int, ...] = (8, 16)
    """PAMR's neighbourhood rings (pixels at these distances)."""
    pixel_mean: tuple[float, ...] = (122.771, 116.746, 104.094)
    """RGB mean subtracted from 0-255 pixels (CLIP's, as the published preprocessor rounds it)."""
    pixel_std: tuple[float, ...] = (68.501, 66.632, 70.323)
    """RGB standard deviation pixels are divided by."""

    def summary(self) -> dict:
        """What a result line says about how it was made."""
        return {"method": "naclip", "pamr": self.pamr_steps > 0}

    def recorded(self) -> dict:
        """Every field as results record it (``/health``, eval's JSON)."""
        return asdict(self)

    def __post_init__(self) -> None:
        if min(self.short_side, self.long_side) < 1:
            raise UsageError("NACLIP short_side and long_side must be positive")
        if self.window < 0 or self.stride < 1:
            raise UsageError("NACLIP window must be 0 (whole image) or positive, stride positive")
        for name in ("gaussian_std", "logit_scale"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise UsageError(f"NACLIP {name} must be a positive number")
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1")
        if self.pamr_steps < 0 or not self.pamr_dilations or min(self.pamr_dilations) < 1:
            raise UsageError("NACLIP pamr_steps must be 0 or more and pamr_dilations positive")
        if len(self.pixel_mean) != 3 or len(self.pixel_std) != 3 or min(self.pixel_std) <= 0:
            raise UsageError("NACLIP pixel_mean and pixel_std need 3 values, std positive")

    @classmethod
    def from_options(cls, options: dict, dataset: str | None = None, default_threshold: float | None = None):
        """The settings for the command-line choices ``options`` (``pamr``, ``threshold``) and an eval ``dataset``'s
        published configuration; ``default_threshold`` (FA-Seg's per-dataset value) does not apply to NACLIP."""
        settings = cls.for_dataset(dataset) if dataset else cls()
        changes = {"pamr_steps": 0} if not options.get("pamr", True) else {}
        if options.get("threshold") is not None:
            changes["threshold"] = options["threshold"]
        return settings.with_(**changes)

    def with_(self, **changes) -> NaclipSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def for_dataset(cls, name: str) -> NaclipSettings:
        """The published config of an evaluation dataset (``configs/cfg_*.py``), by faseg's dataset name,
        with the published rule for a class that is also a background query (``background_ties``)."""
        return cls(**DATASET_CONFIGS.get(name, NO_BACKGROUND), background_ties=True)


NO_BACKGROUND = {"threshold": 0.0, "background": ()}
DATASET_CONFIGS: dict[str, dict] = {
    "voc": {"window": 0},
    "voc20": {"window": 0, **NO_BACKGROUND},
    "context": {"background": ("background",)},
    "coco-object": {},
    "context59": NO_BACKGROUND,
    "coco-stuff": NO_BACKGROUND,
    "ade": NO_BACKGROUND,
    "cityscapes": {"short_side": 560, **NO_BACKGROUND},
}
"""Per-dataset changes to the defaults, from the published ``configs/cfg_*.py``."""
