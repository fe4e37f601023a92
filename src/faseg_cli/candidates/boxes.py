"""Boxes on patch-grid score maps, without OpenCV.

TagCLIP draws boxes with OpenCV (``findContours`` + ``boundingRect``). The bounding
rectangles of the outer contours are the bounding boxes of the 8-connected regions of
the binary map (a region nested in another's hole has its box inside the outer box,
so the union of boxes is the same). Regions are labelled here by iterated 3x3
max-propagation of pixel indices, all classes at once, in torch.

Reference quirk kept: OpenCV boxes are clipped to ``end = min(end, size - 1)`` (end
exclusive), so a box never covers the last patch row or column of the grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_regions(masks: torch.Tensor) -> torch.Tensor:
    """Label the 8-connected regions of each boolean map in ``masks`` (K, H, W).

    Returns int64 labels (K, H, W): 0 off the mask, else one value per region (the
    largest 1-based flat index among its pixels).
    """
    k, h, w = masks.shape
    index = torch.arange(1, h * w + 1, device=masks.device, dtype=torch.float32).view(1, h, w)
    labels = torch.where(masks, index, 0.0).unsqueeze(1)
    keep = masks.unsqueeze(1)
    while True:
        grown = torch.where(keep, F.max_pool2d(labels, 3, stride=1, padding=1), 0.0)
        if torch.equal(grown, labels):
            return labels.squeeze(1).long()
        labels = grown


def region_boxes_mask(masks: torch.Tensor) -> torch.Tensor:
    """Union of the (reference-clipped) bounding boxes of each map's regions, as (K, H, W) bool."""
    k, h, w = masks.shape
    labels = label_regions(masks)
    slots = h * w + 1
    flat = (labels + torch.arange(k, device=masks.device).view(k, 1, 1) * slots).flatten()
    on = labels.flatten() > 0
    rows = torch.arange(h, device=masks.device).view(1, h, 1).expand(k, h, w).flatten()[on]
    cols = torch.arange(w, device=masks.device).view(1, 1, w).expand(k, h, w).flatten()[on]
    ids = flat[on]
    n = k * slots
    big = torch.full((n,), h + w, device=masks.device, dtype=torch.long)
    small = torch.full((n,), -1, device=masks.device, dtype=torch.long)
    y0 = big.scatter_reduce(0, ids, rows, "amin")
    x0 = big.scatter_reduce(0, ids, cols, "amin")
    y1 = (small.scatter_reduce(0, ids, rows, "amax") + 1).clamp_max(h - 1)
    x1 = (small.scatter_reduce(0, ids, cols, "amax") + 1).clamp_max(w - 1)
    present = torch.unique(ids)
    ys = torch.arange(h, device=masks.device).view(1, h, 1)
    xs = torch.arange(w, device=masks.device).view(1, 1, w)
    p = present.view(-1, 1, 1)
    inside = (ys >= y0[p]) & (ys < y1[p]) & (xs >= x0[p]) & (xs < x1[p])
    counts = torch.zeros(k, h, w, dtype=torch.int32, device=masks.device)
    counts.index_add_(0, present // slots, inside.int())
    return counts > 0


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` (ends exclusive, reference-clipped) of all True cells, or None when empty."""
    h, w = mask.shape
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    if not len(rows):
        return None
    y0, y1 = int(rows[0]), min(int(rows[-1]) + 1, h - 1)
    x0, x1 = int(cols[0]), min(int(cols[-1]) + 1, w - 1)
    return (y0, y1, x0, x1) if y1 > y0 and x1 > x0 else None
