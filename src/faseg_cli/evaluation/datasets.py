"""The evaluation datasets: where a split's files lie, the classes, the label conventions.

Layouts are those of the mmsegmentation preparation guide (see docs/datasets.md). A
ground-truth label becomes *metric indices*: ``0..num_classes-1`` in
``class_names`` order, ``IGNORE`` (255) for pixels that do not count. voc, context
and coco-object have "background" as class 0. voc20, context59 and ade "reduce the
zero label": raw 0 (background, or ADE's "other") becomes ``IGNORE`` and raw k
becomes k-1. coco-stuff and cityscapes labels are metric indices already.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from faseg_cli.errors import InputError, UsageError
from faseg_cli.evaluation.metrics import IGNORE, INVALID
from faseg_cli.vocabularies import ClassName, load_vocabulary, name_key, read_name_file

BACKGROUND = "background"


@dataclass(frozen=True)
class Sample:
    """One image of a split and its ground-truth label file."""

    id: str
    image_path: Path
    label_path: Path


@dataclass(frozen=True)
class Layout:
    """Where one split's files lie under a dataset root.

    ``folders`` are the places tried, in order, as the dataset's own folder (``""`` is
    the root itself), so a root may be that folder or one of its parents.
    ``labels`` lists ``(folder, file suffix)`` choices; the first that holds the
    split's labels wins. Without ``split_file`` the split is every image under
    ``images`` (subfolders included), sorted by path.
    """

    folders: tuple[str, ...]
    images: str
    image_suffix: str
    labels: tuple[tuple[str, str], ...]
    split_file: str | None = None

    def expected(self) -> str:
        """The files this layout needs, for error messages."""
        parts = [f"{self.images}/*{self.image_suffix}"]
        parts.append(_either([f"{folder}/*{suffix}" for folder, suffix in self.labels]))
        if self.split_file:
            parts.append(self.split_file)
        return ", ".join(parts)


@dataclass(frozen=True)
class DatasetSpec:
    """What faseg knows about one evaluation dataset, before any files are looked at."""

    name: str
    title: str
    vocabulary: str
    background: bool
    reduce_zero_label: bool
    threshold: float
    layout: Layout
    hint: str
    palette: bool = False
    """Whether the ground-truth PNGs are palette images (VOC colours); saved masks follow suit."""
    name_file: str = ""
    """NACLIP's published class-name file for this dataset (``data/naclip/``)."""

    @property
    def prompt_names(self) -> tuple[str, ...]:
        """The class names used in prompts: the vocabulary, without background."""
        return _vocabulary_classes(self.vocabulary)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The metric's classes in index order, "background" first where it is a class."""
        return ((BACKGROUND,) if self.background else ()) + self.prompt_names

    def published_queries(self) -> PublishedQueries:
        """NACLIP's queries for this dataset from its published name file, mapped to the classes by line."""
        lines = read_name_file(self.name_file)
        background = lines.pop(0) if self.background else ()
        if len(lines) != len(self.prompt_names):
            raise AssertionError(f"{self.name_file}: {len(lines)} class lines for {len(self.prompt_names)} classes")
        return PublishedQueries(
            self.name_file, background, tuple(ClassName(n, q) for n, q in zip(self.prompt_names, lines))
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def open(self, root: str | Path, images: bool = True) -> Dataset:
        """Find the split under ``root``; raises UsageError naming what is missing.

        ``images=False`` is for scoring saved masks, which never reads the images: the
        split's image files are then not required where a split list names the samples
        (elsewhere the image files are the split's listing).
        """
        folder, samples = _find_split(self, Path(root).expanduser(), images)
        return Dataset(self, folder, samples)


@dataclass(frozen=True)
class PublishedQueries:
    """A dataset's classes as NACLIP's published name file asks for them."""

    file: str
    background: tuple[str, ...]
    """Line 0 where the dataset has a background class (its queries), else ()."""
    classes: tuple[ClassName, ...]
    """faseg's class names (those of the labels, in label order), each with its line's queries as prompts."""

    def __call__(self, names: list[str]) -> list[ClassName]:
        """``names`` (classes of the dataset) with the published queries."""
        table = {name_key(c): c for c in self.classes}
        return [table[name_key(n)] for n in names]


class Dataset:
    """One dataset split found on disk: its samples and its label conversions."""

    def __init__(self, spec: DatasetSpec, folder: Path, samples: list[Sample]) -> None:
        self.spec = spec
        self.folder = folder
        self._samples = tuple(samples)
        self._metric_index = {
            name_key(name): index + int(spec.background) for index, name in enumerate(spec.prompt_names)
        }

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def background(self) -> bool:
        """Whether metric class 0 is "background"."""
        return self.spec.background

    @property
    def threshold(self) -> float:
        """Default background threshold for this dataset."""
        return self.spec.threshold

    @property
    def prompt_names(self) -> tuple[str, ...]:
        return self.spec.prompt_names

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def __len__(self) -> int:
        return len(self._samples)

    def samples(self) -> list[Sample]:
        """The split's samples, in the split file's order or sorted by path."""
        return list(self._samples)

    def load_label(self, sample: Sample) -> np.ndarray:
        """The ground truth of ``sample`` as int64 metric indices (``IGNORE`` = not counted)."""
        raw = read_label_png(sample.label_path)
        label = self._raw_to_metric(raw)
        bad = label == INVALID
        if bad.any():
            raise InputError(
                f"{sample.label_path}: value {raw[bad][0]} is no {self.name} label "
                f"({self._raw_range()} or {IGNORE} expected); {self.spec.hint}"
            )
        return label

    def stored_mask_to_metric(self, raw: np.ndarray) -> np.ndarray:
        """A mask saved in this dataset's ground-truth convention, as metric indices.

        This is how other methods save predictions. Values that name no class
        (including ``IGNORE`` and, where 0 is not a class, 0) become ``INVALID``.
        """
        metric = self._raw_to_metric(raw)
        metric[metric == IGNORE] = INVALID
        return metric

    def metric_to_stored(self, metric: np.ndarray) -> np.ndarray:
        """Metric indices as uint8 values in this dataset's ground-truth convention.

        The inverse of :meth:`stored_mask_to_metric`, so saved predictions score the
        same when read back. ``INVALID`` becomes a value that names no class: 0 where
        0 is ignored, else ``IGNORE``.
        """
        metric = np.asarray(metric, dtype=np.int64)
        reduce = int(self.spec.reduce_zero_label)
        stored = metric + reduce
        stored[(metric < 0) | (metric >= self.num_classes)] = 0 if reduce else IGNORE
        return stored.astype(np.uint8)

    def classes_present(self, label: np.ndarray) -> list[str]:
        """Prompt names of the classes in a metric-index label, background and ignore excluded."""
        offset = int(self.background)
        values = np.unique(label)
        values = values[(values >= offset) & (values < self.num_classes)]
        return [self.prompt_names[int(v) - offset] for v in values]

    def prediction_to_metric(self, labels: np.ndarray, image_classes: list[str]) -> np.ndarray:
        """A faseg mask (0 = background, k = ``image_classes[k-1]``) as metric indices.

        Background becomes class 0 where the dataset has one, else ``INVALID`` (always
        wrong); so do values with no entry in ``image_classes``.
        """
        table = np.full(len(image_classes) + 1, INVALID, dtype=np.int64)
        if self.background:
            table[0] = 0
        for k, name in enumerate(image_classes, start=1):
            index = self._metric_index.get(name_key(name))
            if index is None:
                raise UsageError(f"class {name!r} is not in the {self.spec.vocabulary} vocabulary of {self.name}")
            table[k] = index
        labels = np.asarray(labels).astype(np.int64)
        metric = np.full(labels.shape, INVALID, dtype=np.int64)
        known = (labels >= 0) & (labels < len(table))
        metric[known] = table[labels[known]]
        return metric

    def _raw_to_metric(self, raw: np.ndarray) -> np.ndarray:
        """Metric indices; ``IGNORE`` where the convention ignores, ``INVALID`` for no class."""
        reduce = self.spec.reduce_zero_label
        metric = raw.astype(np.int64) - int(reduce)
        metric[(metric < 0) | (metric >= self.num_classes)] = INVALID
        metric[raw == IGNORE] = IGNORE
        if reduce:
            metric[raw == 0] = IGNORE
        return metric

    def _raw_range(self) -> str:
        first = int(self.spec.reduce_zero_label)
        return f"{first}..{self.num_classes - 1 + first}"


def read_label_png(path: Path) -> np.ndarray:
    """A single-channel label image's values as int64; palette images give their indices."""
    try:
        with Image.open(path) as image:
            if len(image.getbands()) != 1 or image.mode == "F":
                raise InputError(f"{path}: {image.mode} image; a label must be a palette or grayscale PNG")
            values = np.array(image)
    except OSError as exc:
        raise InputError(f"{path}: cannot read label image: {exc}") from None
    return values.astype(np.int64)


@lru_cache(maxsize=None)
def _vocabulary_classes(name: str) -> tuple[str, ...]:
    return load_vocabulary(name).classes


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _listing(folder: Path) -> str:
    """What is actually in ``folder`` (or its nearest existing parent), for error messages."""
    while not folder.is_dir() and folder != folder.parent:
        if folder.exists():
            return f"{folder} is a file"
        folder = folder.parent
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")
    return f"{folder} holds {shown or 'nothing'}"


def _find_split(spec: DatasetSpec, root: Path, images: bool) -> tuple[Path, list[Sample]]:
    layout = spec.layout
    if not root.is_dir():
        raise UsageError(f"{spec.name}: dataset root {root} is not a folder")
    candidates = [root / folder for folder in layout.folders]
    listed = layout.split_file is not None and not images
    folder = next(
        (c for c in candidates if (c / layout.images).is_dir() or (listed and (c / layout.split_file).is_file())),
        None,
    )
    if folder is None:
        nearest = next((c for c in candidates if c != root and c.is_dir()), root)
        raise UsageError(
            f"{spec.name}: no {spec.title} under {root}: expected {layout.expected()} "
            f"in {_either([str(c) for c in candidates])}; found: {_listing(nearest)}"
        )
    entries = _split_entries(spec, folder)
    label_folder, label_suffix = _label_source(spec, folder, entries[0])
    samples = []
    missing_images, missing_labels = [], []
    for sub, sample_id in entries:
        image = folder / layout.images / sub / f"{sample_id}{layout.image_suffix}"
        label = folder / label_folder / sub / f"{sample_id}{label_suffix}"
        if layout.split_file and images and not image.is_file():
            missing_images.append(image)
        if not label.is_file():
            missing_labels.append(label)
        samples.append(Sample(sample_id, image, label))
    for kind, missing in (("images", missing_images), ("labels", missing_labels)):
        if missing:
            raise UsageError(
                f"{spec.name}: {len(missing)} of {len(samples)} {kind} of the split are missing, "
                f"e.g. {missing[0]}; {spec.hint}"
            )
    return folder, samples


def _split_entries(spec: DatasetSpec, folder: Path) -> list[tuple[str, str]]:
    """(subfolder, id) of each sample, from the split file or from the image files."""
    layout = spec.layout
    if layout.split_file:
        split = folder / layout.split_file
        if not split.is_file():
            raise UsageError(f"{spec.name}: expected the split list {split}; found: {_listing(split)}")
        ids = list(dict.fromkeys(line.strip() for line in split.read_text("utf-8").splitlines() if line.strip()))
        if not ids:
            raise UsageError(f"{spec.name}: the split list {split} is empty")
        return [("", sample_id) for sample_id in ids]
    images = folder / layout.images
    paths = sorted(p for p in images.rglob(f"*{layout.image_suffix}") if p.is_file())
    if not paths:
        raise UsageError(f"{spec.name}: no *{layout.image_suffix} images in {images}; {spec.hint}")
    entries = [(p.parent.relative_to(images).as_posix(), p.name[: -len(layout.image_suffix)]) for p in paths]
    seen: set[str] = set()
    for _, sample_id in entries:
        if sample_id in seen:
            raise UsageError(f"{spec.name}: two images named {sample_id}{layout.image_suffix} in {images}")
        seen.add(sample_id)
    return entries


def _label_source(spec: DatasetSpec, folder: Path, first: tuple[str, str]) -> tuple[str, str]:
    """The (label folder, suffix) choice that holds the first sample's label."""
    sub, sample_id = first
    for label_folder, suffix in spec.layout.labels:
        if (folder / label_folder / sub / f"{sample_id}{suffix}").is_file():
            return label_folder, suffix
    expected = _either([str(folder / f / sub / f"{sample_id}{s}") for f, s in spec.layout.labels])
    first_folder = folder / spec.layout.labels[0][0] / sub
    raise UsageError(
        f"{spec.name}: no label for {sample_id}: expected {expected}; found: {_listing(first_folder)}; {spec.hint}"
    )


def _voc_layout(year: str, labels: str, split_dir: str) -> Layout:
    return Layout(
        folders=("", year, f"VOCdevkit/{year}"),
        images="JPEGImages",
        image_suffix=".jpg",
        labels=((labels, ".png"),),
        split_file=f"ImageSets/{split_dir}/val.txt",
    )


_VOC = _voc_layout("VOC2012", "SegmentationClass", "Segmentation")
_CONTEXT = _voc_layout("VOC2010", "SegmentationClassContext", "SegmentationContext")
_VOC_HINT = "unpack VOCtrainval_11-May-2012.tar unchanged"
_CONTEXT_HINT = "convert the labels with mmsegmentation's tools/dataset_converters/pascal_context.py"


def _coco_layout(labels: tuple[tuple[str, str], ...]) -> Layout:
    return Layout(folders=("", "coco_stuff164k"), images="images/val2017", image_suffix=".jpg", labels=labels)


_SPECS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "voc",
            "PASCAL VOC 2012 val",
            "voc",
            True,
            False,
            0.55,
            _VOC,
            _VOC_HINT,
            palette=True,
            name_file="cls_voc21.txt",
        ),
        DatasetSpec(
            "voc20",
            "PASCAL VOC 2012 val",
            "voc",
            False,
            True,
            0.55,
            _VOC,
            _VOC_HINT,
            palette=True,
            name_file="cls_voc20.txt",
        ),
        DatasetSpec(
            "context",
            "PASCAL Context val",
            "context",
            True,
            False,
            0.5,
            _CONTEXT,
            _CONTEXT_HINT,
            name_file="cls_context60.txt",
        ),
        DatasetSpec(
            "context59",
            "PASCAL Context val",
            "context",
            False,
            True,
            0.55,
            _CONTEXT,
            _CONTEXT_HINT,
            name_file="cls_context59.txt",
        ),
        DatasetSpec(
            "coco-object",
            "COCO-Object val2017",
            "coco",
            True,
            False,
            0.6,
            _coco_layout((("annotations/val2017", "_instanceTrainIds.png"), ("annotation_object/val2017", ".png"))),
            "make the labels with GroupViT's convert_dataset/convert_coco_object.py",
            name_file="cls_coco_object.txt",
        ),
        DatasetSpec(
            "coco-stuff",
            "COCO-Stuff 164k val2017",
            "coco-stuff",
            False,
            False,
            0.55,
            _coco_layout((("annotations/val2017", "_labelTrainIds.png"),)),
            "make the labels with mmsegmentation's tools/dataset_converters/coco_stuff164k.py",
            name_file="cls_coco_stuff.txt",
        ),
        DatasetSpec(
            "ade",
            "ADE20K (ADEChallengeData2016) validation",
            "ade",
            False,
            True,
            0.55,
            Layout(
                folders=("ADEChallengeData2016", "", "ade/ADEChallengeData2016"),
                images="images/validation",
                image_suffix=".jpg",
                labels=(("annotations/validation", ".png"),),
            ),
            "unpack ADEChallengeData2016.zip unchanged",
            name_file="cls_ade20k.txt",
        ),
        DatasetSpec(
            "cityscapes",
            "Cityscapes val",
            "cityscapes",
            False,
            False,
            0.55,
            Layout(
                folders=("", "cityscapes"),
                images="leftImg8bit/val",
                image_suffix="_leftImg8bit.png",
                labels=(("gtFine/val", "_gtFine_labelTrainIds.png"),),
            ),
            "make the labels with mmsegmentation's tools/dataset_converters/cityscapes.py",
            name_file="cls_city_scapes.txt",
        ),
    )
}


def dataset_names() -> list[str]:
    """Names accepted by :func:`get_dataset`."""
    return list(_SPECS)


def get_dataset(name: str) -> DatasetSpec:
    """The dataset called ``name``; raises UsageError listing the known names."""
    try:
        return _SPECS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(_SPECS)}") from None
