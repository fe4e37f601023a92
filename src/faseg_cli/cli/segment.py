"""``faseg segment``: masks for image files, folders, patterns or paths on stdin."""

import json
from pathlib import Path
from typing import Optional

import typer

from faseg_cli.cli.console import guarded, note, print_result
from faseg_cli.cli.help import examples
from faseg_cli.cli.options import (
    BatchOptions,
    CandidateOptions,
    EngineOptions,
    batch_options,
    candidate_options,
    engine_options,
)
from faseg_cli.errors import UsageError

CLASSES_HELP = "Comma-separated class names, e.g. dog,person."
CAPTION_HELP = "Text prompt describing the image, or 'auto' for a BLIP caption. Default: 'a photo of' the classes."

EXAMPLES = examples(
    (
        "one image into dog, person and background, with a coloured overlay",
        "faseg segment photo.jpg --classes dog,person --overlay",
    ),
    ("a folder and its subfolders, masks into masks/", "faseg segment photos/ -r --classes cat -o masks"),
    (
        "classes found per image among COCO's, with a BLIP caption",
        "faseg segment photo.jpg --vocab coco --caption auto",
    ),
    (
        "paths from find (NUL-separated), one JSON line per image",
        "find photos -name '*.jpg' -print0 | faseg segment - -0 --classes tree --json",
    ),
)


def parse_class_list(text: Optional[str]) -> list:
    """``"dog, person"`` -> ``["dog", "person"]``, validated (empty and duplicate names are usage errors)."""
    from faseg_cli.vocabularies import validate_classes

    if text is None:
        raise UsageError("no classes given: use --classes, e.g. --classes dog,person")
    return validate_classes(text.split(","))


def class_source(classes, classes_from, caption, captions_from, candidates: CandidateOptions):
    """The ``ClassSource`` for the class and caption options.

    Conflicting options are usage errors, found before any model loads.
    """
    from faseg_cli.classes.per_image import read_captions, read_class_lists
    from faseg_cli.classes.source import ClassSource

    if classes is not None and (classes_from is not None or candidates.vocab):
        raise UsageError("--classes excludes --classes-from and --vocab")
    if caption is not None and captions_from is not None:
        raise UsageError("--caption excludes --captions-from")
    vocabulary = candidates.vocabulary()
    if classes is None and classes_from is None and vocabulary is None:
        raise UsageError("no classes given: use --classes dog,person, --vocab coco (automatic) or --classes-from FILE")
    return ClassSource(
        classes=parse_class_list(classes) if classes is not None else None,
        class_lists=read_class_lists(classes_from, vocabulary) if classes_from is not None else None,
        caption=caption,
        captions=read_captions(captions_from) if captions_from is not None else None,
    )


def json_record(item, files: dict, result, seconds: float, settings) -> str:
    """The JSON line of one processed image (``settings``: those it was made with, FA-Seg's or NACLIP's)."""
    from faseg_cli.files.palette import class_colors

    return json.dumps(
        {
            "input": str(item.path),
            "outputs": {kind: str(path) for kind, path in files.items()},
            "classes": result.classes,
            "prompt": result.prompt,
            **settings.summary(),
            "fractions": result.fractions(),
            "colors": class_colors(result.classes),
            "seconds": round(seconds, 4),
        }
    )


def replayed_record(item, files: dict, records: dict, settings) -> str:
    """The JSON line of an image skipped by ``--skip-existing``, read back from its stored outputs (``records``:
    their provenance records by path): as ``json_record``, with ``"skipped": true`` and no time spent."""
    from faseg_cli.engine.base import label_fractions
    from faseg_cli.files.outputs import read_labels
    from faseg_cli.files.provenance import RESULT

    kind, path = next(iter(files.items()))
    found = records[path][RESULT]
    return json.dumps(
        {
            "input": str(item.path),
            "outputs": {kind: str(path) for kind, path in files.items()},
            "classes": found["classes"],
            "prompt": found["prompt"],
            **settings.summary(),
            "fractions": label_fractions(read_labels(kind, path), found["classes"]),
            "seconds": 0.0,
            "skipped": True,
        }
    )


def replay_lines(batch: BatchOptions, settings):
    """``run_image_command``'s ``replay``: with ``--json``, the line of each skipped image (else none)."""
    if not batch.json_lines:
        return None
    return lambda entry, records: print_result(replayed_record(entry[0], entry[1].files, records, settings))


def output_requests(source, candidates: CandidateOptions, engine: EngineOptions, settings):
    """Per input, the request its outputs are recorded with (``provenance``); None when its class
    list cannot be looked up (the image then fails when loaded)."""
    from faseg_cli.errors import InputError
    from faseg_cli.files.provenance import request

    candidates.describe(source, source.classes is None and source.class_lists is None, engine.model)

    def made_with(item):
        try:
            return request(settings, engine.model, **source.request(item.path))
        except InputError:
            return None

    return made_with


def output_record(plan, result, source) -> str:
    """The record written into an image's outputs: the plan's request and what the run found."""
    from faseg_cli.files.provenance import record

    return record(plan.request, classes=result.classes, prompt=result.prompt, **source.sources())


def segment_jobs(segmenter, source, keep_maps: bool = False):
    """The batch function of segment-like commands: complete the prompts, then segment."""

    def compute(jobs):
        classes, captions = source.complete(jobs)
        return segmenter.segment_batch([job.image for job in jobs], classes, captions, keep_maps)

    return compute


def job_loader(source):
    """Per image: load it and look up its class list and caption (errors fail that image only)."""
    from faseg_cli.files.images import load_image

    return lambda path: source.job(path, load_image(path))


@guarded
@batch_options("faseg-out", "mask paths")
@candidate_options
@engine_options
def segment(
    classes: Optional[str] = typer.Option(None, "--classes", "-c", metavar="NAMES", help=CLASSES_HELP),
    classes_from: Optional[Path] = typer.Option(
        None,
        "--classes-from",
        metavar="FILE",
        help="Per-image class lists: `faseg candidates` JSON lines or {image_id: 'cls cls'}.",
    ),
    caption: Optional[str] = typer.Option(None, "--caption", metavar="TEXT", help=CAPTION_HELP),
    captions_from: Optional[Path] = typer.Option(
        None,
        "--captions-from",
        metavar="FILE",
        help="Per-image captions: `faseg candidates` JSON lines or {image_id: 'caption'}.",
    ),
    overlay: bool = typer.Option(False, "--overlay", help="Also write <name>.overlay.jpg (image, colours, legend)."),
    scores: bool = typer.Option(False, "--scores", help="Also write <name>.npz with the per-class score maps."),
    batch: BatchOptions = None,
    candidates: CandidateOptions = None,
    engine: EngineOptions = None,
) -> None:
    """Segment images into classes and write label masks (palette PNGs).

    Classes come from --classes (the same for every image), --vocab (candidates
    found per image by BLIP + TagCLIP) or --classes-from (a file). Each mask has
    the input's size: 0 is background, k the k-th class of the image's list.
    Mask paths go to stdout (JSON lines with --json); progress and errors go to
    stderr.

    Exit code 0: all done; 1: some inputs failed; 2: usage error.
    """
    from faseg_cli.cli.runner import run_image_command
    from faseg_cli.files.outputs import together, write_mask, write_overlay, write_scores

    source = class_source(classes, classes_from, caption, captions_from, candidates)
    settings = engine.settings()

    def prepare():
        segmenter = engine.load(settings, candidates)
        candidates.attach(source, engine, generate=source.classes is None and source.class_lists is None)
        return segment_jobs(segmenter, source)

    def emit(entry, job, result, seconds):
        item, plan = entry
        files = plan.files
        if not result.classes:
            note(f"{item.path}: no classes for this image; the mask is all background")
        record = output_record(plan, result, source)
        with together():
            write_mask(files["mask"], result.labels, record)
            if overlay:
                write_overlay(files["overlay"], job.image, result.labels, result.classes, record)
            if scores:
                write_scores(files["scores"], result.scores, result.classes, record)
        print_result(json_record(item, files, result, seconds, settings) if batch.json_lines else str(files["mask"]))

    kinds = ["mask"] + ["overlay"] * overlay + ["scores"] * scores
    made_with = output_requests(source, candidates, engine, settings)
    raise typer.Exit(
        run_image_command(
            batch,
            kinds,
            prepare,
            emit,
            "Segmented",
            job_loader(source),
            made_with=made_with,
            replay=replay_lines(batch, settings),
        )
    )
