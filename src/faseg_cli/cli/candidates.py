"""``faseg candidates``: candidate classes (and captions) per image from a vocabulary."""

import json
from pathlib import Path
from typing import Optional

import typer

from faseg_cli.cli.console import guarded, note, print_result
from faseg_cli.cli.help import examples
from faseg_cli.cli.options import (
    BatchOptions,
    CandidateOptions,
    DeviceOptions,
    batch_options,
    candidate_options,
    device_options,
)
from faseg_cli.errors import UsageError

EXAMPLES = examples(
    ("the COCO classes one image shows, as a JSON line", "faseg candidates photo.jpg --vocab coco"),
    ("candidates for a folder, saved for segment", "faseg candidates photos/ --vocab voc > candidates.jsonl"),
    (
        "segment with them",
        "faseg segment photos/ --vocab voc --classes-from candidates.jsonl",
    ),
    (
        "paths on stdin, with the tiny random-weight test models (no download)",
        "ls photos/*.jpg | faseg candidates - --vocab voc -m tiny-random",
    ),
)


@guarded
@batch_options(None, "")
@candidate_options
@device_options
def candidates_command(
    captions_from: Optional[Path] = typer.Option(
        None,
        "--captions-from",
        metavar="FILE",
        help="Use these captions instead of BLIP's: JSON lines or {image_id: 'caption'}.",
    ),
    save_classes: Optional[Path] = typer.Option(
        None,
        "--save-classes",
        metavar="FILE",
        help="Also write {image_id: 'cls cls'} (the format published with FA-Seg).",
    ),
    save_captions: Optional[Path] = typer.Option(
        None, "--save-captions", metavar="FILE", help="Also write {image_id: 'caption'}."
    ),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        "-m",
        metavar="NAME",
        help="The segmentation model the candidates are for, as in `faseg segment`: with tiny-random, "
        "--caption-model and --clip-model default to tiny-blip and tiny-clip (no download).",
        rich_help_panel="Candidate classes",
    ),
    batch: BatchOptions = None,
    candidates: CandidateOptions = None,
    devices: DeviceOptions = None,
) -> None:
    """Propose candidate classes for each image from a vocabulary (--vocab is required).

    Prints one JSON object per image on stdout: image, caption, candidates (in
    the vocabulary's spelling and order), the TagCLIP labels, the caption
    matches and every class's TagCLIP score. The output can be fed back with
    `faseg segment --classes-from` and `--captions-from`.
    """
    from faseg_cli.candidates import save_class_lists
    from faseg_cli.classes.per_image import read_captions
    from faseg_cli.cli.runner import run_image_command
    from faseg_cli.files.images import load_image
    from faseg_cli.files.outputs import atomic_write

    if not candidates.vocab:
        raise UsageError("--vocab is required, e.g. --vocab coco")
    candidates.vocabulary()
    captions = read_captions(captions_from) if captions_from is not None else None
    found_lists = {}

    def load(path):
        return load_image(path), captions.get(path) if captions is not None else None

    def prepare():
        generator = candidates.chosen_for(model).generator(devices, captions_given=captions is not None)
        return lambda items: generator.generate(
            [image for image, _ in items], [c for _, c in items] if captions else None
        )

    def emit(entry, loaded, found, seconds):
        path = entry[0].path
        record = {
            "image": str(path),
            "caption": found.caption,
            "candidates": list(found.candidates),
            "tagclip": list(found.tagclip),
            "caption_matches": list(found.caption_matches),
            "scores": {name: round(score, 5) for name, score in found.scores.items()},
            "seconds": round(seconds, 4),
        }
        print_result(json.dumps(record, ensure_ascii=False))
        if save_classes is not None or save_captions is not None:
            found_lists[path] = (found.candidates, found.caption)

    def finish(workers, entries):
        """Rank 0 saves the lists found by every process, in input order."""
        merged = {}
        for part in workers.gather(found_lists):
            merged.update(part)
        if not workers.primary:
            return
        done = [(item.path.stem, merged[item.path]) for item, _ in entries if item.path in merged]
        found_classes = {stem: classes for stem, (classes, _) in done}
        found_captions = {stem: caption for stem, (_, caption) in done}
        if save_classes is not None:
            atomic_write(save_classes, lambda tmp: save_class_lists(tmp, found_classes))
            note(f"Wrote {len(found_classes)} class lists to {save_classes}")
        if save_captions is not None and any(found_captions.values()):
            text = json.dumps(found_captions, ensure_ascii=False)
            atomic_write(save_captions, lambda tmp: tmp.write_text(text, encoding="utf-8"))
            note(f"Wrote {len(found_captions)} captions to {save_captions}")

    raise typer.Exit(run_image_command(batch, [], prepare, emit, "Proposed", load, finish=finish))
