"""Heat-map grids of one class's attention, for people to read at a glance.

A grid shows, left to right: the image, the class's cross-attention at each recorded
resolution, the fused cross-attention, the HARD-refined map and the final score,
each colour-mapped (dark = low, bright = high) and blended over the image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from faseg_cli.engine import Segmentation
from faseg_cli.refine import minmax

_ANCHORS = np.array(
    [
        (0, 0, 4),
        (40, 11, 84),
        (101, 21, 110),
        (159, 42, 99),
        (212, 72, 66),
        (245, 125, 21),
        (250, 193, 39),
        (252, 255, 164),
    ],
    float,
)


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 with an inferno-like scale."""
    position = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(max=len(_ANCHORS) - 2)
    frac = (position - low)[..., None]
    return ((1 - frac) * _ANCHORS[low] + frac * _ANCHORS[low + 1]).astype(np.uint8)


def _tile(image: Image.Image, values: torch.Tensor | None, width: int, height: int, alpha: float = 0.6) -> Image.Image:
    base = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    if values is None:
        return Image.fromarray(base.astype(np.uint8))
    values = values.detach().float().cpu()[None, None]
    v = F.interpolate(values, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    v = minmax(v).numpy()
    return Image.fromarray(((1 - alpha) * base + alpha * colorize(v)).astype(np.uint8))


def class_grid(image: Image.Image, result: Segmentation, k: int, tile: int = 192) -> Image.Image:
    """The grid for class ``k`` (0-based) of ``result``, which must hold its maps."""
    maps = result.maps
    height = max(1, round(tile * image.height / image.width))
    panels = [("image", None)]
    panels += [(f"cross {r}", maps.cross[r][0, k]) for r in sorted(maps.cross)]
    panels += [
        ("fused", maps.fused[0, k]),
        ("refined", maps.refined[0, k]),
        ("final", torch.from_numpy(result.scores[k])),
    ]
    font = ImageFont.load_default(size=14)
    title, caption, pad = 24, 20, 4
    grid = Image.new("RGB", (len(panels) * (tile + pad) + pad, title + height + caption + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    share = 100 * float((result.labels == k + 1).mean())
    draw.text((pad, 4), f"{result.classes[k]}  ({share:.1f}% of pixels)", fill=(0, 0, 0), font=font)
    for i, (label, values) in enumerate(panels):
        x = pad + i * (tile + pad)
        grid.paste(_tile(image, values, tile, height), (x, title))
        draw.text((x, title + height + 2), label, fill=(0, 0, 0), font=font)
    return grid
