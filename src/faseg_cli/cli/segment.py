"""``faseg segment``: masks for image files, folders, patterns or paths on stdin."""

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from faseg_cli.cli.console import error, guarded, note
from faseg_cli.cli.options import EngineOptions, engine_options
from faseg_cli.errors import UsageError


def parse_class_list(text: Optional[str]) -> list:
    """``"dog, person"`` -> ``["dog", "person"]``, validated (empty and duplicate names are usage errors)."""
    from faseg_cli.prompts import validate_classes

    if text is None:
        raise UsageError("no classes given: use --classes, e.g. --classes dog,person")
    return validate_classes(text.split(","))


@guarded
@engine_options
def segment(
    inputs: List[str] = typer.Argument(..., help="Image files, folders, glob patterns, or - to read paths from stdin."),
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help="Comma-separated class names, e.g. dog,person."),
    caption: Optional[str] = typer.Option(
        None, "--caption", help="Text prompt describing the image. Default: 'a photo of' followed by the classes."
    ),
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
    from faseg_cli.cli.runner import Tally, report, run_batches
    from faseg_cli.images import load_image
    from faseg_cli.inputs import collect_inputs
    from faseg_cli.outputs import ensure_writable, plan_outputs, write_mask, write_overlay, write_scores

    names = parse_class_list(classes)
    settings = engine.settings()
    found = collect_inputs(inputs, recursive, sys.stdin)
    for message in found.notes:
        note(message)
    tally = Tally(failed=len(found.errors))
    for message in found.errors:
        error(message)
    kinds = ["mask"] + ["overlay"] * overlay + ["scores"] * scores
    plans = plan_outputs(found.items, output_dir, kinds)
    todo = [(item, plan) for item, plan in zip(found.items, plans) if not (skip_existing and plan.done())]
    tally.skipped = len(found.items) - len(todo)
    if todo:
        ensure_writable(output_dir)
        segmenter = engine.load(settings)

        def emit(entry, image, result, seconds):
            item, plan = entry
            files = plan.files
            write_mask(files["mask"], result.labels)
            if overlay:
                write_overlay(files["overlay"], image, result.labels, result.classes)
            if scores:
                write_scores(files["scores"], result.scores.numpy(), result.classes)
            if json_lines:
                record = {
                    "input": str(item.path),
                    "outputs": {kind: str(path) for kind, path in files.items()},
                    "classes": result.classes,
                    "fractions": result.fractions(),
                    "seconds": round(seconds, 4),
                }
                typer.echo(json.dumps(record))
            else:
                typer.echo(str(files["mask"]))

        run_batches(
            todo,
            batch_size,
            load=lambda entry: load_image(entry[0].path),
            compute=lambda images: segmenter.segment_batch(images, [names] * len(images), [caption] * len(images)),
            emit=emit,
            tally=tally,
            description="Segmenting",
        )
    elif not found.items and not found.errors:
        raise UsageError("no images to process")
    report(tally, "Segmented")
    raise typer.Exit(tally.exit_code)
