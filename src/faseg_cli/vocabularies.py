"""Class names: vocabularies (the built-in dataset lists, user files) and the rules of a class list.

A vocabulary file has one class per line; ``name: synonym, synonym`` adds aliases
that map other words to that class. Blank lines and ``#`` comments are ignored.
Built-in vocabularies live in ``faseg_cli/data/vocab/<name>.txt`` in the same format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from faseg_cli.errors import UsageError


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of class names, with optional aliases (alias -> class name)."""

    name: str
    classes: tuple[str, ...]
    synonyms: dict[str, str] = field(default_factory=dict)


def name_key(name: str) -> str:
    """The key under which class names are compared: lower case, runs of spaces as one."""
    return " ".join(name.split()).lower()


def builtin_names() -> list[str]:
    """Names of the vocabularies shipped with faseg."""
    folder = resources.files("faseg_cli") / "data" / "vocab"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


def parse_vocabulary(name: str, text: str) -> Vocabulary:
    """Parse the vocabulary file format; duplicate or empty class names are errors."""
    classes: list[str] = []
    synonyms: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cls, _, aliases = line.partition(":")
        cls = " ".join(cls.split())
        if not cls:
            raise UsageError(f"vocabulary {name}, line {number}: empty class name")
        if cls in classes:
            raise UsageError(f"vocabulary {name}, line {number}: duplicate class {cls!r}")
        classes.append(cls)
        for alias in aliases.split(","):
            alias = name_key(alias)
            if alias:
                synonyms[alias] = cls
    if not classes:
        raise UsageError(f"vocabulary {name} has no classes")
    return Vocabulary(name, tuple(classes), synonyms)


def load_vocabulary(name_or_path: str) -> Vocabulary:
    """A built-in vocabulary by name, or a user vocabulary file by path."""
    if name_or_path in builtin_names():
        text = (resources.files("faseg_cli") / "data" / "vocab" / f"{name_or_path}.txt").read_text("utf-8")
        return parse_vocabulary(name_or_path, text)
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise UsageError(f"--vocab {name_or_path}: not a built-in vocabulary ({', '.join(builtin_names())}) nor a file")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--vocab {name_or_path}: cannot read: {exc}") from None
    vocabulary = parse_vocabulary(path.stem, text)
    try:
        check_reserved(vocabulary.classes)
    except UsageError as exc:
        raise UsageError(f"--vocab {name_or_path}: {exc}") from None
    return vocabulary


MAX_CLASSES = 255
"""Label maps are 8-bit palette images: 0 is background, 1..255 the classes."""

RESERVED = ("background",)
"""Names of labels every output already has (label 0, its colour, its share of the pixels): never a class."""


def check_reserved(names) -> None:
    """Refuse a class named like a reserved label (compared as ``name_key`` does): a usage error."""
    for name in names:
        if name_key(name) in RESERVED:
            raise UsageError(
                f"class name {name!r} is reserved: label 0 of every mask is the background (pixels no class "
                "reaches the threshold); leave it out of the class list"
            )


def validate_classes(names) -> list[str]:
    """Trimmed class names; empty, duplicate (case-insensitive, as CLIP lower-cases), reserved (``RESERVED``)
    or too many are errors."""
    classes = [" ".join(str(name).split()) for name in names]
    if any(not name for name in classes):
        raise UsageError("empty class name in the class list")
    seen: dict[str, str] = {}
    for name in classes:
        if name_key(name) in seen:
            raise UsageError(f"duplicate class name {name!r} in the class list")
        seen[name_key(name)] = name
    if len(classes) > MAX_CLASSES:
        raise UsageError(f"{len(classes)} classes given; at most {MAX_CLASSES} fit in a label map")
    check_reserved(classes)
    return classes
