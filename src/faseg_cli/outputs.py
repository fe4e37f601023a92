"""Where results go and how they are written: names that never collide, atomic files.

Each image gets ``<name>.png`` (palette label map), optionally ``<name>.overlay.jpg``
and ``<name>.npz``, or with ``faseg attention`` a folder ``<name>/``. ``<name>``
mirrors the image's path below the folder argument it came from (or its stem); names
that would still collide get ``-2``, ``-3``... in input order. Every file is written
to a temporary name and renamed, so an interrupted run leaves no half-written result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faseg_cli.errors import OutputError, UsageError
from faseg_cli.inputs import InputItem
from faseg_cli.overlay import overlay_image
from faseg_cli.palette import voc_colormap

SUFFIXES = {"mask": ".png", "overlay": ".overlay.jpg", "scores": ".npz", "attention": ""}


@dataclass(frozen=True)
class OutputPaths:
    """The files one input produces, by kind (``mask``, ``overlay``, ``scores``, ...)."""

    files: dict[str, Path]

    def done(self) -> bool:
        return all(p.exists() for p in self.files.values())


def plan_outputs(items: list[InputItem], output_dir: Path, kinds: list[str]) -> list[OutputPaths]:
    """Output paths per input; refuses (``UsageError``) any plan that would overwrite an input."""
    taken: set[str] = set()
    plans = []
    for item in items:
        base = item.path.relative_to(item.root).with_suffix("") if item.root else Path(item.path.stem)
        name, n = base, 1
        while str(name).casefold() in taken:
            n += 1
            name = base.with_name(f"{base.name}-{n}")
        taken.add(str(name).casefold())
        plans.append(OutputPaths({k: output_dir / f"{name}{SUFFIXES[k]}" for k in kinds}))
    inputs = {item.path.resolve() for item in items}
    for plan in plans:
        for path in plan.files.values():
            target = path.resolve()
            if target in inputs or any(target in i.parents for i in inputs):
                raise UsageError(f"refusing to overwrite input {path}: choose another --output-dir")
    return plans


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and check a file can be written there, or raise ``OutputError``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to output directory {folder}: {exc.strerror or exc}") from None


def _umask() -> int:
    """The process umask (read by setting and restoring it), so results get the usual permissions."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def mask_image(labels: np.ndarray) -> Image.Image:
    """A palette ("P") image of the label map with the VOC colours."""
    mask = Image.fromarray(labels.astype(np.uint8), mode="P")
    mask.putpalette(voc_colormap().ravel().tolist())
    return mask


def write_mask(path: Path, labels: np.ndarray) -> None:
    atomic_write(path, lambda tmp: mask_image(labels).save(tmp, format="PNG"))


def write_scores(path: Path, scores: np.ndarray, classes: list[str]) -> None:
    """Per-class float scores ``(K, R, R)`` and the class names, as ``.npz``."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, scores=scores.astype(np.float32), classes=np.array(classes, dtype=str))

    atomic_write(path, save)


def write_overlay(path: Path, image: Image.Image, labels: np.ndarray, classes: list[str]) -> None:
    atomic_write(path, lambda tmp: overlay_image(image, labels, classes).save(tmp, format="JPEG", quality=90))


def write_attention(folder: Path, arrays: dict[str, np.ndarray], grids: dict[str, Image.Image]) -> None:
    """``folder/attention.npz`` and ``folder/<grid name>.png``, written to a temporary folder and renamed."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise OutputError(f"cannot write {folder}: {exc.strerror or exc}") from None
    try:
        with open(tmp / "attention.npz", "wb") as handle:
            np.savez(handle, **arrays)
        for name, grid in grids.items():
            grid.save(tmp / f"{safe_name(name)}.png", format="PNG")
        if folder.exists():
            _check_replaceable(folder)
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as exc:
        raise OutputError(f"cannot write {folder}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace a folder unless it holds only what ``write_attention`` writes."""
    entries = list(folder.iterdir()) if folder.is_dir() else [folder]
    if any(not (p.is_file() and (p.name == "attention.npz" or p.suffix == ".png")) for p in entries):
        raise OutputError(f"refusing to replace {folder}: it holds files faseg did not write")


def safe_name(text: str) -> str:
    """``text`` usable as a file name on every platform (letters, digits, ``-``, ``_``, ``.`` kept)."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    return cleaned or "_"
