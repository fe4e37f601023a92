"""Score masks that already exist on disk (from faseg or any other method) without a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faseg_cli.errors import InputError, UsageError
from faseg_cli.evaluation.datasets import Dataset, read_label_png
from faseg_cli.evaluation.metrics import ConfusionMatrix


@dataclass
class SavedMaskScores:
    """The split's confusion matrix over the usable masks, and what was left out or resized."""

    matrix: ConfusionMatrix
    missing: list[str] = field(default_factory=list)
    """Samples without a mask, by id."""
    errors: list[str] = field(default_factory=list)
    """One message per sample whose mask or label cannot be read (left out of the matrix)."""
    resized: list[str] = field(default_factory=list)
    """One line per mask whose size differs from its label's (scored after resizing)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Every sample left out of the matrix, by id: why (no mask, or the message of ``errors``)."""


def score_predictions(dataset: Dataset, pred_dir: str | Path, limit: int | None = None) -> SavedMaskScores:
    """Accumulate ``<pred_dir>/<sample id>.png`` against the ground truth of the split.

    Masks hold values in the dataset's own ground-truth convention (palette or
    grayscale PNG), any size: they are resized to the label's size with nearest.
    ``limit`` scores only the first samples. A sample without a mask, or whose mask
    or label cannot be read, is left out of the matrix and reported; the others are
    still scored. Images are never read.
    """
    pred_dir = Path(pred_dir).expanduser()
    if not pred_dir.is_dir():
        raise UsageError(f"{pred_dir}: not a folder of prediction masks")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    scores = SavedMaskScores(ConfusionMatrix(dataset.num_classes))
    for sample in dataset.samples()[:limit]:
        path = pred_dir / f"{sample.id}.png"
        if not path.is_file():
            scores.missing.append(sample.id)
            scores.failed[sample.id] = f"no mask {path}"
            continue
        try:
            prediction = dataset.stored_mask_to_metric(read_label_png(path))
            label = dataset.load_label(sample)
        except InputError as exc:
            scores.errors.append(str(exc))
            scores.failed[sample.id] = str(exc)
            continue
        if prediction.shape != label.shape:
            scores.resized.append(f"{path.name} is {_size(prediction)}, its label {_size(label)}")
        scores.matrix.update(prediction, label)
    return scores


def _size(array) -> str:
    """``width x height`` of a 2-D array, as image sizes are written."""
    height, width = array.shape
    return f"{width}x{height}"
