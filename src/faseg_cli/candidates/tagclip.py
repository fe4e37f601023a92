"""TagCLIP multi-label classification (Lin et al., AAAI 2024), as used for FA-Seg's candidates.

Steps (SPEC §3.2; details checked against github linyq2117/TagCLIP ``classify.py``):

1. Coarse patch scores ``P = softmax_c(100 cos(patch, text_c))`` from CLIP at the
   image's native size with a self-only last layer (see ``engine.clip``).
2. DMAR: ``A`` = mean patch-to-patch attention of layers 9-11 (0-based 8..10), zeroed
   where fewer than 4 of the 12 layers vote for the entry; a layer votes where its
   attention exceeds the mean of its whole patch-to-patch matrix (the reference's
   threshold, one scalar per layer). ``R = A P``; per class a box mask from the
   regions of ``minmax(R[:, c]) > mean`` (8-bit, as OpenCV sees it), and ``R[:, c]``
   recomputed with keys restricted to the boxes.
3. Class score ``s_c = max_patches R[:, c]``.
4. CWR: for classes with ``s_c > min(R) + 0.5 (max(R) - min(R))``, the box of
   ``minmax(R[:, c]) > 0.5`` is cropped, resized to 224 and classified by CLIP with
   the class token's attention limited to the region; ``s_c = 0.5 s_c + 0.5 p_c``.
5. Labels: ``s_c > min(s) + 0.5 (max(s) - min(s))``, else the argmax.

Background distractors are scored with the vocabulary and dropped after the softmax.
The functions below are the pure tensor steps; :class:`TagClip` runs them on a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from faseg_cli.candidates.boxes import bounding_box, region_boxes_mask
from faseg_cli.candidates.synonyms import ClassLookup
from faseg_cli.candidates.text_embeddings import class_embeddings
from faseg_cli.engine.clip import ClipEncoder
from faseg_cli.engine.scores import minmax
from faseg_cli.vocabularies import Vocabulary
from faseg_cli.word_lists import distractors as default_distractors

LOGIT_SCALE = 100.0
"""CLIP's learned logit scale (exp(4.6052)), fixed as in the SPEC."""
MIN_VOTES = 4
"""An attention entry survives DMAR when at least this many layers vote for it."""
RELATIVE = 0.5
"""Fraction of the score range used by the CWR and label thresholds."""
CWR_WEIGHT = 0.5
"""Weight of the crop's probability in the refined class score."""
REGION = 0.5
"""CWR crops the box of the patches whose min-max normalised score exceeds this."""


def layer_votes(attention: torch.Tensor) -> torch.Tensor:
    """Where one layer's patch-to-patch attention (N, N) exceeds its own mean."""
    return attention > attention.mean()


class AttentionVotes:
    """Streaming DMAR statistics: feed each layer's attention, then read the affinity ``A``.

    Keeps two N x N tensors instead of all the layers' maps.
    """

    def __init__(self, num_layers: int, min_votes: int = MIN_VOTES):
        self.refine_layers = range(num_layers - 4, num_layers - 1)
        self.min_votes = min_votes
        self.votes: torch.Tensor | None = None
        self.total: torch.Tensor | None = None

    def add(self, layer: int, attention: torch.Tensor) -> None:
        """Count one layer's patch-to-patch attention (N, N)."""
        votes = layer_votes(attention).int()
        self.votes = votes if self.votes is None else self.votes + votes
        if layer in self.refine_layers:
            self.total = attention.clone() if self.total is None else self.total + attention

    def observe(self, layer: int, probs: torch.Tensor) -> None:
        """Observer for :meth:`ClipEncoder.dense_features`: drops the class token row and column."""
        self.add(layer, probs[1:, 1:])

    def mask(self) -> torch.Tensor:
        """DMAR's voting mask (N, N): where at least ``min_votes`` layers exceeded their mean."""
        return self.votes >= self.min_votes

    def affinity(self) -> torch.Tensor:
        """``A``: the mean attention of the refinement layers where enough layers voted."""
        return self.total / len(self.refine_layers) * self.mask()


def coarse_scores(patch_features: torch.Tensor, text: torch.Tensor, scale: float = LOGIT_SCALE) -> torch.Tensor:
    """``P`` (N, K): softmax over classes of the scaled cosine of normalised features."""
    return (scale * patch_features @ text.T).softmax(-1)


def box_masks(scores: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Per-class box masks (N, K) from ``R`` (N, K): regions of ``minmax(R[:, c]) > mean``.

    The comparison is made at 8 bits as the reference does: ``floor(255 s) > floor(mean * max)``.
    """
    normed = minmax(scores, dim=0)
    levels = torch.floor(normed * 255)
    above = levels > torch.floor(normed.mean(0) * levels.amax(0))
    maps = above.T.reshape(-1, *grid)
    return region_boxes_mask(maps).reshape(scores.shape[1], -1).T.to(scores.dtype)


def refine_in_boxes(affinity: torch.Tensor, coarse: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """DMAR's class-wise step: ``R = A P``, then ``R[:, c] = A[:, box_c] P[box_c, c]`` for classes scored anywhere."""
    scores = affinity @ coarse
    refined = affinity @ (box_masks(scores, grid) * coarse)
    return torch.where(scores.amax(0) > 0, refined, scores)


def relative_threshold(values: torch.Tensor, fraction: float = RELATIVE) -> torch.Tensor:
    """``min + fraction (max - min)`` over all of ``values``."""
    return values.min() + fraction * (values.max() - values.min())


def cwr_classes(scores_map: torch.Tensor, class_scores: torch.Tensor) -> list[int]:
    """Classes whose score exceeds the relative threshold of the whole score map ``R``."""
    return torch.nonzero(class_scores > relative_threshold(scores_map)).flatten().tolist()


def select_labels(class_scores: torch.Tensor, fraction: float = RELATIVE) -> list[int]:
    """Classes above ``min + fraction (max - min)`` of the class scores, else the best one."""
    chosen = torch.nonzero(class_scores > relative_threshold(class_scores, fraction)).flatten().tolist()
    return chosen or [int(class_scores.argmax())]


def crop_region(
    column: torch.Tensor, grid: tuple[int, int], native: int
) -> tuple[tuple[int, int, int, int], torch.Tensor] | None:
    """CWR region of one class's scores (N,): ``(box, keep)`` or None when the box is empty.

    ``box`` is ``(y0, y1, x0, x1)`` in patches; ``keep`` (native * native,) marks the
    region's patches after a nearest resize of the box to the native grid.
    """
    region = (minmax(column, dim=0) > REGION).reshape(grid)
    box = bounding_box(region)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    inside = region[y0:y1, x0:x1].float()[None, None]
    keep = F.interpolate(inside, size=(native, native), mode="nearest").flatten().bool()
    return box, keep


@dataclass(frozen=True)
class TagClipResult:
    """Class scores (one per vocabulary class, after CWR) and the chosen class indices."""

    scores: torch.Tensor
    labels: list[int]


class TagClip:
    """TagCLIP over one vocabulary: text embeddings are computed (or read from cache) once."""

    def __init__(
        self,
        encoder: ClipEncoder,
        vocabulary: Vocabulary,
        distractors: Sequence[str] | None = None,
        max_side: int = 640,
        embeddings: Callable[[Sequence[str]], torch.Tensor] | None = None,
    ):
        """``embeddings(names)``: the (K, E) text embeddings of the vocabulary's classes and the distractors
        kept, in that order (default: ``class_embeddings``, cached on disk per list)."""
        lookup = ClassLookup(vocabulary)
        extra = [d for d in (default_distractors() if distractors is None else distractors) if lookup(d) is None]
        self.encoder = encoder
        self.classes = vocabulary.classes
        self.names = (*vocabulary.classes, *extra)
        self.max_side = max_side
        embed = embeddings or (lambda names: class_embeddings(encoder, names))
        self.text = embed(self.names).to(encoder.device)

    @torch.inference_mode()
    def __call__(self, image: Image.Image) -> TagClipResult:
        """Classify one image."""
        encoder = self.encoder
        pixels = encoder.pixels(image, self.max_side)
        grid = (pixels.shape[-2] // encoder.patch, pixels.shape[-1] // encoder.patch)
        votes = AttentionVotes(encoder.num_layers)
        features = encoder.dense_features(pixels, votes.observe)
        scores_map = refine_in_boxes(votes.affinity(), coarse_scores(features[1:], self.text), grid)
        scores = scores_map.amax(0)[: len(self.classes)].clone()
        self._window_refine(pixels, scores_map, scores, grid)
        return TagClipResult(scores.cpu(), select_labels(scores))

    def _window_refine(
        self, pixels: torch.Tensor, scores_map: torch.Tensor, scores: torch.Tensor, grid: tuple[int, int]
    ) -> None:
        """CWR, in place on ``scores``: all crops of one image in one batch."""
        encoder, size, p = self.encoder, self.encoder.image_size, self.encoder.patch
        crops, keeps, classes = [], [], []
        for c in cwr_classes(scores_map, scores):
            found = crop_region(scores_map[:, c], grid, size // p)
            if found is None:
                continue
            (y0, y1, x0, x1), keep = found
            crop = pixels[..., y0 * p : y1 * p, x0 * p : x1 * p]
            crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False))
            keeps.append(keep)
            classes.append(c)
        if not classes:
            return
        features = encoder.region_features(torch.cat(crops), torch.stack(keeps))
        probs = (LOGIT_SCALE * features @ self.text.T).softmax(-1)
        index = torch.tensor(classes, device=scores.device)
        scores[index] = (1 - CWR_WEIGHT) * scores[index] + CWR_WEIGHT * probs[torch.arange(len(classes)), index]
