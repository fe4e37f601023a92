"""Expand command-line inputs into image files: files, folders, glob patterns, ``-`` for stdin.

Paths on stdin are one per line, or NUL-separated with ``null`` (``find -print0``, as
``xargs -0`` reads them); file names are decoded as the OS does (undecodable bytes kept).

Explicitly named files are always attempted (a bad one is an error for that input),
but one that does not exist is reported here, before any model loads; files found
inside folders or by patterns are skipped with a note when their extension is not an
image format. faseg never takes its own outputs as inputs: walking a folder skips the
output folder inside it, and folders and patterns skip images that carry a faseg
record (``provenance``), so a run whose outputs land among its inputs can be repeated.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from faseg_cli.errors import UsageError
from faseg_cli.files.images import image_extensions
from faseg_cli.files.provenance import is_output

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One image to process; ``root`` is the folder argument it was found under, if any."""

    path: Path
    root: Path | None = None


@dataclass
class CollectedInputs:
    items: list[InputItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect_inputs(
    args: list[str],
    recursive: bool = False,
    stdin: TextIO | None = None,
    null: bool = False,
    outputs: Path | None = None,
) -> CollectedInputs:
    """Expand ``args`` in order, dropping duplicates; problems with inputs are reported, not raised.

    ``outputs``: the output folder, never walked as part of an input folder.
    A NUL byte on stdin without ``null`` is a usage error: its paths cannot be told apart.
    """
    found = CollectedInputs()
    seen: set[Path] = set()
    extensions = image_extensions()
    skip = outputs.resolve() if outputs is not None else None

    def add(item: InputItem) -> None:
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            found.items.append(item)

    def add_named(path: Path) -> None:
        if path.exists():
            add(InputItem(path))
        else:
            found.errors.append(f"{path}: no such file" + (" (a broken link)" if path.is_symlink() else ""))

    for arg in args:
        if arg == "-":
            for path in stdin_paths(stdin, null):
                add_named(Path(path))
            continue
        path = Path(arg).expanduser()
        if path.is_dir():
            _add_folder(path, recursive, extensions, add, found, skip)
        elif path.exists() or path.is_symlink() or not GLOB_CHARS & set(arg):
            add_named(path)
        else:
            matches = sorted(glob.glob(str(path), recursive=True))
            images = [Path(m) for m in matches if Path(m).is_file() and Path(m).suffix.lower() in extensions]
            if not matches:
                found.errors.append(f"{arg}: no files match this pattern")
            elif len(images) < len(matches):
                found.notes.append(f"{arg}: skipped {len(matches) - len(images)} entries that are not image files")
            images = _without_outputs(arg, images, found)
            for image in images:
                add(InputItem(image))
    return found


def stdin_paths(stdin: TextIO | None, null: bool) -> list[str]:
    """The paths listed on ``stdin``: NUL-separated and verbatim with ``null``, else one per
    line with surrounding whitespace trimmed; empty entries are dropped."""
    if stdin is None:
        return []
    buffer = getattr(stdin, "buffer", None)
    text = os.fsdecode(buffer.read()) if buffer is not None else stdin.read()
    if null:
        return [path for path in text.split("\0") if path]
    if "\0" in text:
        raise UsageError("paths on stdin contain NUL bytes: add -0/--null to read NUL-separated paths (find -print0)")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _add_folder(folder: Path, recursive: bool, extensions, add, found: CollectedInputs, skip: Path | None) -> None:
    """Add a folder's images; ``skip`` (the output folder, resolved) is left out when it lies inside."""
    inside = skip is not None and skip != folder.resolve() and folder.resolve() in skip.parents
    entries = sorted(folder.rglob("*") if recursive else folder.iterdir())
    files = [
        p
        for p in entries
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and not (inside and (p.resolve() == skip or skip in p.resolve().parents))
    ]
    images = [p for p in files if p.suffix.lower() in extensions]
    if len(images) < len(files):
        found.notes.append(f"{folder}: skipped {len(files) - len(images)} files that are not images")
    images = _without_outputs(folder, images, found)
    if not images:
        found.notes.append(f"{folder}: no images found" + ("" if recursive else " (use --recursive for subfolders)"))
    for image in images:
        add(InputItem(image, root=folder))


def _without_outputs(where, images: list[Path], found: CollectedInputs) -> list[Path]:
    """``images`` less faseg's own outputs (files carrying its record), with a note naming how many."""
    kept = [path for path in images if not is_output(path)]
    if len(kept) < len(images):
        count = len(images) - len(kept)
        found.notes.append(f"{where}: skipped {count} file{'s' * (count != 1)} that faseg wrote (its outputs)")
    return kept
