"""YOLO segmentation labels (the ultralytics format) from the regions records of ``coco``.

A ``--yolo DIR`` folder is a dataset ultralytics trains on as it is:

- ``labels/<name>.txt``: one line per polygon, ``class x1 y1 x2 y2 ...``, the class a 0-based
  index into ``names``, the points normalised by the image's width and height;
- ``images/<name>.<ext>``: a symbolic link to the input (a copy where links cannot be made),
  so that ultralytics finds each label where it looks (``images/`` -> ``labels/``);
- ``data.yaml`` (``path``, ``train`` and ``val`` = ``images``, ``names``) and ``classes.txt``
  (one name per line, as other tools' YOLO import reads).

Polygons are OpenCV's contours of each region (``findContours``, points at pixel centres,
ultralytics' own convention), simplified by Douglas-Peucker (``approxPolyDP``) to
``TOLERANCE`` pixels. A region of several parts gives one line per part. A YOLO line is
one polygon without holes, so each hole is walked into its part's outer contour from
their nearest points and back (a bridge of zero width, as ultralytics joins the parts of a
COCO polygon): filling the line leaves the hole empty. A part under three pixels wide
keeps three points (repeated if need be), as ultralytics reads a line of fewer as a box.
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
    """One polygon per outer contour of ``mask`` (H, W) bool, its holes joined in: ``(N, 2)`` float pixel
    coordinates (x, y), N >= 3."""
    import cv2

    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    simple = [simplified(contour, tolerance) for contour in contours]
    found = []
    for index, (_, _, child, parent) in enumerate(hierarchy[0]):
        if parent != -1:
            continue
        points = simple[index]
        while child != -1:
            points = joined(points, simple[child])
            child = hierarchy[0][child][0]
        found.append(points if len(points) >= 3 else points[np.arange(3) % len(points)])
    return found


def simplified(contour: np.ndarray, tolerance: float) -> np.ndarray:
    """A contour simplified by Douglas-Peucker to ``tolerance`` pixels, as ``(N, 2)`` floats."""
    import cv2

    simple = cv2.approxPolyDP(contour, tolerance, True) if len(contour) > 3 else contour
    return simple.reshape(-1, 2).astype(np.float64)


def joined(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``outer`` with ``hole`` walked in from its nearest point and back (a bridge of zero width), so that
    filling the one polygon leaves the hole empty."""
    distances = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(-1)
    at, start = np.unravel_index(distances.argmin(), distances.shape)
    loop = np.concatenate([hole[start:], hole[: start + 1]])
    return np.concatenate([outer[: at + 1], loop, outer[at:]])


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
