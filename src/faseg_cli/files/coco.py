"""COCO annotation files: one JSON for a run, with each region's mask as compressed RLE.

Each segmented image gets a small *regions record* (``<name>.regions.json`` beside its
mask): its size, class list, the classes ``--drop-absent`` dropped, and per region the
class name, the COCO RLE ``segmentation`` (pycocotools' encoder), ``area``, ``bbox``
(x, y, width, height in pixels) and ``score``, plus the record of what made it
(``provenance``). At the end of a run the COCO file is assembled from the records of
every image in input order (those of earlier runs kept by ``--skip-existing`` too):
image ids are the images' places in the input list, categories the run's class names
(id = place + 1), annotation ids count from 1. Decoding every RLE gives the mask PNG's
pixels exactly. Model-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from faseg_cli import __version__
from faseg_cli.files.outputs import atomic_write
from faseg_cli.files.provenance import NPZ_KEY, RESULT
from faseg_cli.files.regions import regions


def encode(mask: np.ndarray) -> dict:
    """COCO's compressed RLE of a bool mask (H, W): ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(n) for n in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict) -> np.ndarray:
    """The bool mask (H, W) of a compressed RLE."""
    from pycocotools import mask as coco_mask

    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def bounding_box(mask: np.ndarray) -> list[int]:
    """``[x, y, width, height]`` of a non-empty mask's pixels, as COCO writes boxes."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def image_regions(
    labels: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    instances: bool = False,
    min_area: int = 1,
    dropped: list[str] | None = None,
) -> dict:
    """One image's regions record (without its provenance): size, classes, ``dropped`` when given, regions."""
    found = [
        {
            "category": classes[region.label - 1],
            "segmentation": encode(region.mask),
            "area": int(region.mask.sum()),
            "bbox": bounding_box(region.mask),
            "score": round(region.score, 6),
        }
        for region in regions(labels, scores, instances, min_area)
    ]
    record = {"width": int(labels.shape[1]), "height": int(labels.shape[0]), "classes": list(classes)}
    if dropped is not None:
        record["dropped"] = list(dropped)
    return {**record, "regions": found}


def write_regions(path: Path, found: dict, record: str | None = None) -> None:
    """An image's regions record, with ``record`` (``provenance.record``) under ``provenance``."""
    made = {NPZ_KEY: json.loads(record)} if record is not None else {}
    text = json.dumps({**made, **found}, ensure_ascii=False)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_regions(path: Path, expected: dict | None = None) -> dict | None:
    """A regions record as written; None when it is missing or unreadable or, given the ``expected``
    request (``OutputPaths.request_of``), when it was made otherwise."""
    try:
        found = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(found, dict) and isinstance(found.get("regions"), list)):
        return None
    if expected is not None:
        made = found.get(NPZ_KEY)
        if not isinstance(made, dict) or {k: v for k, v in made.items() if k != RESULT} != expected:
            return None
    return found


def categories_of(records: Iterable[dict]) -> list[str]:
    """Every class named by ``records``, in order of first appearance (images in order, then their lists)."""
    return list(dict.fromkeys(name for found in records for name in [*found["classes"], *found.get("dropped", [])]))


def coco_document(images: list[tuple[int, str, dict]], categories: list[str]) -> dict:
    """The COCO JSON of ``images``: ``(image id, file name, regions record)`` each, over ``categories``."""
    category_id = {name: k + 1 for k, name in enumerate(categories)}
    entries, annotations = [], []
    for image_id, file_name, found in images:
        entry = {"id": image_id, "file_name": file_name, "width": found["width"], "height": found["height"]}
        if "dropped" in found:
            entry["dropped_classes"] = found["dropped"]
        entries.append(entry)
        for region in found["regions"]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id[region["category"]],
                    "segmentation": region["segmentation"],
                    "area": region["area"],
                    "bbox": region["bbox"],
                    "iscrowd": 0,
                    "score": region["score"],
                }
            )
    return {
        "info": {"description": f"faseg {__version__} segment"},
        "licenses": [],
        "images": entries,
        "categories": [{"id": k + 1, "name": name, "supercategory": ""} for k, name in enumerate(categories)],
        "annotations": annotations,
    }


def write_coco(path: Path, document: dict) -> None:
    text = json.dumps(document, ensure_ascii=False)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
