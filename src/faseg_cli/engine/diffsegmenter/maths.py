"""DiffSegmenter's maps to scores, model-free (SPEC §6.1 steps 6-7 and the labels).

Shapes: K classes; ``cross[r]`` is ``(K, r, r)`` (each class's token map at resolution
r), ``self64`` ``(K, L*L, L*L)`` (rows = queries; each class has its own pass), L the
latent size (64 at 512 px).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faseg_cli.engine.scores import minmax


def fuse(cross: dict[int, torch.Tensor], weights: dict[int, float], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(terms, fused)``: per resolution, the map bilinear to ``size`` (align_corners False; as is at ``size``),
    min-maxed and weighted ``(K, R, size, size)``; and their sum ``(K, size, size)`` (not renormalised)."""
    terms = []
    for r, w in weights.items():
        x = cross[r].float().unsqueeze(1)
        if r != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        terms.append(minmax(x[:, 0]) * w)
    terms = torch.stack(terms, 1)
    return terms, terms.sum(1)


def refine(self64: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """``S_64 vec(F)`` per class: ``(K, n, n) @ (K, n, 1)`` -> ``(K, side, side)``."""
    k, side, _ = fused.shape
    return torch.bmm(self64.float(), fused.reshape(k, side * side, 1)).view(k, side, side)


def scores_at(refined: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Each class bilinear to the image's size (align_corners False), then min-maxed to [0, 1]: ``(K, H, W)``."""
    up = F.interpolate(refined.float().unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False)
    return minmax(up[:, 0])
