"""``faseg segment``: masks for image files, folders, patterns or paths on stdin."""

import json
from typing import Optional

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.options import BatchOptions, EngineOptions, batch_options, engine_options
from faseg_cli.errors import UsageError

CLASSES_HELP = "Comma-separated class names, e.g. dog,person."
CAPTION_HELP = "Text prompt describing the image. Default: 'a photo of' followed by the classes."


def parse_class_list(text: Optional[str]) -> list:
    """``"dog, person"`` -> ``["dog", "person"]``, validated (empty and duplicate names are usage errors)."""
    from faseg_cli.prompts import validate_classes

    if text is None:
        raise UsageError("no classes given: use --classes, e.g. --classes dog,person")
    return validate_classes(text.split(","))


def json_record(item, files: dict, result, seconds: float) -> str:
    """The JSON line of one processed image."""
    return json.dumps(
        {
            "input": str(item.path),
            "outputs": {kind: str(path) for kind, path in files.items()},
            "classes": result.classes,
            "fractions": result.fractions(),
            "seconds": round(seconds, 4),
        }
    )


@guarded
@batch_options("faseg-out", "mask paths")
@engine_options
def segment(
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help=CLASSES_HELP),
    caption: Optional[str] = typer.Option(None, "--caption", help=CAPTION_HELP),
    overlay: bool = typer.Option(False, "--overlay", help="Also write <name>.overlay.jpg (image, colours, legend)."),
    scores: bool = typer.Option(False, "--scores", help="Also write <name>.npz with the per-class score maps."),
    batch: BatchOptions = None,
    engine: EngineOptions = None,
) -> None:
    """Segment images into the given classes and write label masks (palette PNGs).

    Each mask has the input's size: 0 is background, k the k-th class of --classes.
    Paths of written masks go to stdout (JSON lines with --json); progress and
    errors go to stderr. Exit code 0: all done; 1: some inputs failed; 2: usage error.
    """
    from faseg_cli.cli.runner import run_image_command
    from faseg_cli.outputs import write_mask, write_overlay, write_scores

    names = parse_class_list(classes)
    settings = engine.settings()

    def prepare():
        segmenter = engine.load(settings)
        return lambda images: segmenter.segment_batch(images, [names] * len(images), [caption] * len(images))

    def emit(entry, image, result, seconds):
        item, plan = entry
        files = plan.files
        write_mask(files["mask"], result.labels)
        if overlay:
            write_overlay(files["overlay"], image, result.labels, result.classes)
        if scores:
            write_scores(files["scores"], result.scores.numpy(), result.classes)
        typer.echo(json_record(item, files, result, seconds) if batch.json_lines else str(files["mask"]))

    kinds = ["mask"] + ["overlay"] * overlay + ["scores"] * scores
    run_image_command(batch, kinds, prepare, emit, "Segmented")
