"""``faseg attention``: dump the attention maps behind each mask, as arrays and heat maps."""

from typing import Optional

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.options import BatchOptions, EngineOptions, batch_options, engine_options
from faseg_cli.cli.segment import CAPTION_HELP, CLASSES_HELP, json_record, parse_class_list


@guarded
@batch_options("faseg-attention", "folder paths")
@engine_options
def attention(
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help=CLASSES_HELP),
    caption: Optional[str] = typer.Option(None, "--caption", help=CAPTION_HELP),
    batch: BatchOptions = None,
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
        typer.echo(json_record(item, plan.files, result, seconds) if batch.json_lines else str(plan.files["attention"]))

    run_image_command(batch, ["attention"], prepare, emit, "Dumped")
