"""Per-image class lists and captions read from files.

Two formats are accepted:

- JSON lines as printed by ``faseg candidates``: one object per image with ``image``
  (its path), ``candidates`` (a list of class names) and ``caption``;
- one JSON object keyed by image id (the file stem), as published with FA-Seg:
  ``{"2007_000033": "aeroplane person"}`` for class lists, where multi-word names are
  not delimited and are split by longest match against the vocabulary, or
  ``{"2007_000033": "a plane on the runway"}`` for captions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from faseg_cli.errors import InputError, UsageError
from faseg_cli.vocabularies import Vocabulary


@dataclass(frozen=True)
class PerImage:
    """Values keyed by image path and by file stem (stems that occur twice only by path)."""

    source: Path
    entries: dict

    def get(self, path: str | Path):
        """The value for ``path`` (matched by the path as written, then by its stem), or ``InputError``."""
        for key in (str(path), Path(path).stem):
            if key in self.entries:
                return self.entries[key]
        raise InputError(f"{path}: no entry in {self.source}")


def read_class_lists(path: str | Path, vocabulary: Vocabulary | None = None) -> PerImage:
    """Per-image class lists; the published format needs ``vocabulary`` to split names."""
    data = _read(path)
    if isinstance(data, dict):
        if vocabulary is None:
            raise UsageError(f"{path}: class lists in this format need --vocab to split multi-word names")
        from faseg_cli.candidates.reference_format import parse_class_lists

        try:
            return PerImage(Path(path), parse_class_lists(data, vocabulary, path))
        except InputError as exc:
            raise UsageError(str(exc)) from None
    return _by_image(path, data, "candidates", list)


def read_captions(path: str | Path) -> PerImage:
    """Per-image captions."""
    data = _read(path)
    if isinstance(data, dict):
        if not all(isinstance(v, str) for v in data.values()):
            raise UsageError(f"{path}: expected a JSON object mapping image ids to captions")
        return PerImage(Path(path), data)
    return _by_image(path, data, "caption", (str, type(None)))


def _read(path: str | Path):
    """A JSON object, or the list of objects of a JSON-lines file."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        whole = json.loads(text)
        if isinstance(whole, dict) and not {"image", "candidates"} & set(whole):
            return whole
    except json.JSONDecodeError:
        pass
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}, line {number}: not JSON ({exc.msg})") from None
    return records


def _by_image(path, records: list, field: str, kind: type) -> PerImage:
    entries: dict = {}
    stems: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        valid = isinstance(record, dict) and isinstance(record.get("image"), str)
        if not valid or not isinstance(record.get(field), kind):
            raise UsageError(f"{path}, line {number}: expected an object with 'image' and '{field}'")
        entries[str(record["image"])] = record[field]
        stem = Path(record["image"]).stem
        stems[stem] = stems.get(stem, 0) + 1
        entries.setdefault(stem, record[field])
    for stem, count in stems.items():
        if count > 1 and stem not in {str(r["image"]) for r in records}:
            del entries[stem]
    return PerImage(Path(path), entries)
