"""YOLO segmentation labels (the ultralytics format) from the regions records of ``coco``.

A ``--yolo DIR`` folder is a dataset ultralytics trains on as it is:

- ``labels/<name>.txt``: one line per polygon, ``class x1 y1 x2 y2 ...``, the class a 0-based
  index into ``names``, the points normalised by the image's width and height;
- ``images/<name>.<ext>``: a symbolic link to the input (a copy where links cannot be made),
  so that ultralytics finds each label where it looks (``images/`` -> ``labels/``);
- ``data.yaml`` (``path``, ``train`` and ``val`` = ``images``, ``names``) and ``classes.txt``
  (one name per line, as other tools' YOLO import reads).

Polygons are OpenCV's outer contours of each region (``findContours``, points at pixel
centres, ultralytics' own convention), simplified by Douglas-Peucker (``approxPolyDP``) to
``TOLERANCE`` pixels. A YOLO polygon has no holes: a region's holes are filled, and a
region of several parts gives one line per part. A part under three pixels wide keeps
three points (repeated if need be), as ultralytics reads a line of fewer as a box.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from faseg_cli.errors import UsageError
from faseg_cli.files.coco import decode
from faseg_cli.files.outputs import atomic_write

TOLERANCE = 1.0
"""Douglas-Peucker tolerance in pixels: no simplified polygon strays further from the contour."""


def check_folder(folder: Path) -> Path:
    """``folder`` if a YOLO dataset can be made there (it may not exist yet), else a usage error."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--yolo {folder}: is a file; give a folder for the YOLO dataset")
    return folder


def polygons(mask: np.ndarray, tolerance: float = TOLERANCE) -> list[np.ndarray]:
    """The simplified outer contours of ``mask`` (H, W) bool: ``(N, 2)`` float pixel coordinates (x, y), N >= 3."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    found = []
    for contour in contours:
        simple = cv2.approxPolyDP(contour, tolerance, True) if len(contour) > 3 else contour
        points = simple.reshape(-1, 2).astype(np.float64)
        if len(points) < 3:
            points = points[np.arange(3) % len(points)]
        found.append(points)
    return found


def label_lines(found: dict, names: list[str], tolerance: float = TOLERANCE) -> str:
    """The label file of one image's regions record: one line per polygon."""
    index = {name: k for k, name in enumerate(names)}
    size = np.array([found["width"], found["height"]], dtype=np.float64)
    lines = []
    for region in found["regions"]:
        for points in polygons(decode(region["segmentation"]), tolerance):
            coordinates = " ".join(f"{v:.6f}" for v in (points / size).ravel())
            lines.append(f"{index[region['category']]} {coordinates}")
    return "".join(f"{line}\n" for line in lines)


def write_labels(folder: Path, name: str, found: dict, names: list[str], image: Path) -> None:
    """``labels/<name>.txt`` and ``images/<name><image's suffix>`` (a link to ``image``) in ``folder``."""
    text = label_lines(found, names)
    atomic_write(folder / "labels" / f"{name}.txt", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    link = folder / "images" / f"{name}{image.suffix}"
    target = image.resolve()
    if link.is_symlink() and link.resolve() == target:
        return

    def place(tmp: Path) -> None:
        tmp.unlink()
        try:
            os.symlink(target, tmp)
        except OSError:
            shutil.copyfile(target, tmp)

    atomic_write(link, place)


def write_dataset_files(folder: Path, names: list[str]) -> None:
    """``data.yaml`` and ``classes.txt`` of the dataset in ``folder``."""
    quoted = "".join(f"  {k}: {json.dumps(name, ensure_ascii=False)}\n" for k, name in enumerate(names))
    yaml = (
        "# YOLO segmentation dataset written by faseg segment --yolo\n"
        f"path: {json.dumps(str(folder.resolve()), ensure_ascii=False)}\n"
        "train: images\nval: images\n"
        f"names:\n{quoted}"
    )
    atomic_write(folder / "data.yaml", lambda tmp: tmp.write_text(yaml, encoding="utf-8"))
    text = "".join(f"{name}\n" for name in names)
    atomic_write(folder / "classes.txt", lambda tmp: tmp.write_text(text, encoding="utf-8"))
