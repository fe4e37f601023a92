"""Score masks that already exist on disk (from faseg or any other method) without a model."""

from __future__ import annotations

from pathlib import Path

from faseg_cli.datasets import Dataset, read_label_png
from faseg_cli.errors import UsageError
from faseg_cli.metrics import ConfusionMatrix


def score_predictions(
    dataset: Dataset, pred_dir: str | Path, limit: int | None = None
) -> tuple[ConfusionMatrix, list[str]]:
    """Accumulate ``<pred_dir>/<sample id>.png`` against the ground truth of the split.

    Masks hold values in the dataset's own ground-truth convention (palette or
    grayscale PNG), any size: they are resized to the label's size with nearest.
    ``limit`` scores only the first samples. Samples without a mask are left out of
    the matrix and returned by id.
    """
    pred_dir = Path(pred_dir).expanduser()
    if not pred_dir.is_dir():
        raise UsageError(f"{pred_dir}: not a folder of prediction masks")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    matrix = ConfusionMatrix(dataset.num_classes)
    missing: list[str] = []
    for sample in dataset.samples()[:limit]:
        path = pred_dir / f"{sample.id}.png"
        if not path.is_file():
            missing.append(sample.id)
            continue
        prediction = dataset.stored_mask_to_metric(read_label_png(path))
        matrix.update(prediction, dataset.load_label(sample))
    return matrix, missing
