"""Per-image class-list files in the format the FA-Seg authors published.

A file is a JSON object ``{image_id: "cls cls cls"}`` whose values join class names
with single spaces, so multi-word names are not delimited ("person dining table tv
monitor bottle"). Values are split back by greedy longest match against a
vocabulary: at each position the longest run of words that names a class (see
:class:`~faseg_cli.candidates.synonyms.ClassLookup`) is taken.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from faseg_cli.candidates.synonyms import ClassLookup
from faseg_cli.errors import InputError, OutputError
from faseg_cli.vocabularies import Vocabulary


def parse_class_list(text: str, lookup: ClassLookup, where: str = "class list") -> list[str]:
    """Split one value into vocabulary class names, in order, without repeats.

    ``where`` names the value in the error raised for a word that starts no class name.
    """
    words = text.split()
    found: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(lookup.max_words, len(words) - i), 0, -1):
            cls = lookup(" ".join(words[i : i + n]))
            if cls is not None:
                break
        else:
            raise InputError(
                f"{where}: {words[i]!r} is not a class of vocabulary {lookup.vocabulary.name} (nor a synonym)"
            )
        if cls not in found:
            found.append(cls)
        i += n
    return found


def load_class_lists(path: str | Path, vocabulary: Vocabulary) -> dict[str, list[str]]:
    """Read a class-list file into ``{image_id: [class, ...]}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read a class-list file: {exc}") from None
    return parse_class_lists(data, vocabulary, path)


def parse_class_lists(data, vocabulary: Vocabulary, source: str | Path) -> dict[str, list[str]]:
    """Split the values of a decoded class-list file; ``source`` names it in errors."""
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(f"{source}: expected a JSON object mapping image ids to strings of class names")
    lookup = ClassLookup(vocabulary)
    return {image: parse_class_list(value, lookup, f"{source}, image {image}") for image, value in data.items()}


def format_class_list(classes: Iterable[str]) -> str:
    """Join class names the way the published files do."""
    return " ".join(classes)


def save_class_lists(path: str | Path, lists: Mapping[str, Iterable[str]]) -> None:
    """Write ``{image_id: [class, ...]}`` as a class-list file."""
    text = json.dumps({image: format_class_list(classes) for image, classes in lists.items()}, ensure_ascii=False)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the class-list file: {exc}") from None
