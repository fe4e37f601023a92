"""``faseg attention``: dump the attention maps behind each mask, as arrays and heat maps."""

from pathlib import Path
from typing import List, Optional

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.options import EngineOptions, engine_options
from faseg_cli.cli.segment import CAPTION_HELP, CLASSES_HELP, INPUTS_HELP, json_record, parse_class_list


@guarded
@engine_options
def attention(
    inputs: List[str] = typer.Argument(..., help=INPUTS_HELP),
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help=CLASSES_HELP),
    caption: Optional[str] = typer.Option(None, "--caption", help=CAPTION_HELP),
    output_dir: Path = typer.Option(Path("faseg-attention"), "--output-dir", "-o", help="Where results are written."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into subfolders of folder inputs."),
    batch_size: int = typer.Option(1, "--batch-size", "-b", min=1, help="Images per UNet pass."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON object per image on stdout instead of paths."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip images whose folder exists (resume)."),
    engine: EngineOptions = None,
) -> None:
    """Write the attention maps of each image: <name>/attention.npz and one heat-map grid per class.

    The arrays are exactly those `faseg segment` computes its mask from: cross- and
    self-attention per resolution, fused, refined and final scores. The folder path
    per image goes to stdout (JSON lines with --json).
    """
    from faseg_cli.attention_dump import attention_arrays
    from faseg_cli.cli.runner import run_image_command
    from faseg_cli.heatmaps import class_grid
    from faseg_cli.outputs import write_attention

    names = parse_class_list(classes)
    settings = engine.settings()

    def prepare():
        segmenter = engine.load(settings)
        return lambda images: segmenter.segment_batch(images, [names] * len(images), [caption] * len(images), True)

    def emit(entry, image, result, seconds):
        item, plan = entry
        grids = {f"{k + 1:02d}-{name}": class_grid(image, result, k) for k, name in enumerate(result.classes)}
        write_attention(plan.files["attention"], attention_arrays(result, settings), grids)
        typer.echo(json_record(item, plan.files, result, seconds) if json_lines else str(plan.files["attention"]))

    run_image_command(inputs, recursive, output_dir, ["attention"], skip_existing, batch_size, prepare, emit, "Dumped")
