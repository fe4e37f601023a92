"""Tiny synthetic datasets on disk, in each layout faseg evaluates, for tests.

Every builder writes a few small images and label PNGs whose raw values follow the
dataset's own convention (including 255 "ignore" pixels) and returns a ``Built``
record: the root to open and the raw labels it wrote, by sample id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = ((6, 8), (5, 7), (9, 4))
"""(height, width) of the images each builder writes, in sample order."""

RAW_VALUE_RANGE = {
    "voc": (0, 20),
    "voc20": (0, 20),
    "context": (0, 59),
    "context59": (0, 59),
    "coco-object": (0, 80),
    "coco-stuff": (0, 170),
    "ade": (0, 150),
    "cityscapes": (0, 18),
}
"""Smallest and largest raw label value (besides 255) of each dataset's ground truth."""


@dataclass
class Built:
    """A synthetic dataset written to disk."""

    root: Path
    raw_labels: dict[str, np.ndarray]

    @property
    def ids(self) -> list[str]:
        return list(self.raw_labels)


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (256 RGB entries, flattened), as the dataset's PNGs carry it."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette += [r, g, b]
    return palette


def raw_labels(name: str, ids: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic raw labels for ``ids``: values across the dataset's range, some 255, and 0."""
    low, high = RAW_VALUE_RANGE[name]
    rng = np.random.default_rng(seed)
    labels = {}
    for sample_id, (height, width) in zip(ids, SIZES):
        label = rng.integers(low, high + 1, size=(height, width))
        label[0, 0] = low
        label[0, 1] = high
        label[-1, -1] = 255
        labels[sample_id] = label.astype(np.uint8)
    return labels


def write_image(path: Path, shape: tuple[int, int]) -> None:
    """A small noise image (JPEG or PNG by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(path.name)).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_label(path: Path, label: np.ndarray, palette: bool = False) -> None:
    """A label PNG: grayscale, or palette-indexed with the VOC colours as VOC ships them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = label.shape
    image = Image.frombytes("P" if palette else "L", (width, height), label.astype(np.uint8).tobytes())
    if palette:
        image.putpalette(voc_palette())
    image.save(path)


def _write_pairs(built: Built, image_for, label_for, palette: bool = False) -> Built:
    for sample_id, label in built.raw_labels.items():
        write_image(image_for(sample_id), label.shape)
        write_label(label_for(sample_id), label, palette)
    return built


def build_voc(root: Path, name: str = "voc") -> Built:
    """``root/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/val.txt}``.

    One extra image lies outside the split list, as the train images do.
    """
    base = root / "VOCdevkit" / "VOC2012"
    built = Built(root, raw_labels(name, ["2007_000033", "2007_000042", "2007_000061"]))
    _write_pairs(
        built,
        lambda i: base / "JPEGImages" / f"{i}.jpg",
        lambda i: base / "SegmentationClass" / f"{i}.png",
        palette=True,
    )
    write_image(base / "JPEGImages" / "2007_000032.jpg", (4, 4))
    split = base / "ImageSets" / "Segmentation" / "val.txt"
    split.parent.mkdir(parents=True)
    split.write_text("".join(f"{i}\n" for i in built.ids))
    return built


def build_context(root: Path, name: str = "context") -> Built:
    """``root/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,ImageSets/SegmentationContext/val.txt}``."""
    base = root / "VOCdevkit" / "VOC2010"
    built = Built(root, raw_labels(name, ["2008_000002", "2008_000003", "2008_000007"], seed=1))
    _write_pairs(
        built,
        lambda i: base / "JPEGImages" / f"{i}.jpg",
        lambda i: base / "SegmentationClassContext" / f"{i}.png",
    )
    split = base / "ImageSets" / "SegmentationContext" / "val.txt"
    split.parent.mkdir(parents=True)
    split.write_text("".join(f"{i}\n" for i in built.ids))
    return built


def build_coco(root: Path, name: str = "coco-object", fa_seg_folder: bool = False) -> Built:
    """``root/images/val2017`` + ``root/annotations/val2017`` as COCO-Stuff 164k plus a conversion.

    ``coco-object`` writes GroupViT's ``*_instanceTrainIds.png`` (or, with
    ``fa_seg_folder``, ``annotation_object/val2017/<id>.png`` as the FA-Seg code
    reads); ``coco-stuff`` writes mmsegmentation's ``*_labelTrainIds.png``. The raw
    stuff maps ``<id>.png`` are there too, as after unpacking.
    """
    built = Built(root, raw_labels(name, ["000000000139", "000000000285", "000000000632"], seed=2))
    annotations = root / "annotations" / "val2017"
    if name == "coco-stuff":
        folder, suffix = annotations, "_labelTrainIds.png"
    elif fa_seg_folder:
        folder, suffix = root / "annotation_object" / "val2017", ".png"
    else:
        folder, suffix = annotations, "_instanceTrainIds.png"
    _write_pairs(built, lambda i: root / "images" / "val2017" / f"{i}.jpg", lambda i: folder / f"{i}{suffix}")
    for sample_id, label in built.raw_labels.items():
        write_label(annotations / f"{sample_id}.png", np.full_like(label, 181))
    return built


def build_ade(root: Path) -> Built:
    """``root/ADEChallengeData2016/{images,annotations}/{training,validation}``."""
    base = root / "ADEChallengeData2016"
    built = Built(root, raw_labels("ade", ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"], seed=3))
    _write_pairs(
        built,
        lambda i: base / "images" / "validation" / f"{i}.jpg",
        lambda i: base / "annotations" / "validation" / f"{i}.png",
    )
    write_image(base / "images" / "training" / "ADE_train_00000001.jpg", (4, 4))
    write_label(base / "annotations" / "training" / "ADE_train_00000001.png", np.ones((4, 4), np.uint8))
    return built


def build_cityscapes(root: Path) -> Built:
    """``root/{leftImg8bit,gtFine}/val/<city>/`` with the other gtFine files beside the train ids."""
    ids = ["frankfurt_000000_000294", "frankfurt_000000_000576", "lindau_000000_000019"]
    built = Built(root, raw_labels("cityscapes", ids, seed=4))

    def city(sample_id: str) -> str:
        return sample_id.split("_")[0]

    _write_pairs(
        built,
        lambda i: root / "leftImg8bit" / "val" / city(i) / f"{i}_leftImg8bit.png",
        lambda i: root / "gtFine" / "val" / city(i) / f"{i}_gtFine_labelTrainIds.png",
    )
    for sample_id, label in built.raw_labels.items():
        decoy = root / "gtFine" / "val" / city(sample_id) / f"{sample_id}_gtFine_labelIds.png"
        write_label(decoy, np.full_like(label, 7))
    return built


def build(name: str, root: Path) -> Built:
    """The synthetic dataset for evaluation dataset ``name``, written under ``root``."""
    if name in ("voc", "voc20"):
        return build_voc(root, name)
    if name in ("context", "context59"):
        return build_context(root, name)
    if name in ("coco-object", "coco-stuff"):
        return build_coco(root, name)
    if name == "ade":
        return build_ade(root)
    if name == "cityscapes":
        return build_cityscapes(root)
    raise ValueError(f"no builder for {name!r}")
