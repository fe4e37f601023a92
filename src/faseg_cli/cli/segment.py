"""``faseg segment``: masks for image files, folders, patterns or paths on stdin."""

import json
from pathlib import Path
from typing import List, Optional

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.options import EngineOptions, engine_options
from faseg_cli.errors import UsageError

INPUTS_HELP = "Image files, folders, glob patterns, or - to read paths from stdin."
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
@engine_options
def segment(
    inputs: List[str] = typer.Argument(..., help=INPUTS_HELP),
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help=CLASSES_HELP),
    caption: Optional[str] = typer.Option(None, "--caption", help=CAPTION_HELP),
    output_dir: Path = typer.Option(Path("faseg-out"), "--output-dir", "-o", help="Where results are written."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into subfolders of folder inputs."),
    batch_size: int = typer.Option(1, "--batch-size", "-b", min=1, help="Images per UNet pass."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write <name>.overlay.jpg (image, colours, legend)."),
    scores: bool = typer.Option(False, "--scores", help="Also write <name>.npz with the per-class score maps."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON object per image on stdout instead of paths."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip images whose outputs all exist (resume)."),
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
        typer.echo(json_record(item, files, result, seconds) if json_lines else str(files["mask"]))

    kinds = ["mask"] + ["overlay"] * overlay + ["scores"] * scores
    run_image_command(inputs, recursive, output_dir, kinds, skip_existing, batch_size, prepare, emit, "Segmented")
