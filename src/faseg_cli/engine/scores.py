"""Score maths every method shares: min-max scaling, and labels from class scores.

FA-Seg's HARD and TagCLIP's boxes min-max scale maps; FA-Seg and NACLIP turn class
scores into labels the same way (NACLIP adds the pixels its background queries win).
"""

from __future__ import annotations

import torch


def minmax(values: torch.Tensor, dim: int | tuple[int, ...] = (-2, -1)) -> torch.Tensor:
    """Scale to [0, 1] over ``dim`` (by default each ``(..., H, W)`` map); a constant slice becomes zeros."""
    low = values.amin(dim, keepdim=True)
    span = values.amax(dim, keepdim=True) - low
    return torch.where(span > 0, (values - low) / torch.where(span > 0, span, 1), 0.0)


def labels_from_scores(scores: torch.Tensor, threshold: float, background: torch.Tensor | None = None) -> torch.Tensor:
    """Per pixel: 1 + argmax over classes, or 0 (background) where the best score is below ``threshold``.

    A threshold of 0 means no background at all (bicubic upsampling can take scores below 0).
    ``background`` (bool, like one score map) marks pixels that are background at every
    threshold (NACLIP's: those its background queries win).
    """
    if scores.shape[0] == 0:
        return torch.zeros(scores.shape[1:], dtype=torch.long)
    best, index = scores.max(0)
    labels = torch.where((best >= threshold) | (threshold <= 0), index + 1, 0)
    return labels if background is None else labels.masked_fill(background, 0)
