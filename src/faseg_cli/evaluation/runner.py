"""Evaluate a segmenter (FA-Seg or NACLIP) on a dataset split (SPEC §4): the Python API behind ``faseg eval``.

Each image is segmented once; its class scores are thresholded at every requested
background threshold exactly as the engine thresholds them, each threshold with its
own confusion matrix, so a threshold sweep costs one forward pass per image.
Predictions are resized to the ground truth's size with nearest; a label whose size
differs from its image's is reported as a warning. The runner never prints: it
reports through a callback and returns an ``Evaluation``, whose ``to_dict`` is the
results JSON. Images, labels or saved masks that cannot be read are counted as
failed, reported one by one, listed with their reason in the results JSON and left
out of the scores; the run goes on.
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
from faseg_cli.classes.eval_source import PromptSource
from faseg_cli.errors import InputError, UsageError
from faseg_cli.evaluation.datasets import Dataset, Sample
from faseg_cli.evaluation.metrics import ConfusionMatrix
from faseg_cli.evaluation.scoring import score_predictions
from faseg_cli.evaluation.sharding import Workers
from faseg_cli.evaluation.state import DamagedState, EvalState
from faseg_cli.files.images import load_image, resize_labels
from faseg_cli.files.outputs import mask_image, together, write_png
from faseg_cli.files.provenance import ResumeCheck, record, request

MAX_THRESHOLDS = 101


@dataclass(frozen=True)
class Item:
    """One loaded sample: everything a source may look at."""

    sample: Sample
    image: Image.Image
    label: np.ndarray
    """The ground truth as metric indices."""


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
    warnings: tuple[str, ...] = ()
    """One message per sample of the last batch whose label and image differ in size."""
    notes: tuple[str, ...] = ()
    """Other things to tell the user (at the start: saved masks that are recomputed)."""


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
    warnings: list[str] = field(default_factory=list)
    """This process's warnings (sizes that differ; scored after resizing)."""
    failures: dict[str, str] = field(default_factory=dict)
    """Every failed sample of all processes, by id: why it failed (in the results JSON)."""

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
            "failed_samples": [{"id": id_, "reason": why} for id_, why in self.failures.items()],
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
    convention (``<threshold>/<id>.png`` for several thresholds), recording what made
    it (``provenance``); when resuming, the masks of samples already scored are made
    again (and not scored twice) if missing or made differently. Under several
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
        "generated_with": prompts.source.generated_with,
        "settings": {k: v for k, v in asdict(segmenter.settings).items() if k != "threshold"},
        "thresholds": list(thresholds),
    }
    samples = workers.shard(dataset.samples()[:limit])
    state, notes = _start_state(info, workers, samples, len(thresholds), dataset.num_classes, state_file, resume)
    masks = _MaskRecords(dataset, segmenter, prompts, thresholds, model_name, masks_dir) if masks_dir else None
    finished = set(state.finished)
    check = ResumeCheck()
    remask = {s.id for s in samples if s.id in finished and masks is not None and not check.keep(masks.requests(s))}
    todo = [s for s in samples if s.id not in finished or s.id in remask]
    errors: list[str] = []
    warnings: list[str] = []
    failures: dict[str, str] = {}

    def report(batch_errors: list[str], batch_warnings: list[str], notes: tuple[str, ...] = ()) -> None:
        if on_progress:
            best = max((m.miou() for m in state.matrices if m.pixels), default=math.nan)
            done, failed = len(state.finished), len(errors)
            messages = tuple(batch_errors), tuple(batch_warnings), notes
            on_progress(Progress(done, failed, len(samples), 100 * best, *messages))

    message = check.message(f"saved masks in {masks_dir}", count_missing=True)
    report([], [], notes + ((f"{message} (each is scored once)",) if message else ()))
    for start in range(0, len(todo), batch_size):
        items, failed_here, batch_warnings = _load(dataset, todo[start : start + batch_size])
        failures.update(failed_here)
        batch_errors = list(failed_here.values())
        if items:
            began = time.perf_counter()
            results = segmenter.segment_batch([item.image for item in items], *prompts(items))
            scored = [item.sample.id not in remask for item in items]
            state.seconds += (time.perf_counter() - began) * sum(scored) / len(items)
            for item, result, score in zip(items, results, scored):
                predictions = _predictions(dataset, item, result, thresholds)
                if score:
                    for matrix, prediction in zip(state.matrices, predictions):
                        matrix.update(prediction, item.label)
                    state.finished.append(item.sample.id)
                if masks is not None:
                    masks.save(item.sample, result, predictions)
            if state_file:
                state.save(state_file)
        errors += batch_errors
        warnings += batch_warnings
        report(batch_errors, batch_warnings)
    matrices, images, failed, seconds = _sum_over_processes(workers, state, len(errors))
    failures = {id_: why for part in workers.gather(failures) for id_, why in part.items()}
    if state_file and not failed and (limit is None or limit >= len(dataset)):
        state_file.unlink(missing_ok=True)
    return Evaluation(
        info,
        dataset.class_names,
        thresholds,
        matrices,
        images,
        failed,
        seconds,
        workers.world_size,
        errors=errors,
        warnings=warnings,
        failures=failures,
    )


def _model_info(segmenter, name: str | None) -> dict[str, Any]:
    from faseg_cli.models.weights import model_revision

    path = segmenter.model.path
    return {"name": name, "revision": model_revision(name or str(path), path), "path": str(path.resolve())}


def _start_state(
    info, workers: Workers, samples: list[Sample], count: int, num_classes: int, state_file: Path | None, resume: bool
) -> tuple[EvalState, tuple[str, ...]]:
    """The saved state when resuming (refused if it belongs to another run), else an empty one; and a note
    saying how much was already done, or that a damaged state is started over."""
    fingerprint = {k: v for k, v in info.items() if k != "limit"}
    fingerprint = json.loads(json.dumps({**fingerprint, "processes": workers.world_size, "rank": workers.rank}))
    try:
        state = EvalState.load(state_file, fingerprint) if resume and state_file else None
    except DamagedState as exc:
        return EvalState.new(fingerprint, count, num_classes), (f"{exc}; starting from the beginning",)
    if state is None:
        return EvalState.new(fingerprint, count, num_classes), ()
    outside = set(state.finished) - {s.id for s in samples}
    if outside:
        raise UsageError(
            f"cannot resume from {state_file}: {len(outside)} of its images (e.g. {sorted(outside)[0]}) "
            "are not in this run's share of the split; run without --resume to start over"
        )
    done = len(state.finished)
    return state, (f"resuming from {state_file}: {done} of {len(samples)} images already done",)


def _sum_over_processes(workers: Workers, state: EvalState, failed: int):
    """Matrices, scored images, failures and seconds summed over all processes (one collective)."""
    counts = np.stack([m.counts for m in state.matrices])
    totals = workers.sum(np.concatenate([counts.ravel(), [len(state.finished), failed, round(state.seconds * 1e6)]]))
    matrices = [ConfusionMatrix(counts.shape[1], c) for c in totals[:-3].reshape(counts.shape)]
    images, failed, micros = (int(v) for v in totals[-3:])
    return matrices, images, failed, micros / 1e6


def evaluate_saved_masks(dataset: Dataset, pred_dir: Path, limit: int | None = None) -> Evaluation:
    """Score ``<pred_dir>/<sample id>.png`` masks (dataset label convention) without a model.

    Samples without a mask, or whose mask or label cannot be read, count as failed
    and are left out of the scores: one error for the missing masks, one per
    unreadable file. Masks of another size than their label are resized to it, with
    one warning.
    """
    scores = score_predictions(dataset, pred_dir, limit)
    total = len(dataset.samples()[:limit])
    info = {**_dataset_info(dataset, limit), "predictions": str(Path(pred_dir).expanduser().resolve())}
    missing, resized = scores.missing, scores.resized
    errors, warnings = [], []
    if missing:
        errors.append(f"{pred_dir}: no mask for {len(missing)} of {total} samples (e.g. {missing[0]}.png); not scored")
    if resized:
        warnings.append(
            f"{pred_dir}: {len(resized)} of {total} masks differ in size from their labels "
            f"(e.g. {resized[0]}); resized to the labels with nearest"
        )
    failed = len(missing) + len(scores.errors)
    return Evaluation(
        info,
        dataset.class_names,
        (None,),
        [scores.matrix],
        total - failed,
        failed,
        0.0,
        errors=errors + scores.errors,
        warnings=warnings,
        failures=scores.failed,
    )


def _dataset_info(dataset: Dataset, limit: int | None) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "split": dataset.spec.title,
        "root": str(dataset.folder.resolve()),
        "split_size": len(dataset),
        "limit": limit,
    }


def _load(dataset: Dataset, samples: list[Sample]) -> tuple[list[Item], dict[str, str], list[str]]:
    """The readable samples, the error of each unreadable one by id, one warning per label sized unlike its image."""
    items, errors, warnings = [], {}, []
    for sample in samples:
        try:
            item = Item(sample, load_image(sample.image_path), dataset.load_label(sample))
        except InputError as exc:
            errors[sample.id] = str(exc)
            continue
        (height, width), image = item.label.shape, item.image
        if (width, height) != image.size:
            warnings.append(
                f"{sample.id}: label {sample.label_path} is {width}x{height} but image {sample.image_path} is "
                f"{image.width}x{image.height}; the prediction is resized to the label (nearest)"
            )
        items.append(item)
    return items, errors, warnings


def _predictions(dataset, item: Item, result, thresholds) -> list[np.ndarray]:
    """One image's prediction (metric indices, the label's size) per threshold, thresholded as the engine does."""
    height, width = item.label.shape
    return [
        dataset.prediction_to_metric(resize_labels(result.labels_at(threshold), (width, height)), result.classes)
        for threshold in thresholds
    ]


@dataclass
class _MaskRecords:
    """Where each sample's saved masks go and the request each is made with (see ``provenance``)."""

    dataset: Dataset
    segmenter: Any
    prompts: PromptSource
    thresholds: tuple[float, ...]
    model_name: str | None
    folder: Path

    def paths(self, sample: Sample) -> list[Path]:
        if len(self.thresholds) == 1:
            return [self.folder / f"{sample.id}.png"]
        return [self.folder / f"{threshold:g}" / f"{sample.id}.png" for threshold in self.thresholds]

    def requests(self, sample: Sample) -> dict[Path, dict]:
        """The request of each of the sample's masks, by path."""
        dataset = {"name": self.dataset.name, "split": self.dataset.spec.title}
        prompt = self.prompts.request(sample.id)
        model = self.model_name or str(self.segmenter.model.path)
        settings = [self.segmenter.settings.with_(threshold=threshold) for threshold in self.thresholds]
        return {path: request(s, model, dataset=dataset, **prompt) for path, s in zip(self.paths(sample), settings)}

    def save(self, sample: Sample, result, predictions: list[np.ndarray]) -> None:
        """Write the sample's masks in the dataset's label values, each with its record, all or none."""
        found = {"classes": result.classes, "prompt": result.prompt}
        sources = {"class_source": self.prompts.classes_name, "caption_source": self.prompts.captions_name}
        with together():
            for (path, made_with), prediction in zip(self.requests(sample).items(), predictions):
                stored = self.dataset.metric_to_stored(prediction)
                image = mask_image(stored) if self.dataset.spec.palette else Image.fromarray(stored)
                write_png(path, image, record(made_with, **found, **sources))


def _scores(matrix: ConfusionMatrix, class_names: tuple[str, ...]) -> dict[str, Any]:
    def percent(value: float) -> float | None:
        return None if math.isnan(value) else 100 * float(value)

    return {
        "miou": percent(matrix.miou()),
        "pixel_accuracy": percent(matrix.pixel_accuracy()),
        "iou": {name: percent(v) for name, v in zip(class_names, matrix.iou())},
    }
