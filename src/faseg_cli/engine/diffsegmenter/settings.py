"""DiffSegmenter's constants, as one overridable settings object (SPEC §6.1).

Defaults are the published VOC script's (github VCG-team/DiffSegmenter @ b3a8686,
``open_vocabulary/voc12/ptp_stable_best.py``); ``for_dataset`` applies the Context and
COCO-Object scripts' prefix, "-ing" token and class names. Where the published code is
unseeded (the noise) or sweeps a value on the validation set (the background), faseg's
choices are the defaults: seed 4307, background 0.5.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from faseg_cli.errors import UsageError

VOC_NAMES = (
    ("aeroplane", "plane"), ("bus", "buses"), ("dining table", "table"), ("person", "people"),
    ("potted plant", "plant"), ("tv monitor", "monitor"),
)  # fmt: skip
"""Published VOC script's prompt names (its ``embs``) where they differ from faseg's VOC class names."""
CONTEXT_NAMES = (("aeroplane", "airplane"), ("potted plant", "plant"), ("tv monitor", "monitor"))
"""Published Context script's (``voc10/ptp_stable_voc10.py``) prompt names that differ from faseg's."""
COCO_NAMES = (
    ("motorcycle", "motorbike"), ("airplane", "aeroplane"), ("couch", "sofa"), ("potted plant", "pottedplant"),
    ("dining table", "diningtable"), ("tv", "tvmonitor"), ("toothbrush", "toothbrus"),
)  # fmt: skip
"""Published COCO script's prompt names that differ from faseg's COCO names (``toothbrus`` as published)."""

DATASETS = {
    "voc": {"names": VOC_NAMES},
    "voc20": {"names": VOC_NAMES},
    "context": {"prefix": "a photography of", "names": CONTEXT_NAMES},
    "context59": {"prefix": "a photography of", "names": CONTEXT_NAMES},
    "coco-object": {"prefix": "a photography of", "names": COCO_NAMES, "ing_offset": 2},
}
"""Each eval dataset's published configuration (datasets not named use the VOC script's defaults)."""


@dataclass(frozen=True)
class DiffSegmenterSettings:
    """Everything that changes the maths of a DiffSegmenter segmentation."""

    resolution: int = 512
    """Side of the square the image is resized to (bilinear) before the VAE (a multiple of 64)."""
    prefix: str = "a photograph of"
    """BLIP continues ``"<prefix> <class>"`` (Context and COCO-Object scripts: "a photography of")."""
    max_length: int = 20
    """BLIP's output length in tokens, prefix included (``generate()``'s default in transformers 4.36)."""
    token_weight: float = 1.21
    """Weight of the class word in the prompt (compel's ``++``: 1.1 squared)."""
    timestep: int = 100
    """Timestep of the noised latent and of the one UNet pass."""
    seed: int = 4307
    """Seed of the CPU generator of the latent noise, re-seeded for every image (faseg's choice; unseeded as
    published)."""
    weights: tuple[float, ...] = (0.3, 0.5, 0.1, 0.1)
    """Weights of the min-maxed cross maps per resolution, coarse to fine (8, 16, 32, 64 at 512 px)."""
    ing_offset: int = 1
    """When the word after the class ends in "ing", the class token is averaged with the token this far after it
    (COCO-Object script: 2)."""
    threshold: float = 0.5
    """The constant background score (faseg's choice: the published code sweeps 0.30-0.74 on the val set)."""
    names: tuple[tuple[str, str], ...] = ()
    """``(class, prompt name)`` pairs: the published scripts' own names for some dataset classes."""
    classes_per_pass: int = 0
    """Most classes of one image per UNet batch; 0 = as many as ``MEMORY_BUDGET`` allows (results do not depend
    on it beyond fp32 rounding)."""

    def __post_init__(self) -> None:
        if self.resolution < 64 or self.resolution % 64:
            raise UsageError(f"--resolution {self.resolution}: must be a positive multiple of 64")
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1")
        if not 0 <= self.timestep <= 999:
            raise UsageError(f"DiffSegmenter timestep {self.timestep}: must be between 0 and 999")
        if len(self.weights) != 4 or any(not math.isfinite(w) or w < 0 for w in self.weights):
            raise UsageError("DiffSegmenter weights: expected 4 non-negative numbers")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be non-negative")
        if self.max_length < 2 or self.classes_per_pass < 0 or self.ing_offset < 1:
            raise UsageError("DiffSegmenter max_length >= 2, classes_per_pass >= 0 and ing_offset >= 1")

    def recorded(self) -> dict:
        """Every field as results record it (``/health``, eval's JSON)."""
        return asdict(self)

    def summary(self) -> dict:
        """What a result line says about how it was made."""
        return {"method": "diffsegmenter", "timestep": self.timestep, "seed": self.seed}

    @property
    def latent_size(self) -> int:
        return self.resolution // 8

    def level_weights(self) -> dict[int, float]:
        """``{resolution: weight}`` for this input size (8, 16, 32, 64 at 512 px)."""
        return {self.latent_size // level: w for level, w in zip((8, 4, 2, 1), self.weights)}

    def prompt_name(self, name: str) -> str:
        """The name the prompt uses for class ``name``."""
        return dict(self.names).get(name, name)

    def with_(self, **changes) -> DiffSegmenterSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def for_dataset(cls, name: str) -> DiffSegmenterSettings:
        """The published script's configuration for eval dataset ``name``."""
        return cls(**DATASETS.get(name, {}))

    @classmethod
    def from_options(cls, options: dict, dataset: str | None = None, default_threshold: float | None = None):
        """The settings for the command-line choices ``options`` (``resolution``, ``seed``, ``threshold``) and an
        eval ``dataset``; ``default_threshold`` (FA-Seg's per-dataset value) does not apply."""
        settings = cls.for_dataset(dataset) if dataset else cls()
        changes = {k: options[k] for k in ("resolution", "seed", "threshold") if options.get(k) is not None}
        return settings.with_(**changes)
