"""``faseg segment``: masks for image files, folders, patterns or paths on stdin."""

import json
from dataclasses import dataclass
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

REFERENCE = "coco"
"""--drop-absent's default reference vocabulary: COCO's 80 classes, as TagCLIP classifies COCO."""
CLASSES_HELP = "Comma-separated class names, e.g. dog,person."
CAPTION_HELP = "Text prompt describing the image, or 'auto' for a BLIP caption. Default: 'a photo of' the classes."

EXAMPLES = examples(
    (
        "one image into dog, person and background, with a coloured overlay",
        "faseg segment photo.jpg --classes dog,person --overlay",
    ),
    (
        "a folder and its subfolders, masks into masks/ and one COCO file (RLE masks) for annotation tools",
        "faseg segment photos/ -r --classes cat -o masks --coco masks.json",
    ),
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


def json_record(item, files: dict, result, seconds: float, settings, dropped: list | None = None) -> str:
    """The JSON line of one processed image (``settings``: those it was made with, FA-Seg's or NACLIP's;
    ``dropped``: with --drop-absent, the classes dropped)."""
    extra = {"dropped": dropped} if dropped is not None else {}
    return _line(item, files, result.classes, result.prompt, settings, result.fractions(), seconds, extra)


def replayed_record(item, files: dict, records: dict, settings) -> str:
    """The JSON line of an image skipped by ``--skip-existing``, read back from its stored outputs (``records``:
    their provenance records by path): as ``json_record``, with ``"skipped": true`` and no time spent."""
    from faseg_cli.engine.base import label_fractions
    from faseg_cli.files.outputs import read_labels
    from faseg_cli.files.provenance import RESULT

    kind, path = next(iter(files.items()))
    found = records[path][RESULT]
    fractions = label_fractions(read_labels(kind, path), found["classes"])
    return _line(item, files, found["classes"], found["prompt"], settings, fractions, 0.0, {"skipped": True})


def _line(item, files: dict, classes: list, prompt: str, settings, fractions: dict, seconds: float, extra) -> str:
    """One JSON line: what ``json_record`` and ``replayed_record`` share."""
    from faseg_cli.files.palette import class_colors

    return json.dumps(
        {
            "input": str(item.path),
            "outputs": {kind: str(path) for kind, path in files.items()},
            "classes": classes,
            "prompt": prompt,
            **settings.summary(),
            "fractions": fractions,
            "colors": class_colors(classes),
            "seconds": round(seconds, 4),
            **extra,
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


def output_record(plan, result, source, kind: str = "mask", dropped: list | None = None) -> str:
    """The record written into an image's output of ``kind``: its request and what the run found."""
    from faseg_cli.files.provenance import record

    found = {"dropped": dropped} if dropped is not None else {}
    return record(plan.request_of(kind), classes=result.classes, prompt=result.prompt, **found, **source.sources())


@dataclass(frozen=True)
class Annotations:
    """What --coco, --yolo, --instances, --min-area and --drop-absent ask for, checked before any model loads."""

    coco: Optional[Path]
    yolo: Optional[Path]
    instances: bool
    min_area: int
    drop_absent: bool
    reference_vocab: str

    def __post_init__(self) -> None:
        from faseg_cli.errors import OutputError
        from faseg_cli.files.outputs import check_writable
        from faseg_cli.files.regions import check_min_area, require_opencv
        from faseg_cli.files.yolo import check_folder

        if self.reference_vocab != REFERENCE and not self.drop_absent:
            raise UsageError("--reference-vocab applies to --drop-absent")
        if (self.instances or self.min_area != 1) and not self.wanted:
            raise UsageError("--instances and --min-area apply to --coco and --yolo")
        check_min_area(self.min_area, self.instances)
        if self.coco is not None:
            if self.coco.is_dir():
                raise UsageError(f"--coco {self.coco}: is a folder; give the JSON file to write")
            try:
                check_writable(self.coco.parent)
            except OutputError as exc:
                raise UsageError(f"--coco {self.coco}: {exc}") from None
        if self.yolo is not None:
            check_folder(self.yolo)
            try:
                check_writable(self.yolo)
            except OutputError as exc:
                raise UsageError(f"--yolo {self.yolo}: {exc}") from None
            require_opencv("--yolo")
        if self.instances:
            require_opencv("--instances")

    @property
    def wanted(self) -> bool:
        """Whether images get a regions record (``<name>.regions.json``)."""
        return self.coco is not None or self.yolo is not None

    def request_part(self) -> dict:
        """What the regions records depend on beyond the mask (a part of the request only they record)."""
        return {"regions": {"instances": self.instances, "min_area": self.min_area}} if self.wanted else {}

    def reference(self):
        """The --reference-vocab vocabulary."""
        from faseg_cli.vocabularies import builtin_names, load_vocabulary

        name = self.reference_vocab
        if name not in builtin_names() and not Path(name).expanduser().is_file():
            raise UsageError(
                f"--reference-vocab {name}: not a built-in vocabulary ({', '.join(builtin_names())}) nor a file"
            )
        return load_vocabulary(name)

    def describe(self, source, candidates: CandidateOptions, engine: EngineOptions) -> None:
        """Record in ``source`` what drops absent classes (for the outputs' requests); loads nothing."""
        from faseg_cli.files.provenance import vocabulary_identity
        from faseg_cli.models.weights import model_identity

        if self.drop_absent:
            source.generated_with["drop_absent"] = {
                "reference": vocabulary_identity(self.reference()),
                "clip_model": model_identity(candidates.for_model(engine.model).clip_model),
            }

    def attach(self, source, candidates: CandidateOptions, engine: EngineOptions) -> None:
        """Load TagCLIP's CLIP into ``source`` for --drop-absent."""
        from faseg_cli.candidates.absent import AbsentClasses

        if self.drop_absent:
            device, _ = engine.resolve()
            clip_model = candidates.for_model(engine.model).clip_model
            source.absent = AbsentClasses.load(clip_model, self.reference(), device)

    def run_names(self, source, vocabulary, entries) -> list:
        """The run's class names (COCO categories, YOLO names): --classes or the vocabulary, then any
        other name of a per-image list, in input order."""
        from faseg_cli.errors import InputError

        names = dict.fromkeys(source.classes or (vocabulary.classes if vocabulary is not None else ()))
        for item, _ in entries if source.class_lists is not None else ():
            try:
                names.update(dict.fromkeys(source.request(item.path)["classes"]))
            except InputError:
                continue
        return list(names)

    def finish(self, workers, entries, names: list, output_dir: Path) -> None:
        """Each process writes the YOLO labels of its images; then rank 0 writes the COCO file and the YOLO
        dataset files, from every image's regions record made with these settings (earlier runs' too)."""
        from faseg_cli.files.coco import coco_document, read_regions, write_coco
        from faseg_cli.files.yolo import write_dataset_files, write_labels

        def records(chosen):
            for index, (item, plan) in chosen:
                expected = plan.request_of("regions")
                found = read_regions(plan.files["regions"], expected) if expected is not None else None
                if found is not None:
                    yield index, item, plan, found

        numbered = list(enumerate(entries, start=1))
        if self.yolo is not None:
            for _, item, plan, found in records(workers.shard(numbered)):
                name = plan.files["regions"].relative_to(output_dir).as_posix().removesuffix(".regions.json")
                write_labels(self.yolo, name, found, names, item.path)
        workers.gather(None)  # every process has written its records and labels
        if not workers.primary:
            return
        if self.yolo is not None:
            write_dataset_files(self.yolo, names)
            note(f"Wrote the YOLO dataset to {self.yolo} ({len(names)} classes)")
        if self.coco is not None:
            images = [(index, file_name(item), found) for index, item, _, found in records(numbered)]
            write_coco(self.coco, coco_document(images, names))
            note(f"Wrote COCO annotations of {len(images)} images to {self.coco}")


def file_name(item) -> str:
    """The image's name in annotation files: its path below the folder argument, else its file name."""
    return item.path.relative_to(item.root).as_posix() if item.root else item.path.name


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
    coco: Optional[Path] = typer.Option(
        None,
        "--coco",
        metavar="FILE",
        help="Also write one COCO JSON for the run: each class region as an RLE mask with box and score.",
        rich_help_panel="Annotation files",
    ),
    yolo: Optional[Path] = typer.Option(
        None,
        "--yolo",
        metavar="DIR",
        help="Also write a YOLO segmentation dataset: labels/<name>.txt polygons, images/ links, data.yaml.",
        rich_help_panel="Annotation files",
    ),
    instances: bool = typer.Option(
        False,
        "--instances",
        help="In --coco/--yolo, one annotation per 8-connected region of a class (not detected objects).",
        rich_help_panel="Annotation files",
    ),
    min_area: int = typer.Option(
        1,
        "--min-area",
        metavar="PIXELS",
        help="With --instances, leave out smaller regions.",
        rich_help_panel="Annotation files",
    ),
    drop_absent: bool = typer.Option(
        False,
        "--drop-absent",
        help="Drop the classes TagCLIP does not find in each picture (among --reference-vocab) before segmenting.",
        rich_help_panel="Candidate classes",
    ),
    reference_vocab: str = typer.Option(
        REFERENCE,
        "--reference-vocab",
        metavar="NAME|FILE",
        help="With --drop-absent, the vocabulary the classes are classified among.",
        rich_help_panel="Candidate classes",
    ),
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
    from faseg_cli.files.coco import image_regions, write_regions
    from faseg_cli.files.outputs import together, write_mask, write_overlay, write_scores

    source = class_source(classes, classes_from, caption, captions_from, candidates)
    settings = engine.settings()
    annotations = Annotations(coco, yolo, instances, min_area, drop_absent, reference_vocab)
    generate = source.classes is None and source.class_lists is None
    if drop_absent and generate:
        raise UsageError("--drop-absent applies to --classes and --classes-from; --vocab keeps only found classes")
    annotations.describe(source, candidates, engine)

    def prepare():
        segmenter = engine.load(settings, candidates)
        candidates.attach(source, engine, generate=generate)
        annotations.attach(source, candidates, engine)
        return segment_jobs(segmenter, source)

    def emit(entry, job, result, seconds):
        item, plan = entry
        files = plan.files
        if not result.classes:
            note(f"{item.path}: no classes for this image; the mask is all background")
        dropped = [name for name in job.classes if name not in result.classes] if drop_absent else None
        record = output_record(plan, result, source, "mask", dropped)
        with together():
            write_mask(files["mask"], result.labels, record)
            if overlay:
                write_overlay(files["overlay"], job.image, result.labels, result.classes, record)
            if scores:
                write_scores(files["scores"], result.scores, result.classes, record)
            if annotations.wanted:
                found = image_regions(result.labels, result.scores, result.classes, instances, min_area, dropped)
                write_regions(files["regions"], found, output_record(plan, result, source, "regions", dropped))
        line = json_record(item, files, result, seconds, settings, dropped)
        print_result(line if batch.json_lines else str(files["mask"]))

    def finish(workers, entries):
        if annotations.wanted:
            names = annotations.run_names(source, candidates.vocabulary(), entries)
            annotations.finish(workers, entries, names, batch.output_dir)

    kinds = ["mask"] + ["overlay"] * overlay + ["scores"] * scores + ["regions"] * annotations.wanted
    requests = output_requests(source, candidates, engine, settings)
    part = annotations.request_part()

    def made_with(item):
        made = requests(item)
        return None if made is None else {**made, **part}

    raise typer.Exit(
        run_image_command(
            batch,
            kinds,
            prepare,
            emit,
            "Segmented",
            job_loader(source),
            made_with=made_with,
            finish=finish,
            replay=replay_lines(batch, settings),
        )
    )
