"""Class names: what a class is (``ClassName``), vocabularies (built-in lists, user files), the rules of a class list.

A class is its name and the prompts that ask for it: ``"person|man|woman"`` (or
``["person", "man", "woman"]``) is the class ``person`` with three prompts, the first its
name in every output. Methods that can use several prompts per class (NACLIP: one query
each, the class scored by the best) read ``ClassName.prompts``; the others use the name.

A vocabulary file has one class per line; ``name: synonym, synonym`` adds aliases
that map other words to that class and are its other prompts. Blank lines and ``#``
comments are ignored. Built-in vocabularies live in ``faseg_cli/data/vocab/<name>.txt``
in the same format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from faseg_cli.errors import UsageError

SEPARATOR = "|"
"""Separates a class's prompts in a class-list string: ``"person|man|woman"``."""


class ClassName(str):
    """A class: the string is its name (what every output shows), ``prompts`` what asks for it.

    ``prompts`` are trimmed, unique and never empty; without any the name is the only one.
    A plain ``str`` is a class whose only prompt is itself.
    """

    prompts: tuple[str, ...]

    def __new__(cls, name: str, prompts=()) -> ClassName:
        self = super().__new__(cls, name)
        self.prompts = tuple(dict.fromkeys(prompts)) or (str(name),)
        return self

    def __reduce__(self):
        return ClassName, (str(self), self.prompts)

    @property
    def has_synonyms(self) -> bool:
        """Whether other prompts than the name ask for this class."""
        return self.prompts != (str(self),)


def class_prompts(name: str) -> tuple[str, ...]:
    """The prompts of a class name (a plain ``str`` is its own only prompt)."""
    return getattr(name, "prompts", (name,))


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of classes (each with its aliases as prompts), and the aliases (alias -> class name)."""

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
    groups = {cls: [cls] for cls in classes}
    for alias, cls in synonyms.items():
        groups[cls].append(alias)
    return Vocabulary(name, tuple(ClassName(cls, groups[cls]) for cls in classes), synonyms)


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


NAME_FILES = "naclip"
"""``faseg_cli/data/<this>/``: NACLIP's published class-name files (see the README there)."""


def read_name_file(filename: str) -> list[tuple[str, ...]]:
    """The lines of a published NACLIP name file (``cls_voc21.txt``...), each as its queries.

    As the published ``get_cls_idx`` reads them: one line per class, its queries separated by
    ``", "``; faseg also trims the spaces around a query (a trailing one in ``cls_context60.txt``),
    which CLIP's tokenizer ignores anyway.
    """
    text = (resources.files("faseg_cli") / "data" / NAME_FILES / filename).read_text("utf-8")
    return [tuple(" ".join(q.split()) for q in line.split(", ")) for line in text.split("\n")]


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


def parse_class(entry) -> ClassName:
    """One class-list entry as a ``ClassName``: a string (prompts separated by ``|``), a list or tuple of
    strings (the prompts), or a ``ClassName``; the first prompt is the name. Prompts are trimmed.

    ``TypeError`` for any other type; ``UsageError`` for an empty prompt.
    """
    if isinstance(entry, ClassName):
        return entry
    if isinstance(entry, str):
        prompts = entry.split(SEPARATOR)
    elif isinstance(entry, (list, tuple)) and entry and all(isinstance(p, str) for p in entry):
        prompts = list(entry)
    else:
        raise TypeError(
            f"class {entry!r}: a class is a string ('person' or 'person|man|woman') or a non-empty list or tuple "
            f"of strings, not {type(entry).__name__}"
        )
    prompts = [" ".join(p.split()) for p in prompts]
    if not all(prompts):
        where = f"{SEPARATOR.join(prompts)!r}" if len(prompts) > 1 else "the class list"
        raise UsageError(f"empty class name in {where}")
    return ClassName(prompts[0], prompts)


def validate_classes(names) -> list[ClassName]:
    """Checked classes (see ``parse_class``); empty, duplicate (case-insensitive, as CLIP lower-cases),
    reserved (``RESERVED``) or too many names are usage errors. ``TypeError`` unless ``names`` is a list,
    tuple or other sequence of entries (a single string, e.g. ``"cat,dog"``, is not a list of classes)."""
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(
            f"the class list must be a list of classes, e.g. ['cat', 'dog'], not {type(names).__name__} {names!r}"
        )
    classes = [parse_class(entry) for entry in names]
    seen: dict[str, str] = {}
    for name in classes:
        if name_key(name) in seen:
            raise UsageError(f"duplicate class name {name!r} in the class list")
        seen[name_key(name)] = name
    if len(classes) > MAX_CLASSES:
        raise UsageError(f"{len(classes)} classes given; at most {MAX_CLASSES} fit in a label map")
    check_reserved(classes)
    return classes
