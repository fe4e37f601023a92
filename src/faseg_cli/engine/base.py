"""What every method shares: the ``Segmentation`` result and ``SegmenterBase``.

Each method's segmenter (listed in ``methods``) implements ``_segment``; the base's
``segment_batch`` loads the images and checks the class lists around it, ``segment``
does one image, and the device choice is shared, so every command drives every method
the same way.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faseg_cli.engine.scores import labels_from_scores
from faseg_cli.files.images import load_image, to_rgb
from faseg_cli.vocabularies import validate_classes

log = logging.getLogger("faseg")


@dataclass
class AttentionMaps:
    """One image's intermediate maps, exactly those its mask is computed from.

    G is 2 with test-time flipping (original, mirrored) and 1 without; L the latent size.
    """

    cross: dict[int, torch.Tensor]
    """r -> ``(G, K, r, r)`` class cross-attention (mean over each class's tokens)."""
    self_: dict[int, torch.Tensor]
    """r -> ``(G, r*r, r*r)`` self-attention, rows = queries."""
    fused: torch.Tensor
    """``(G, K, L, L)`` weighted cross-attention."""
    refined: torch.Tensor
    """``(G, K, L, L)`` after the self-attention refinement (FA-Seg: HARD), before flipping back."""
    refinement: str = "HARD"
    """What the refinement is called in heat maps."""
    refined_scaled: bool = True
    """Whether ``refined`` is on the 0-1 scale of the scores (FA-Seg); heat maps min-max scale it otherwise."""
    steps: dict[str, torch.Tensor] = field(default_factory=dict)
    """A method's own ``(G, K, L, L)`` maps between the fused and the refined one, by title (iSeg's clustered map)."""


def attention_npz(result: Segmentation, settings, extra: dict[str, torch.Tensor] | None = None, **texts) -> dict:
    """The arrays of ``attention.npz`` for ``result`` (segmented with ``keep_maps``): ``cross_{r}``, ``self_{r}``,
    ``fused``, ``refined`` and the method's ``extra`` maps as float32; ``scores``, ``labels``, ``classes``; each of
    ``texts`` (a string or a list of them) as a string array; ``settings`` as JSON text."""
    maps = result.maps
    arrays = {f"cross_{r}": t for r, t in maps.cross.items()}
    arrays.update({f"self_{r}": t for r, t in maps.self_.items()})
    arrays.update(fused=maps.fused, refined=maps.refined, **(extra or {}))
    out = {name: t.float().cpu().numpy() for name, t in arrays.items()}
    out.update(scores=result.scores, labels=result.labels, classes=np.array(result.classes, dtype=str))
    out.update({name: np.array(text, dtype=str) for name, text in texts.items()})
    out["settings"] = np.array(json.dumps(asdict(settings)))
    return out


@dataclass
class Segmentation:
    """The result for one image."""

    classes: list[str]
    labels: np.ndarray
    """``(H, W)`` uint8 at the image's displayed size: 0 background, k the k-th class."""
    scores: np.ndarray
    """``(K, R, R)`` float32 class scores after flipping back, at the processing resolution."""
    prompt: str
    maps: AttentionMaps | None = None
    background: np.ndarray | None = None
    """NACLIP: bool, like one score map: pixels its background queries win (background at every threshold)."""
    class_prompts: list[str] | None = None
    """DiffSegmenter: each class's own prompt (``prompt`` joins them with " | ")."""

    @classmethod
    def empty(cls, height: int, width: int) -> Segmentation:
        """The result for an empty class list: all background."""
        return cls([], np.zeros((height, width), np.uint8), np.zeros((0, height, width), np.float32), "")

    def labels_at(self, threshold: float) -> np.ndarray:
        """uint8 labels at the scores' resolution for another background threshold, as the method thresholds."""
        background = None if self.background is None else torch.from_numpy(self.background)
        return labels_from_scores(torch.from_numpy(self.scores), threshold, background).numpy().astype(np.uint8)

    def fractions(self) -> dict[str, float]:
        """Share of the image's pixels per label, background first."""
        return label_fractions(self.labels, self.classes)


def label_fractions(labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Share of a label map's pixels per label (0 background, k the k-th class), background first; they sum
    to 1 (no class is named ``background``: ``vocabularies.RESERVED``)."""
    counts = np.bincount(labels.ravel(), minlength=len(classes) + 1) / labels.size
    return {name: float(c) for name, c in zip(["background", *classes], counts)}


class SegmenterBase:
    """What every method's segmenter shares: ``segment_batch`` (loading and checks) around its ``_segment``,
    ``segment`` for one image, and the device choice."""

    settings_class: type
    """The method's settings; its defaults are used when none are given."""
    uses_synonyms = False
    """Whether the method asks for a class with all its prompts (``ClassName.prompts``); if not, the
    name alone is used and a class's other prompts are ignored (said once)."""
    _synonyms_told = False

    def __init__(self, model, settings=None, timer=None) -> None:
        """``model``: the method's loaded model; ``timer``, if given, is called as ``with timer(stage):``
        around each stage (see ``timing.StageTimer``)."""
        self.model = model
        self.settings = settings or self.settings_class()
        self._stage = timer or (lambda stage: nullcontext())

    def segment_batch(
        self,
        images: list[Image.Image | str | Path],
        classes: list[list[str]],
        captions: list[str | None] | None = None,
        keep_maps: bool = False,
    ) -> list[Segmentation]:
        """Segment several images; each has its own class list (and, for FA-Seg, its own caption).

        PIL images are used as given (converted to RGB); paths are read with their EXIF
        orientation applied. Every class list is checked before the model runs; an empty one
        gives an all-background mask without running it. ``keep_maps`` keeps FA-Seg's
        attention maps; NACLIP has no captions and no maps to keep.
        """
        classes = [self.check_classes(c) for c in classes]
        pictures = [to_rgb(x) if isinstance(x, Image.Image) else load_image(x) for x in images]
        if not self.uses_synonyms and not self._synonyms_told and any(n.has_synonyms for c in classes for n in c):
            log.warning("%s uses each class's name only: its other prompts (after '|') are ignored", self.method)
            self._synonyms_told = True
        return self._segment(pictures, classes, captions, keep_maps)

    def check_classes(self, classes: list[str]) -> list[str]:
        """The class list, checked as this method needs it (``UsageError`` otherwise), without running
        the model: ``faseg serve`` checks each request with it before the request joins a batch."""
        return validate_classes(classes)

    def _segment(self, pictures, classes, captions, keep_maps) -> list[Segmentation]:
        """The method's own run on loaded RGB pictures and checked class lists."""
        raise NotImplementedError

    def segment(
        self, image: Image.Image | str | Path, classes: list[str], caption: str | None = None, keep_maps: bool = False
    ) -> Segmentation:
        """Segment one image (a PIL image or a path) into ``classes``."""
        return self.segment_batch([image], [classes], [caption], keep_maps)[0]

    def attention_arrays(self, result: Segmentation) -> dict:
        """The arrays of ``attention.npz`` for ``result`` (segmented with ``keep_maps``); methods with maps only."""
        raise NotImplementedError(f"{type(self).__name__} keeps no attention maps")

    @staticmethod
    def select_devices(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
        """Parse and check ``device`` and ``dtype`` (usage errors, found before any model loads)."""
        from faseg_cli.models.device import select_device, select_dtype

        torch_device = select_device(device)
        return torch_device, select_dtype(dtype, torch_device)

    @staticmethod
    def announce(what: str, device: torch.device, dtype: torch.dtype) -> None:
        """Say which model runs where."""
        from faseg_cli.models.device import describe

        log.info("Using %s on %s", what, describe(device, dtype))
