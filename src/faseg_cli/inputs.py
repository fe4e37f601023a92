"""Expand command-line inputs into image files: files, folders, glob patterns, ``-`` for stdin.

Explicitly named files are always attempted (a bad one is an error for that input),
but one that does not exist is reported here, before any model loads; files found
inside folders or by patterns are skipped with a note when their extension is not an
image format.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from faseg_cli.images import image_extensions

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


def collect_inputs(args: list[str], recursive: bool = False, stdin: TextIO | None = None) -> CollectedInputs:
    """Expand ``args`` in order, dropping duplicates; problems are reported, not raised."""
    found = CollectedInputs()
    seen: set[Path] = set()
    extensions = image_extensions()

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
            lines = stdin.read().splitlines() if stdin is not None else []
            for line in lines:
                if line.strip():
                    add_named(Path(line.strip()))
            continue
        path = Path(arg).expanduser()
        if path.is_dir():
            _add_folder(path, recursive, extensions, add, found)
        elif path.exists() or path.is_symlink() or not GLOB_CHARS & set(arg):
            add_named(path)
        else:
            matches = sorted(glob.glob(str(path), recursive=True))
            images = [Path(m) for m in matches if Path(m).is_file() and Path(m).suffix.lower() in extensions]
            if not matches:
                found.errors.append(f"{arg}: no files match this pattern")
            elif len(images) < len(matches):
                found.notes.append(f"{arg}: skipped {len(matches) - len(images)} entries that are not image files")
            for image in images:
                add(InputItem(image))
    return found


def _add_folder(folder: Path, recursive: bool, extensions, add, found: CollectedInputs) -> None:
    entries = sorted(folder.rglob("*") if recursive else folder.iterdir())
    files = [
        p for p in entries if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    images = [p for p in files if p.suffix.lower() in extensions]
    if len(images) < len(files):
        found.notes.append(f"{folder}: skipped {len(files) - len(images)} files that are not images")
    if not images:
        found.notes.append(f"{folder}: no images found" + ("" if recursive else " (use --recursive for subfolders)"))
    for image in images:
        add(InputItem(image, root=folder))
