"""``faseg attention``: dump the attention maps behind each mask, as arrays and heat maps."""

from pathlib import Path
from typing import Optional

import typer

from faseg_cli.cli.console import guarded, print_result
from faseg_cli.cli.help import examples
from faseg_cli.cli.options import (
    BatchOptions,
    CandidateOptions,
    EngineOptions,
    batch_options,
    candidate_options,
    engine_options,
)
from faseg_cli.cli.segment import (
    CAPTION_HELP,
    CLASSES_HELP,
    class_source,
    job_loader,
    json_record,
    output_record,
    output_requests,
    replay_lines,
    segment_jobs,
)
from faseg_cli.errors import UsageError

EXAMPLES = examples(
    ("attention maps and heat maps of two classes", "faseg attention photo.jpg --classes dog,person"),
    (
        "without the self-attention refinement, into another folder",
        "faseg attention photo.jpg --classes dog --no-refine -o attention-no-hard",
    ),
)


@guarded
@batch_options("faseg-attention", "folder paths")
@candidate_options
@engine_options
def attention(
    classes: Optional[str] = typer.Option(None, "--classes", "-c", metavar="NAMES", help=CLASSES_HELP),
    classes_from: Optional[Path] = typer.Option(
        None, "--classes-from", metavar="FILE", help="Per-image class lists (see segment)."
    ),
    caption: Optional[str] = typer.Option(None, "--caption", metavar="TEXT", help=CAPTION_HELP),
    captions_from: Optional[Path] = typer.Option(
        None, "--captions-from", metavar="FILE", help="Per-image captions (see segment)."
    ),
    batch: BatchOptions = None,
    candidates: CandidateOptions = None,
    engine: EngineOptions = None,
) -> None:
    """Write the attention maps of each image: <name>/attention.npz and one heat-map grid per class.

    The arrays are exactly those `faseg segment` computes its mask from: cross-
    and self-attention per resolution, fused, refined and final scores. Classes
    and captions are chosen as in `faseg segment`. The folder path per image
    goes to stdout (JSON lines with --json).
    """
    from faseg_cli.cli.runner import run_image_command
    from faseg_cli.engine.faseg.dump import attention_arrays
    from faseg_cli.files.heatmaps import class_grid
    from faseg_cli.files.outputs import write_attention

    if engine.method != "fa-seg":
        raise UsageError(f"faseg attention dumps FA-Seg's attention maps; --method {engine.method} has none")
    source = class_source(classes, classes_from, caption, captions_from, candidates)
    settings = engine.settings()

    def prepare():
        segmenter = engine.load(settings)
        candidates.attach(source, engine, generate=source.classes is None and source.class_lists is None)
        return segment_jobs(segmenter, source, keep_maps=True)

    def emit(entry, job, result, seconds):
        item, plan = entry
        grids = {
            f"{k + 1:02d}-{name}": class_grid(job.image, result, k, threshold=settings.threshold)
            for k, name in enumerate(result.classes)
        }
        folder = plan.files["attention"]
        write_attention(folder, attention_arrays(result, settings), grids, output_record(plan, result, source))
        print_result(json_record(item, plan.files, result, seconds, settings) if batch.json_lines else str(folder))

    made_with = output_requests(source, candidates, engine, settings)
    raise typer.Exit(
        run_image_command(
            batch,
            ["attention"],
            prepare,
            emit,
            "Dumped",
            job_loader(source),
            made_with=made_with,
            replay=replay_lines(batch, settings),
        )
    )
