"""What produced each output file, recorded inside it, so that a resume keeps only true matches.

Every output carries a JSON *record*: a PNG in its ``faseg`` text chunk, a JPEG in its
comment, an ``.npz`` in its ``provenance`` array, a JSON file in its ``provenance`` member,
a folder in its ``attention.npz``.
The record is the *request*: everything that decides the output and is known before
any model runs (the faseg version, the model, every field of ``FasegSettings`` via
``dataclasses.asdict``, the image's class list and caption or what generates them,
the dataset for eval's masks), plus under ``result`` what the run found (the final
class list, the prompt, where classes and caption came from), kept for people and
never compared. A resume keeps an output only when it decodes completely (every pixel
of an image, every array of an ``.npz``) and its request equals this run's; a file
without a record (older faseg, another tool) or damaged (truncated, corrupt) is
recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from faseg_cli import __version__

PNG_KEY = "faseg"
NPZ_KEY = "provenance"
RESULT = "result"
FOLDER_FILE = "attention.npz"


def request(settings, model: str, **parts) -> dict:
    """The request of an output: version, model identity, settings, and ``parts`` (classes, caption, ...)."""
    from faseg_cli.models.weights import model_identity

    made = {"faseg": __version__, "model": model_identity(model), "settings": asdict(settings), **parts}
    return json.loads(json.dumps(made))


def record(made_with: dict, **result) -> str:
    """The JSON text written into an output: its request, and ``result`` (what the run found)."""
    return json.dumps({**made_with, RESULT: result}, ensure_ascii=False)


def vocabulary_identity(vocabulary) -> dict:
    """A vocabulary's name and a digest of its classes and synonyms (a file may change under its name)."""
    text = json.dumps([list(vocabulary.classes), sorted(vocabulary.synonyms.items())])
    return {"name": vocabulary.name, "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


def png_info(text: str | None) -> PngImagePlugin.PngInfo | None:
    """PNG save options carrying ``text`` as an international text chunk (None: no record)."""
    if text is None:
        return None
    info = PngImagePlugin.PngInfo()
    info.add_itxt(PNG_KEY, text)
    return info


def npz_arrays(text: str | None) -> dict[str, np.ndarray]:
    """The ``.npz`` array carrying ``text`` (none without a record)."""
    return {} if text is None else {NPZ_KEY: np.array(text)}


class DamagedOutput(Exception):
    """An output that cannot be decoded completely (truncated, corrupt): never kept by a resume."""


def read_record(path: Path) -> dict | None:
    """The whole record (request and ``result``) of an output file or folder, after decoding every
    pixel and array in it; None when it carries none. ``DamagedOutput`` (saying why) when any part
    cannot be decoded completely, so that a resume never keeps a half-written or damaged output."""
    try:
        if path.is_dir():
            for grid in sorted(path.glob("*.png")):
                _decoded_image(grid)
            text = _decoded_npz(path / FOLDER_FILE)
        elif path.suffix == ".npz":
            text = _decoded_npz(path)
        elif path.suffix == ".json":
            text = json.dumps(json.loads(path.read_text("utf-8")).get(NPZ_KEY))
        else:
            text = _decoded_image(path)
    except Exception as exc:  # any failure to decode (zip, zlib, image, I/O) means the output is damaged
        raise DamagedOutput(_reason(exc)) from None
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _decoded_npz(path: Path) -> str | None:
    """Load every array of an ``.npz`` (checking each member's CRC); its record's text."""
    with np.load(path) as arrays:
        loaded = {name: arrays[name] for name in arrays.files}
    return str(loaded[NPZ_KEY]) if NPZ_KEY in loaded else None


def _decoded_image(path: Path) -> str | None:
    """Decode every pixel of a PNG or JPEG (a truncated file fails); its record's text."""
    with Image.open(path) as image:
        image.load()
        return image.info.get(PNG_KEY) if image.format == "PNG" else image.info.get("comment")


def _reason(exc: Exception) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text.rstrip(".") or type(exc).__name__


def is_output(path: Path) -> bool:
    """Whether an image file carries a faseg record (a mask, overlay or heat map faseg wrote); reads its
    header only. Unreadable files are not outputs (they fail as inputs, with their own message)."""
    try:
        with Image.open(path) as image:
            text = image.info.get(PNG_KEY) if image.format == "PNG" else image.info.get("comment")
        found = json.loads(text) if text else None
    except Exception:  # not an image, or a comment that is not JSON: not ours
        return False
    return isinstance(found, dict) and PNG_KEY in found and RESULT in found


def read_request(path: Path) -> dict | None:
    """The request recorded in an output file or folder; None when it has none.
    ``DamagedOutput`` as ``read_record``."""
    found = read_record(path)
    if found is not None:
        found = {key: value for key, value in found.items() if key != RESULT}
    return found


def differences(expected: dict, found: dict) -> list[str]:
    """What differs between two requests: the settings' field names, else the top-level keys."""
    names = []
    for key in sorted(set(expected) | set(found)):
        mine, theirs = expected.get(key), found.get(key)
        if key == "settings" and isinstance(mine, dict) and isinstance(theirs, dict):
            names += [name for name in sorted(set(mine) | set(theirs)) if mine.get(name) != theirs.get(name)]
        elif mine != theirs:
            names.append("faseg version" if key == "faseg" else key)
    return names


@dataclass
class ResumeCheck:
    """Decides which finished outputs a resume keeps, and counts why the others are recomputed."""

    stale: int = 0
    """Inputs whose outputs all exist but were made differently, carry no record or are damaged."""
    unrecorded: int = 0
    damaged: list[str] = field(default_factory=list)
    """One ``path (why)`` per input with a damaged output (one that cannot be decoded completely)."""
    missing: int = 0
    """Inputs with some output missing."""
    reasons: Counter = field(default_factory=Counter)
    kept: dict[Path, dict] = field(default_factory=dict)
    """The whole records (with ``result``) of the outputs the last ``keep`` kept, by path."""

    def keep(self, expected: Mapping[Path, dict | None]) -> bool:
        """True when every output exists, decodes completely and has the expected request (None: unknown,
        never kept)."""
        if not expected or any(want is None for want in expected.values()):
            return False
        if not all(path.exists() for path in expected):
            self.missing += 1
            return False
        found = {}
        for path in expected:
            try:
                found[path] = read_record(path)
            except DamagedOutput as exc:
                self.stale += 1
                self.damaged.append(f"{path} ({exc})")
                return False
        if any(made is None for made in found.values()):
            self.stale += 1
            self.unrecorded += 1
            return False
        requests = {path: {k: v for k, v in made.items() if k != RESULT} for path, made in found.items()}
        diff = sorted({name for path, want in expected.items() for name in differences(want, requests[path])})
        if diff:
            self.stale += 1
            self.reasons.update(diff)
            return False
        self.kept = found
        return True

    def message(self, what: str, count_missing: bool = False) -> str | None:
        """One line for stderr when outputs are recomputed, e.g. "3 images have outputs made with other
        settings (different classes); recomputing them"; ``what`` names the outputs. Missing outputs
        are just work to do, unless ``count_missing`` (outputs that should exist)."""
        missing = self.missing if count_missing else 0
        count = self.stale + missing
        if not count:
            return None
        details = []
        if self.reasons:
            names = [name for name, _ in self.reasons.most_common()]
            details.append(f"different {', '.join(names)}")
        if self.unrecorded:
            details.append(f"{self.unrecorded} without a faseg record, e.g. from an older faseg")
        if self.damaged:
            details.append(f"{len(self.damaged)} damaged, e.g. {self.damaged[0]}")
        if missing:
            details.append(f"{missing} missing")
        images = "1 image has" if count == 1 else f"{count} images have"
        states = ["missing"] * bool(missing) + ["damaged"] * bool(self.damaged)
        if self.damaged and count == len(self.damaged) + missing:
            how = " or ".join(states)
        else:
            how = ", ".join(states + ["made with other settings"]) if states else "made with other settings"
            how = how.replace(", made", " or made") if len(states) == 1 else how.replace(", made", ", or made")
        return f"{images} {what} {how} ({'; '.join(details)}); recomputing them"
