"""iSeg's constants and its per-dataset configurations as the published open-vocabulary code sets them.

``IsegSettings()`` is the VOC configuration, which ``faseg segment`` uses; ``for_dataset`` gives the
Context and COCO-Object ones for ``faseg eval`` (SPEC §6.2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from faseg_cli.errors import UsageError

SQUARED_BACKGROUND = (3 - 5**0.5) / 2
"""VOC's and Context's background rule as a threshold: the published background score ``(1 - m)^2`` of a pixel
whose best class scores ``m`` wins the argmax exactly when ``m < 0.382`` (COCO-Object's rule is a threshold,
0.45), so ``scores.labels_from_scores`` gives both rules' labels."""

VOC_HEADS = {
    32: (22, 5, 21, 13, 8, 27, 28, 6, 25),
    16: (76, 1, 43, 17, 81, 6, 44, 27, 2, 8, 22, 20, 60, 78, 12, 83, 94, 47, 88, 96, 3,
         33, 46, 52, 77, 93, 51, 58, 0, 13, 14, 19, 34, 41, 59, 87, 16, 24, 28, 30, 32),
}  # fmt: skip
"""The VOC configuration's cross-attention heads per resolution, counted across that resolution's recorded
layers in forward order (res 32: 3 layers x 10 heads; res 16: 5 layers x 20 heads)."""

VOC_CONTEXT = "ground, land, grass, tree, building, wall, sky, lake, water"
COCO_CONTEXT = "ground, land, grass, tree, building, wall, sky, lake, water, river, sea, railway, "
"""The background context strings as the published code ends up with them: the rest of each intended list is a
separate statement there and never reaches the prompt."""


@dataclass(frozen=True)
class IsegSettings:
    """Everything that changes iSeg's maths; the defaults are the published VOC configuration."""

    iterations: int = 8
    """N: refinement steps with the entropy-reduced self-attention."""
    ers_strength: float = 0.015
    """lambda of ``A + lambda * log10(e * A)``."""
    heads: dict[int, tuple[int, ...]] | None = field(default_factory=lambda: dict(VOC_HEADS))
    """Cross-attention heads averaged per resolution (None: all heads)."""
    threshold: float = SQUARED_BACKGROUND
    """Pixels whose best class score (after the second min-max) is below this are background: 0.382 is VOC's and
    Context's rule (background score (1 - best)^2), COCO-Object's is 0.45."""
    context: str = VOC_CONTEXT
    """Text glued, without a separator, after "... and other object and background" in the prompt."""
    gamma: float = 1.6
    """Factor on the class tokens' text-encoder outputs."""
    cluster: bool = True
    """DFC-KL cluster smoothing of the fused cross-attention."""
    timestep: int = 100
    seed: int = 1101
    """Seed of the CPU generator of the noise added at ``timestep``, re-seeded for every image."""
    names: str | None = None
    """The published configuration whose class names and token choices the prompt uses (``faseg eval``); None:
    the classes as given, every token of each."""
    resolution: int = 512
    """The square the image is resized to; iSeg's maths is fixed to its 64 x 64 latent."""

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise UsageError(f"iSeg iterations {self.iterations}: must be at least 0")
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1")
        if not 0 <= self.timestep <= 999:
            raise UsageError(f"iSeg timestep {self.timestep}: must be between 0 and 999")
        if self.resolution != 512:
            raise UsageError(f"--resolution {self.resolution}: iSeg runs at 512 only (its maths is fixed to 64 x 64)")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be non-negative")

    def recorded(self) -> dict:
        """Every field as results record it (``/health``, eval's JSON)."""
        return asdict(self)

    def summary(self) -> dict:
        """What a result line says about how it was made."""
        return {"method": "iseg", "iterations": self.iterations, "lambda": self.ers_strength, "seed": self.seed}

    def with_(self, **changes) -> IsegSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def for_dataset(cls, name: str) -> IsegSettings:
        """The published configuration for eval dataset ``name`` (its constants and class names)."""
        return for_dataset(name)

    @classmethod
    def from_options(cls, options: dict, dataset: str | None = None, default_threshold: float | None = None):
        """The settings for the command-line choices ``options`` (``seed``, ``threshold``) and an eval ``dataset``;
        FA-Seg's per-dataset ``default_threshold`` does not apply."""
        settings = cls.for_dataset(dataset) if dataset else cls()
        return settings.with_(**{k: options[k] for k in ("seed", "threshold") if options.get(k) is not None})


DATASET_CONFIGS = {
    "voc": {},
    "context": {"iterations": 5, "ers_strength": 0.002, "heads": None, "context": ""},
    "coco-object": {
        "iterations": 10,
        "ers_strength": 0.2,
        "heads": None,
        "threshold": 0.45,
        "context": COCO_CONTEXT,
    },
}
"""The published configuration per dataset family, as changes to the VOC one."""


def config_family(dataset: str) -> str:
    """Which published configuration a faseg dataset uses: voc/voc20 -> voc, context/context59 -> context,
    coco-object; other datasets have none and use the VOC one."""
    for family in DATASET_CONFIGS:
        if dataset == family or dataset.rstrip("0123456789") == family:
            return family
    return "voc"


def for_dataset(dataset: str, settings: IsegSettings | None = None) -> IsegSettings:
    """``settings`` (default: VOC's) with the published constants and class names of ``dataset``'s configuration."""
    family = config_family(dataset)
    return replace(settings or IsegSettings(), names=family, **DATASET_CONFIGS[family])
