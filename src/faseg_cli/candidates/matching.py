"""Caption words -> vocabulary classes (SPEC §3.3).

A class is matched when a run of caption words spells it (name, name without spaces,
vocabulary synonym, built-in synonym group; a plural "s"/"es" may be dropped), or
when a single caption word's CLIP text embedding has cosine >= 0.8 with the class
name's. Function words (``data/candidates/stopwords.txt``) are never compared by
similarity. Only classes of the vocabulary are produced, in vocabulary order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from faseg_cli.candidates.synonyms import ClassLookup
from faseg_cli.vocabularies import Vocabulary
from faseg_cli.word_lists import stopwords

SIMILARITY = 0.8
"""Minimum cosine between a caption word's and a class name's CLIP text embeddings."""

TextEncoder = Callable[[Sequence[str]], torch.Tensor]
"""Maps texts to L2-normalised embeddings (len(texts), E)."""


def caption_words(caption: str) -> list[str]:
    """The lower-case words of a caption (letters only; digits and punctuation split words)."""
    return re.findall(r"[^\W\d_]+", caption.lower())


class CaptionMatcher:
    """Matches caption words to the classes of one vocabulary."""

    def __init__(self, vocabulary: Vocabulary, encode: TextEncoder, threshold: float = SIMILARITY):
        self.vocabulary = vocabulary
        self.lookup = ClassLookup(vocabulary)
        self.encode = encode
        self.threshold = threshold
        self.class_text = encode(vocabulary.classes)
        self._word_classes: dict[str, frozenset[str]] = {}

    def spelled(self, words: Sequence[str]) -> set[str]:
        """Classes spelled by runs of ``words`` (exact names and synonyms)."""
        found = set()
        for n in range(1, self.lookup.max_words + 1):
            for i in range(len(words) - n + 1):
                cls = self.lookup.singular(" ".join(words[i : i + n]))
                if cls is not None:
                    found.add(cls)
        return found

    def similar(self, words: set[str]) -> dict[str, frozenset[str]]:
        """For each word, the classes whose name embedding is close to the word's (memoised)."""
        new = sorted(w for w in words - self._word_classes.keys() if len(w) > 1 and w not in stopwords())
        if new:
            close = (self.encode(new) @ self.class_text.T) >= self.threshold
            for word, row in zip(new, close, strict=True):
                self._word_classes[word] = frozenset(self.vocabulary.classes[i] for i in torch.nonzero(row).flatten())
        return {w: self._word_classes.get(w, frozenset()) for w in words}

    def match(self, captions: Sequence[str]) -> list[list[str]]:
        """The classes each caption names, in vocabulary order."""
        words = [caption_words(caption) for caption in captions]
        similar = self.similar({w for ws in words for w in ws})
        order = {cls: i for i, cls in enumerate(self.vocabulary.classes)}
        result = []
        for ws in words:
            found = self.spelled(ws).union(*(similar[w] for w in ws))
            result.append(sorted(found, key=order.__getitem__))
        return result
