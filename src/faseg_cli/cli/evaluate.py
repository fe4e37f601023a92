"""``faseg eval``: mIoU of FA-Seg, or of saved masks, on a local dataset split."""

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from faseg_cli.cli.console import INTERRUPTED, configure_logging, error, guarded, note, progress_bar, warning
from faseg_cli.cli.help import examples
from faseg_cli.cli.options import CandidateOptions, EngineOptions, candidate_options, engine_options
from faseg_cli.errors import UsageError

DATASETS = "voc, voc20, context, context59, coco-object, coco-stuff, ade or cityscapes"
EXAMPLES = examples(
    (
        "mIoU on PASCAL VOC val with the paper's settings, results JSON in voc.json",
        "faseg eval voc data/VOCdevkit -o voc.json",
    ),
    (
        "three thresholds from the same forward passes, keeping the masks",
        "faseg eval voc data/VOCdevkit --thresholds 0.5,0.55,0.6 --save-masks masks",
    ),
    (
        "score saved masks (another method's, or these) without a model",
        "faseg eval voc data/VOCdevkit --predictions masks/0.55",
    ),
    (
        "smoke test on the first two images with the tiny random-weight model",
        "faseg eval ade data/ade --limit 2 -m tiny-random",
    ),
)


@guarded
@candidate_options
@engine_options
def evaluate(
    dataset: str = typer.Argument(..., metavar="DATASET", help=f"Dataset setting: {DATASETS}."),
    root: Path = typer.Argument(
        ..., metavar="ROOT", help="The dataset's folder or a parent of it (see docs/datasets.md)."
    ),
    class_lists: Optional[str] = typer.Option(
        None,
        "--candidates",
        metavar="auto|all|gt|FILE",
        help="Class list per image: auto (BLIP + TagCLIP candidates among the dataset's classes: FA-Seg's own "
        "result; its default), all (every class of the dataset: NACLIP's published protocol; its default), gt (the "
        "classes in each ground-truth label: an oracle that sees the answer) or a file.",
    ),
    captions: Optional[str] = typer.Option(
        None,
        "--captions",
        metavar="auto|none|FILE",
        help="Caption per image: auto (BLIP; default with --candidates auto), none ('a photo of <classes>'; "
        "default otherwise) or a file.",
    ),
    thresholds: Optional[str] = typer.Option(
        None,
        "--thresholds",
        metavar="RANGE|LIST",
        help="Several thresholds from the same forward passes: 0.4:0.65:0.05 or 0.5,0.55.",
    ),
    predictions: Optional[Path] = typer.Option(
        None,
        "--predictions",
        metavar="DIR",
        help="Score the masks <id>.png in this folder (dataset label values); no model.",
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", min=1, metavar="N", help="Only the first N samples of the split."
    ),
    save_masks: Optional[Path] = typer.Option(
        None, "--save-masks", metavar="DIR", help="Write each prediction as <id>.png in the dataset's label values."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the results JSON here."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run that wrote --output."),
    json_output: bool = typer.Option(False, "--json", help="Print the results JSON on stdout instead of the summary."),
    batch_size: int = typer.Option(1, "--batch-size", "-b", min=1, metavar="N", help="Images per UNet pass."),
    candidates: CandidateOptions = None,
    engine: EngineOptions = None,
) -> None:
    """Evaluate on a dataset split: per-class IoU, mIoU and pixel accuracy (paper protocol).

    One confusion matrix over the split; 255 ignored; predictions resized to the
    labels' size with nearest. Each image's classes are found by BLIP + TagCLIP
    and it is captioned by BLIP, as in the paper's main table; --candidates gt is
    the oracle. The default threshold is the dataset's (context 0.5, coco-object
    0.6, the others 0.55). Runs unchanged under torchrun or accelerate launch (each
    process takes a shard). stdout: one summary line per threshold, or the results
    JSON with --json; the per-class table goes to stderr.

    Exit code 0: done; 1: some images failed (not scored); 2: usage error.
    """
    from faseg_cli.evaluation.datasets import get_dataset
    from faseg_cli.evaluation.sharding import Workers

    workers = Workers.from_env()
    if not workers.primary:
        configure_logging(quiet=True)
    data = get_dataset(dataset).open(root, images=predictions is None)
    if predictions is not None:
        given = {
            "--thresholds": thresholds,
            "--threshold": engine.threshold,
            "--candidates": class_lists,
            "--captions": captions,
            "--save-masks": save_masks,
            "--resume": resume or None,
        }
        for flag, value in given.items():
            if value is not None:
                raise UsageError(f"{flag} does not apply to --predictions, which scores saved masks")
        from faseg_cli.evaluation.runner import evaluate_saved_masks

        result = evaluate_saved_masks(data, predictions, limit)
        if workers.primary:
            for message in result.warnings:
                warning(message)
            for message in result.errors:
                error(message)
    else:
        result = _run_model(
            data,
            engine,
            candidates,
            workers,
            class_lists,
            captions,
            thresholds,
            limit,
            save_masks,
            output,
            resume,
            batch_size,
        )
    if workers.primary:
        _report(result, output, json_output)
    raise typer.Exit(1 if result.failed else 0)


def _run_model(
    data,
    engine,
    candidate_models,
    workers,
    class_lists,
    captions,
    thresholds,
    limit,
    save_masks,
    output,
    resume,
    batch_size,
):
    from faseg_cli.classes.eval_source import ALL, GROUND_TRUTH, prompt_source
    from faseg_cli.classes.source import AUTO
    from faseg_cli.evaluation.runner import evaluate, parse_thresholds
    from faseg_cli.evaluation.state import state_path
    from faseg_cli.files.outputs import check_writable

    if thresholds is not None and engine.threshold is not None:
        raise UsageError("--threshold and --thresholds: give one of them")
    if resume and output is None:
        raise UsageError("--resume needs --output: the state of a run is kept beside its results file")
    settings = engine.settings(default_threshold=data.threshold, dataset=data.name)
    sweep = parse_thresholds(thresholds) if thresholds is not None else (settings.threshold,)
    if candidate_models.vocab:
        raise UsageError("--vocab does not apply to eval: the dataset's classes are the vocabulary")
    prompts = prompt_source(class_lists or (ALL if engine.method == "naclip" else AUTO), captions, data)
    if prompts.classes_name == GROUND_TRUTH and workers.primary:
        note("--candidates gt: each image is segmented into the classes of its ground truth (an oracle)")
    for folder in [output.parent if output else None, save_masks]:
        if folder is not None:
            check_writable(folder)
    state_file = state_path(output, workers.rank, workers.world_size) if output else None
    if resume and not state_file.is_file():
        note(f"nothing to resume in {state_file}: starting from the beginning")
    engine = replace(engine, device=workers.device(engine.device))
    segmenter = engine.load(settings)
    models = replace(candidate_models, vocab=data.spec.vocabulary)
    models.attach(prompts.source, engine, generate=prompts.generates_classes)
    seen = []
    try:
        with workers.connected(segmenter.model.device), _progress(workers.primary) as progress:
            return evaluate(
                data,
                segmenter,
                prompts,
                thresholds=sweep,
                batch_size=batch_size,
                limit=limit,
                masks_dir=save_masks,
                state_file=state_file,
                resume=resume,
                workers=workers,
                on_progress=lambda event: (seen.append(event), progress(event)),
                model_name=engine.model,
            )
    except KeyboardInterrupt:
        if workers.primary:
            error(_interrupted(state_file, seen[-1] if seen else None))
        raise typer.Exit(INTERRUPTED) from None


def _interrupted(state_file: Optional[Path], last) -> str:
    """What Ctrl-C left: how far the run got and whether (and from where) ``--resume`` continues it."""
    if state_file is None:
        return "interrupted; nothing was kept: give --output FILE to be able to continue with --resume"
    done = f"{last.done} of {last.total} images done" if last is not None else "no image done"
    if not state_file.is_file():
        return f"interrupted ({done}); nothing was saved yet: the same command starts over"
    return f"interrupted ({done}); the same command with --resume continues from {state_file}"


@contextmanager
def _progress(show: bool):
    """A progress callback: a bar with the running mIoU on a terminal, notes, and one error line per failed image."""
    with progress_bar("mIoU {task.fields[miou]}", show=show) as bar:
        task = bar.add_task("Evaluating", total=None, miou="-")

        def update(event) -> None:
            for message in event.warnings:
                warning(message)
            for message in event.notes:
                note(message)
            for message in event.errors:
                error(message)
            bar.update(task, total=event.total, completed=event.done + event.failed, miou=_percent(event.miou))

        yield update


def _report(result, output: Optional[Path], json_output: bool) -> None:
    from faseg_cli.files.outputs import atomic_write

    data = result.to_dict()
    for table in _tables(data):
        note(table)
    if output is not None:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        atomic_write(output, lambda tmp: tmp.write_text(text, "utf-8"))
    images = f"{result.images} image{'s' * (result.images != 1)}"
    per_image = f", {result.seconds / result.images:.2f} s/image" if result.images and result.seconds else ""
    failed = f"; {result.failed} failed (not scored)" if result.failed else ""
    note(f"Evaluated {images} of {data['split']}{per_image}{failed}")
    if json_output:
        typer.echo(json.dumps(data, allow_nan=False))
        return
    for entry in data["per_threshold"]:
        if entry["threshold"] is None:
            how = "predictions"
        else:
            how = f"classes {data['class_source']}, threshold {entry['threshold']:g}"
        typer.echo(f"{data['dataset']} mIoU {_percent(entry['miou'])} ({how}, {images})")


def _tables(data: dict) -> list:
    """IoU per class at the best threshold; with several thresholds, mIoU and accuracy per threshold."""
    from rich.table import Table

    entries = data["per_threshold"]
    best = next(e for e in entries if e["threshold"] == data["best_threshold"])
    at = "" if best["threshold"] is None else f" at threshold {best['threshold']:g}"
    classes = Table(title=f"{data['split']}: IoU per class (%){at}")
    classes.add_column("class", no_wrap=True)
    classes.add_column("IoU", justify="right")
    for name, value in best["iou"].items():
        classes.add_row(name, _percent(value))
    classes.add_section()
    classes.add_row("mIoU", _percent(best["miou"]))
    classes.add_row("pixel accuracy", _percent(best["pixel_accuracy"]))
    if len(entries) == 1:
        return [classes]
    sweep = Table(title="By threshold (%)")
    for head in ("threshold", "mIoU", "pixel accuracy"):
        sweep.add_column(head, justify="right")
    for entry in entries:
        mark = " *" if entry is best else ""
        sweep.add_row(f"{entry['threshold']:g}{mark}", _percent(entry["miou"]), _percent(entry["pixel_accuracy"]))
    return [classes, sweep]


def _percent(value: Optional[float]) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"
