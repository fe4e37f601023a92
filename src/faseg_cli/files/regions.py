"""The regions of a label map that annotation files list: one per present class, or its connected parts.

A *region* is the pixels of one class (semantic), or with ``instances`` one 8-connected
component of them at least ``min_area`` pixels large. Components are connected regions of
a semantic map, not detected objects: two touching dogs are one component, one dog cut
in two by a lead is two. Each region has the class's mean score over its pixels (the
score map is sampled at each pixel's nearest cell, the mapping that made the mask from
the scores). Model-free: numpy and Pillow, with OpenCV for the components.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from faseg_cli.errors import UsageError


@dataclass(frozen=True)
class Region:
    """One region: ``label`` (1-based index into the image's class list) and its pixels (bool, image size)."""

    label: int
    mask: np.ndarray
    score: float


def check_min_area(min_area: int, instances: bool) -> int:
    """``min_area`` if it is a pixel count that applies, else a usage error."""
    if min_area < 1:
        raise UsageError(f"--min-area {min_area}: expected a number of pixels, at least 1")
    if min_area > 1 and not instances:
        raise UsageError("--min-area applies to --instances: without it each class is one region, whatever its size")
    return min_area


def require_opencv(option: str) -> None:
    """A usage error naming ``option`` when OpenCV (the ``opencv`` extra) is not installed."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise UsageError(f"{option} needs OpenCV: pip install 'faseg[opencv]' (opencv-python-headless)") from None


def nearest_cells(size: int, cells: int) -> np.ndarray:
    """For each of ``size`` pixels along one axis, the index of the cell among ``cells`` that Pillow's
    nearest-neighbour resize reads it from: the mapping that made the mask from the scores."""
    row = Image.fromarray(np.arange(cells, dtype=np.int32)[None])
    return np.asarray(row.resize((size, 1), Image.Resampling.NEAREST))[0].astype(np.int64)


def mean_score(score_map: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``score_map`` (h, w), sampled at each pixel's nearest cell, over the pixels of ``mask`` (H, W).

    Sums per cell instead of resizing the map: memory stays of the order of the mask.
    """
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    if not len(rows):
        return 0.0
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = mask[y0:y1, x0:x1]
    cell_y = nearest_cells(mask.shape[0], score_map.shape[0])[y0:y1]
    cell_x = nearest_cells(mask.shape[1], score_map.shape[1])[x0:x1]
    starts = np.flatnonzero(np.r_[True, np.diff(cell_y) > 0])
    counts = np.add.reduceat(crop.astype(np.int64), starts, axis=0)
    values = score_map[cell_y[starts]][:, cell_x].astype(np.float64)
    return float((counts * values).sum() / counts.sum())


def components(mask: np.ndarray, min_area: int = 1) -> Iterator[np.ndarray]:
    """The 8-connected components of ``mask`` with at least ``min_area`` pixels, in OpenCV's scan order
    (by their first pixel, row by row)."""
    import cv2

    count, numbered, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    for index in range(1, count):
        x, y, w, h, area = stats[index]
        if area < min_area:
            continue
        part = np.zeros(mask.shape, dtype=bool)
        part[y : y + h, x : x + w] = numbered[y : y + h, x : x + w] == index
        yield part


def regions(labels: np.ndarray, scores: np.ndarray, instances: bool = False, min_area: int = 1) -> Iterator[Region]:
    """The regions of ``labels`` (H, W) (0 background, k the k-th class) in class order, with the mean
    of ``scores`` (K, h, w) over each; with ``instances``, each class's 8-connected components."""
    for label in np.unique(labels):
        if label == 0:
            continue
        mask = labels == label
        for part in components(mask, min_area) if instances else [mask]:
            yield Region(int(label), part, mean_score(scores[label - 1], part))
