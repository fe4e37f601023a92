"""Evaluate FA-Seg on a dataset split (SPEC §4): the Python API behind ``faseg eval``.

Each image is segmented once; its class scores are thresholded at every requested
background threshold exactly as the engine thresholds them, each threshold with its
own confusion matrix, so a threshold sweep costs one forward pass per image.
Predictions are resized to the ground truth's size with nearest. The runner never
prints: it reports through a callback and returns an ``Evaluation``, whose
``to_dict`` is the results JSON. Images or labels that cannot be read are counted
as failed and left out of the scores.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faseg_cli import __version__
from faseg_cli.datasets import Dataset, Sample
from faseg_cli.distributed import Workers
from faseg_cli.errors import InputError, UsageError
from faseg_cli.eval_sources import Item, PromptSource
from faseg_cli.eval_state import EvalState
from faseg_cli.images import load_image, resize_labels
from faseg_cli.metrics import ConfusionMatrix
from faseg_cli.outputs import atomic_write, mask_image
from faseg_cli.refine import labels_from_scores
from faseg_cli.scoring import score_predictions

MAX_THRESHOLDS = 101


@dataclass(frozen=True)
class Progress:
    """Where this process stands, reported at the start and after every batch."""

    done: int
    """Samples scored, including those resumed from an earlier run."""
    failed: int
    """Samples that failed in this run."""
    total: int
    """Samples of this process's share of the split."""
    miou: float
    """Running mIoU (percent) at the best threshold so far; NaN before any pixel."""
    errors: tuple[str, ...] = ()
    """One message per sample that failed in the last batch."""


@dataclass
class Evaluation:
    """The outcome of an evaluation over all processes: one confusion matrix per threshold.

    ``thresholds`` is ``(None,)`` when saved masks were scored.
    """

    info: dict[str, Any]
    class_names: tuple[str, ...]
    thresholds: tuple[float | None, ...]
    matrices: list[ConfusionMatrix]
    images: int
    failed: int
    seconds: float
    """Compute time summed over images (segmentation only; loading and scoring excluded)."""
    processes: int = 1
    errors: list[str] = field(default_factory=list)
    """This process's failure messages."""

    @property
    def best(self) -> int:
        """Index of the threshold with the highest mIoU (the first on ties)."""
        scores = [-math.inf if math.isnan(s) else s for s in (m.miou() for m in self.matrices)]
        return scores.index(max(scores))

    def to_dict(self) -> dict[str, Any]:
        """The results JSON: scores in percent, the best threshold's at the top level."""
        per_threshold = [
            {"threshold": t, **_scores(m, self.class_names), "confusion": m.to_dict()}
            for t, m in zip(self.thresholds, self.matrices)
        ]
        best = per_threshold[self.best]
        return {
            "faseg": __version__,
            **self.info,
            "images": self.images,
            "failed": self.failed,
            "best_threshold": best["threshold"],
            "miou": best["miou"],
            "pixel_accuracy": best["pixel_accuracy"],
            "iou": best["iou"],
            "per_threshold": per_threshold,
            "timing": {
                "seconds_per_image": self.seconds / self.images if self.images else None,
                "processes": self.processes,
            },
        }


def parse_thresholds(text: str) -> tuple[float, ...]:
    """``"0.4:0.65:0.05"`` (start:stop:step, stop included) or ``"0.5,0.55"``: sorted thresholds in [0, 1]."""
    bad = f"--thresholds {text}: expected start:stop:step (e.g. 0.4:0.65:0.05) or a comma list (e.g. 0.5,0.55)"
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if not step > 0 or stop < start:
                raise UsageError(f"--thresholds {text}: the step must be positive and stop not below start")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > MAX_THRESHOLDS:
                raise UsageError(f"--thresholds {text}: {count} thresholds; at most {MAX_THRESHOLDS}")
            values = [start + i * step for i in range(count)]
        else:
            values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(bad) from None
    values = sorted({round(v, 6) for v in values})
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise UsageError(f"--thresholds {text}: thresholds must be between 0 and 1")
    return tuple(values)


def evaluate(
    dataset: Dataset,
    segmenter,
    prompts: PromptSource,
    *,
    thresholds: Sequence[float] | None = None,
    batch_size: int = 1,
    limit: int | None = None,
    masks_dir: Path | None = None,
    state_file: Path | None = None,
    resume: bool = False,
    workers: Workers | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    model_name: str | None = None,
) -> Evaluation:
    """Segment this process's share of the split (its first ``limit`` samples) and score it.

    ``thresholds`` default to the segmenter's own. With ``state_file`` the state is
    saved after every batch; ``resume`` continues from it (refusing a state of a
    different run) and only does the samples not yet scored. The state is removed
    once nothing is left to do: no sample beyond ``limit``, none failed. With
    ``masks_dir`` each prediction is saved as ``<id>.png`` in the dataset's label
    convention (``<threshold>/<id>.png`` for several thresholds). Under several
    processes (``workers``, called inside ``workers.connected(device)``) the counts
    are summed, so every process returns the whole split's ``Evaluation``.
    """
    workers = workers or Workers()
    thresholds = tuple(thresholds or (segmenter.settings.threshold,))
    if batch_size < 1 or (limit is not None and limit < 0):
        raise ValueError("batch_size must be positive and limit not negative")
    info = {
        **_dataset_info(dataset, limit),
        "class_source": prompts.classes_name,
        "caption_source": prompts.captions_name,
        "method": segmenter.method,
        "model": _model_info(segmenter, model_name),
        "settings": {k: v for k, v in asdict(segmenter.settings).items() if k != "threshold"},
        "thresholds": list(thresholds),
    }
    samples = workers.shard(dataset.samples()[:limit])
    state = _start_state(info, workers, samples, len(thresholds), dataset.num_classes, state_file, resume)
    finished = set(state.finished)
    todo = [s for s in samples if s.id not in finished]
    errors: list[str] = []

    def report(batch_errors: list[str]) -> None:
        if on_progress:
            best = max((m.miou() for m in state.matrices if m.pixels), default=math.nan)
            on_progress(Progress(len(state.finished), len(errors), len(samples), 100 * best, tuple(batch_errors)))

    report([])
    for start in range(0, len(todo), batch_size):
        items, batch_errors = _load(dataset, todo[start : start + batch_size])
        if items:
            began = time.perf_counter()
            results = segmenter.segment_batch([item.image for item in items], *prompts(items))
            state.seconds += time.perf_counter() - began
            for item, result in zip(items, results):
                _score(dataset, item, result, thresholds, state.matrices, masks_dir)
                state.finished.append(item.sample.id)
            if state_file:
                state.save(state_file)
        errors += batch_errors
        report(batch_errors)
    matrices, images, failed, seconds = _sum_over_processes(workers, state, len(errors))
    if state_file and not failed and (limit is None or limit >= len(dataset)):
        state_file.unlink(missing_ok=True)
    return Evaluation(
        info, dataset.class_names, thresholds, matrices, images, failed, seconds, workers.world_size, errors
    )


def _model_info(segmenter, name: str | None) -> dict[str, Any]:
    from faseg_cli.weights import model_revision

    path = segmenter.model.path
    return {"name": name, "revision": model_revision(name or str(path), path), "path": str(path.resolve())}


def _start_state(
    info, workers: Workers, samples: list[Sample], count: int, num_classes: int, state_file: Path | None, resume: bool
) -> EvalState:
    """The saved state when resuming (refused if it belongs to another run), else an empty one."""
    fingerprint = {k: v for k, v in info.items() if k != "limit"}
    fingerprint = json.loads(json.dumps({**fingerprint, "processes": workers.world_size, "rank": workers.rank}))
    state = EvalState.load(state_file, fingerprint) if resume and state_file else None
    if state is None:
        return EvalState.new(fingerprint, count, num_classes)
    outside = set(state.finished) - {s.id for s in samples}
    if outside:
        raise UsageError(
            f"cannot resume from {state_file}: {len(outside)} of its images (e.g. {sorted(outside)[0]}) "
            "are not in this run's share of the split; run without --resume to start over"
        )
    return state


def _sum_over_processes(workers: Workers, state: EvalState, failed: int):
    """Matrices, scored images, failures and seconds summed over all processes (one collective)."""
    counts = np.stack([m.counts for m in state.matrices])
    totals = workers.sum(np.concatenate([counts.ravel(), [len(state.finished), failed, round(state.seconds * 1e6)]]))
    matrices = [ConfusionMatrix(counts.shape[1], c) for c in totals[:-3].reshape(counts.shape)]
    images, failed, micros = (int(v) for v in totals[-3:])
    return matrices, images, failed, micros / 1e6


def evaluate_saved_masks(dataset: Dataset, pred_dir: Path, limit: int | None = None) -> Evaluation:
    """Score ``<pred_dir>/<sample id>.png`` masks (dataset label convention) without a model.

    Samples without a mask count as failed and are left out of the scores.
    """
    matrix, missing = score_predictions(dataset, pred_dir, limit)
    total = len(dataset.samples()[:limit])
    info = {**_dataset_info(dataset, limit), "predictions": str(Path(pred_dir).expanduser().resolve())}
    errors = []
    if missing:
        errors.append(f"{pred_dir}: no mask for {len(missing)} of {total} samples (e.g. {missing[0]}.png); not scored")
    return Evaluation(info, dataset.class_names, (None,), [matrix], total - len(missing), len(missing), 0.0, 1, errors)


def _dataset_info(dataset: Dataset, limit: int | None) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "split": dataset.spec.title,
        "root": str(dataset.folder.resolve()),
        "split_size": len(dataset),
        "limit": limit,
    }


def _load(dataset: Dataset, samples: list[Sample]) -> tuple[list[Item], list[str]]:
    items, errors = [], []
    for sample in samples:
        try:
            items.append(Item(sample, load_image(sample.image_path), dataset.load_label(sample)))
        except InputError as exc:
            errors.append(str(exc))
    return items, errors


def _score(dataset, item: Item, result, thresholds, matrices, masks_dir: Path | None) -> None:
    """Threshold one image's scores as the engine does and add it to each threshold's matrix."""
    height, width = item.label.shape
    for threshold, matrix in zip(thresholds, matrices):
        labels = labels_from_scores(result.scores, threshold, result.background).numpy().astype(np.uint8)
        prediction = dataset.prediction_to_metric(resize_labels(labels, (width, height)), result.classes)
        matrix.update(prediction, item.label)
        if masks_dir:
            folder = masks_dir / f"{threshold:g}" if len(thresholds) > 1 else masks_dir
            _save_mask(folder / f"{item.sample.id}.png", dataset.metric_to_stored(prediction), dataset.spec.palette)


def _save_mask(path: Path, stored: np.ndarray, palette: bool) -> None:
    atomic_write(path, lambda tmp: (mask_image(stored) if palette else Image.fromarray(stored)).save(tmp, "PNG"))


def _scores(matrix: ConfusionMatrix, class_names: tuple[str, ...]) -> dict[str, Any]:
    def percent(value: float) -> float | None:
        return None if math.isnan(value) else 100 * float(value)

    return {
        "miou": percent(matrix.miou()),
        "pixel_accuracy": percent(matrix.pixel_accuracy()),
        "iou": {name: percent(v) for name, v in zip(class_names, matrix.iou())},
    }
