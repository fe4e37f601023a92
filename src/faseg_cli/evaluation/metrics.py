"""Semantic-segmentation metrics: one confusion matrix accumulated over a whole split.

Intersection and union are summed over all images before any division (never
per-image averages), as in the mmsegmentation protocol the paper follows. Ground-truth
pixels labelled ``IGNORE`` do not count. A prediction outside ``[0, num_classes)``
is wrong wherever it lands: it adds to the ground-truth class's union and to no
class's intersection. Pure numpy, so it runs anywhere and merges across processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IGNORE = 255
"""Ground-truth value of pixels left out of every metric."""

INVALID = -1
"""A prediction value that matches no class (counts as wrong)."""


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Source index of each output index when PIL resizes an axis with NEAREST.

    PIL walks the output grid by repeated float64 addition of ``size_in / size_out``
    starting at half a step and truncates; the cumulative sum reproduces its
    rounding exactly (a closed-form ``(i + 0.5) * scale`` differs on exact ties).
    """
    step = size_in / size_out
    positions = np.cumsum(np.concatenate(([step * 0.5], np.full(size_out - 1, step))))
    return np.minimum(positions.astype(np.int64), size_in - 1)


def resize_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D label map to ``shape`` (height, width), picking the pixels PIL's NEAREST picks."""
    height, width = shape
    if labels.shape == (height, width):
        return labels
    rows = nearest_indices(labels.shape[0], height)
    cols = nearest_indices(labels.shape[1], width)
    return labels[rows[:, None], cols[None, :]]


class ConfusionMatrix:
    """Pixel counts per (ground-truth class, predicted class) over many images.

    ``counts`` has shape ``(num_classes, num_classes + 1)``: rows are ground-truth
    classes, columns predicted classes, and the last column counts predictions that
    are no class at all.
    """

    def __init__(self, num_classes: int, counts: np.ndarray | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        shape = (num_classes, num_classes + 1)
        if counts is None:
            self.counts = np.zeros(shape, dtype=np.int64)
        else:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != shape or (counts < 0).any():
                raise ValueError(f"counts must be a non-negative {shape} array")
            self.counts = counts.copy()

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image. ``pred`` is resized to ``gt``'s size (nearest) first if they differ."""
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.ndim != 2 or gt.ndim != 2:
            raise ValueError(f"expected 2-D label maps, got shapes {pred.shape} and {gt.shape}")
        if not (np.issubdtype(pred.dtype, np.integer) or pred.dtype == bool):
            raise ValueError(f"predictions must be integer labels, got {pred.dtype}")
        pred = resize_nearest(pred, gt.shape)
        gt = gt.astype(np.int64, copy=False)
        valid = gt != IGNORE
        gt = gt[valid]
        if gt.size and (gt.min() < 0 or gt.max() >= self.num_classes):
            bad = gt[(gt < 0) | (gt >= self.num_classes)][0]
            raise ValueError(f"ground-truth value {bad} is neither a class (0..{self.num_classes - 1}) nor {IGNORE}")
        pred = pred[valid].astype(np.int64)
        pred[(pred < 0) | (pred >= self.num_classes)] = self.num_classes
        width = self.num_classes + 1
        cells = np.bincount(gt * width + pred, minlength=self.num_classes * width)
        self.counts += cells.reshape(self.num_classes, width)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts into this one (e.g. from another process); returns self."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.counts += other.counts
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return ConfusionMatrix(self.num_classes, self.counts).merge(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return self.num_classes == other.num_classes and np.array_equal(self.counts, other.counts)

    @property
    def pixels(self) -> int:
        """Ground-truth pixels counted (ignored pixels excluded)."""
        return int(self.counts.sum())

    def intersection(self) -> np.ndarray:
        """Per class: pixels of that class predicted as that class."""
        return np.diagonal(self.counts).copy()

    def union(self) -> np.ndarray:
        """Per class: pixels that are that class in the ground truth, the prediction, or both."""
        gt_area = self.counts.sum(axis=1)
        pred_area = self.counts[:, : self.num_classes].sum(axis=0)
        return gt_area + pred_area - self.intersection()

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both ground truth and predictions."""
        union = self.union()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, self.intersection() / union, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes present in ground truth or predictions (NaN if none)."""
        iou = self.iou()
        present = ~np.isnan(iou)
        return float(iou[present].mean()) if present.any() else float("nan")

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels predicted correctly (NaN if none counted)."""
        total = self.pixels
        return float(np.trace(self.counts) / total) if total else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the non-zero cells as ``[gt, pred, count]``; pred ``num_classes`` = no class."""
        rows, cols = np.nonzero(self.counts)
        cells = [[int(r), int(c), int(self.counts[r, c])] for r, c in zip(rows, cols)]
        return {"num_classes": self.num_classes, "cells": cells}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfusionMatrix:
        """Inverse of :meth:`to_dict`; raises ValueError on malformed data."""
        try:
            num_classes = int(data["num_classes"])
            matrix = cls(num_classes)
            for gt, pred, count in data["cells"]:
                if not (0 <= gt < num_classes and 0 <= pred <= num_classes and count >= 0):
                    raise ValueError(f"cell {[gt, pred, count]} out of range")
                matrix.counts[int(gt), int(pred)] += int(count)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a confusion matrix: {exc}") from None
        return matrix
