"""Map a phrase (a caption word, a class-list token) to a class of a vocabulary.

A phrase names a class when it is the class name (any case), the name written without
spaces ("diningtable", as in the published VOC files), a synonym declared by the
vocabulary, or a member of a built-in synonym group (``data/candidates/synonyms.txt``)
whose group has a name in the vocabulary. Groups make the table work for every
vocabulary: "couch" finds "sofa" in VOC, "sofa" finds "couch" in COCO.
"""

from __future__ import annotations

from functools import lru_cache

from faseg_cli.vocabularies import Vocabulary, name_key, parse_vocabulary
from faseg_cli.word_lists import read_list


@lru_cache(maxsize=1)
def synonym_groups() -> tuple[tuple[str, ...], ...]:
    """The built-in groups of equivalent names, head first."""
    table = parse_vocabulary("synonyms", "\n".join(read_list("synonyms.txt")))
    return tuple((head, *[alias for alias, cls in table.synonyms.items() if cls == head]) for head in table.classes)


class ClassLookup:
    """Phrase -> class name for one vocabulary (exact spellings only, no similarity)."""

    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        table: dict[str, str] = {}
        for cls in vocabulary.classes:
            table.setdefault(name_key(cls), cls)
            table.setdefault(name_key(cls).replace(" ", ""), cls)
        classes = {str(cls): cls for cls in vocabulary.classes}
        for alias, cls in vocabulary.synonyms.items():
            table.setdefault(name_key(alias), classes[cls])
        for group in synonym_groups():
            target = next((table[name_key(name)] for name in group if name_key(name) in table), None)
            if target is None:
                continue
            for name in group:
                table.setdefault(name_key(name), target)
                table.setdefault(name_key(name).replace(" ", ""), target)
        self._table = table
        self.max_words = max(len(key.split()) for key in table)

    def __call__(self, phrase: str) -> str | None:
        """The class ``phrase`` names, or None."""
        return self._table.get(name_key(phrase))

    def singular(self, phrase: str) -> str | None:
        """Like calling the lookup, also trying the phrase without a plural "s"/"es" ending."""
        found = self(phrase)
        for cut in ("s", "es"):
            if found is None and phrase.endswith(cut) and len(phrase) > len(cut) + 1:
                found = self(phrase[: -len(cut)])
        return found
