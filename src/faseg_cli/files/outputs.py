"""Where results go and how they are written: names that never collide, atomic files.

Each image gets ``<name>.png`` (palette label map), optionally ``<name>.overlay.jpg``
and ``<name>.npz``, or with ``faseg attention`` a folder ``<name>/``; each records
what made it (see ``provenance``). ``<name>`` mirrors the image's path below the
folder argument it came from (or its stem); names that would still collide get
``-2``, ``-3``... in input order. Every file is written to a temporary name and
renamed, so an interrupted run leaves no half-written result; inside ``together()``
the files of one image are renamed only once all are written, so an image has all
its outputs or none. A full disk (or quota) raises ``DiskFull``, which stops a run.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faseg_cli.errors import DiskFull, OutputError, UsageError
from faseg_cli.files.inputs import InputItem
from faseg_cli.files.overlay import overlay_image
from faseg_cli.files.palette import voc_colormap
from faseg_cli.files.provenance import npz_arrays, png_info

SUFFIXES = {"mask": ".png", "overlay": ".overlay.jpg", "scores": ".npz", "attention": "", "regions": ".regions.json"}


@dataclass(frozen=True)
class OutputPaths:
    """The files one input produces, by kind (``mask``, ``overlay``, ``scores``, ...)."""

    files: dict[str, Path]
    request: dict | None = None
    """What this run would make them with (``provenance.request``); None when unknown. A key named as a
    kind (``regions``) is a part of the request that only that kind's file records."""

    def request_of(self, kind: str) -> dict | None:
        """The request the file of ``kind`` records: the plan's, less the parts of the other kinds."""
        if self.request is None:
            return None
        return {key: value for key, value in self.request.items() if key not in SUFFIXES or key == kind}

    def expected(self) -> dict[Path, dict | None]:
        """Each file and the request it must record to be kept by a resume."""
        return {path: self.request_of(kind) for kind, path in self.files.items()}


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


def check_writable(folder: Path) -> None:
    """Check that files can be written in ``folder``, or raise ``OutputError``; creates nothing.

    A missing folder is checked through its nearest existing parent: the folder itself
    is made by the first file written into it, so a run that writes nothing leaves none.
    """
    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot write to output directory {folder}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to output directory {folder}: {exc.strerror or exc}") from None


def _umask() -> int:
    """The process umask (read by setting and restoring it), so results get the usual permissions."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FULL = (errno.ENOSPC, errno.EDQUOT)
"""What a full disk or an exhausted quota raise: no later output can be written either."""

_staged: ContextVar[list | None] = ContextVar("faseg_staged_outputs", default=None)
"""Inside ``together()``: the ``(temporary file, path)`` pairs written so far, renamed at its end."""


def write_error(path: Path, exc: OSError) -> OutputError:
    """The error for a failed write of ``path``: ``DiskFull`` when the disk or quota is full."""
    if exc.errno in FULL:
        return DiskFull(f"cannot write {path}: {exc.strerror}; stopping, as no later output could be written")
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it into place (inside
    ``together()``: at its end, with the others)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        raise write_error(path, exc) from None
    staged = _staged.get()
    try:
        write(Path(tmp))
        if staged is None:
            os.replace(tmp, path)
        else:
            staged.append((tmp, path))
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if staged is None or (tmp, path) not in staged:
            Path(tmp).unlink(missing_ok=True)


@contextmanager
def together() -> Iterator[None]:
    """Write one image's outputs as a whole: inside, ``atomic_write`` (and every writer below) leaves
    temporary files, renamed into place only when the block ends normally. On any failure (a full
    disk, Ctrl-C) the temporary files and those already renamed are removed, so none remains."""
    staged: list = []
    token = _staged.set(staged)
    placed: list[Path] = []
    try:
        yield
        _staged.reset(token)
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise write_error(path, exc) from None
            placed.append(path)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        if _staged.get() is staged:
            _staged.reset(token)
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def read_labels(kind: str, path: Path) -> np.ndarray:
    """The label map stored in an output: a mask PNG (``mask``) or an attention folder's ``labels``."""
    if kind == "attention":
        with np.load(path / "attention.npz") as arrays:
            return arrays["labels"]
    with Image.open(path) as image:
        return np.asarray(image)


def mask_image(labels: np.ndarray) -> Image.Image:
    """A palette ("P") image of the label map with the VOC colours."""
    mask = Image.fromarray(labels.astype(np.uint8), mode="P")
    mask.putpalette(voc_colormap().ravel().tolist())
    return mask


def mask_png(labels: np.ndarray, record: str | None = None) -> bytes:
    """The mask file's bytes, carrying ``record`` (``provenance.record``) when given: what ``write_mask``
    writes and ``faseg serve`` returns."""
    return _encoded(mask_image(labels), format="PNG", pnginfo=png_info(record))


def write_png(path: Path, image: Image.Image, record: str | None = None) -> None:
    """``image`` as a PNG carrying ``record`` when given."""
    data = _encoded(image, format="PNG", pnginfo=png_info(record))
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_mask(path: Path, labels: np.ndarray, record: str | None = None) -> None:
    """The label map as a palette PNG carrying ``record`` when given."""
    data = mask_png(labels, record)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_scores(path: Path, scores: np.ndarray, classes: list[str], record: str | None = None) -> None:
    """Per-class float scores ``(K, R, R)``, the class names and ``record``, as ``.npz``."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            arrays = {"scores": scores.astype(np.float32), "classes": np.array(classes, dtype=str)}
            np.savez_compressed(handle, **arrays, **npz_arrays(record))

    atomic_write(path, save)


def overlay_jpeg(image: Image.Image, labels: np.ndarray, classes: list[str], record: str | None = None) -> bytes:
    """The overlay file's bytes, carrying ``record`` in its comment when given: what ``write_overlay``
    writes and ``faseg serve`` returns."""
    comment = {"comment": record.encode("utf-8")} if record is not None else {}
    return _encoded(overlay_image(image, labels, classes), format="JPEG", quality=90, **comment)


def write_overlay(
    path: Path, image: Image.Image, labels: np.ndarray, classes: list[str], record: str | None = None
) -> None:
    data = overlay_jpeg(image, labels, classes, record)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _encoded(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return buffer.getvalue()


def write_attention(
    folder: Path, arrays: dict[str, np.ndarray], grids: dict[str, Image.Image], record: str | None = None
) -> None:
    """``folder/attention.npz`` (with ``record``) and ``folder/<grid name>.png``, written to a temporary
    folder and renamed."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise write_error(folder, exc) from None
    try:
        with open(tmp / "attention.npz", "wb") as handle:
            np.savez(handle, **arrays, **npz_arrays(record))
        for name, grid in grids.items():
            grid.save(tmp / f"{safe_name(name)}.png", format="PNG", pnginfo=png_info(record))
        if folder.exists():
            _check_replaceable(folder)
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as exc:
        raise write_error(folder, exc) from None
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
