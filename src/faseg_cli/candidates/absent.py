"""Which of the user's classes a picture does not show (``--drop-absent``): TagCLIP among a reference vocabulary.

TagCLIP's label rule is relative (a class is kept when its score exceeds the midpoint of
the range of all the vocabulary's scores, else the best class alone), so among the user's
two or three classes it always keeps the best and often drops a present one. The user's
classes are therefore classified together with a broad *reference* vocabulary (a
dataset's classes, by default COCO's 80) and TagCLIP's background distractors, as TagCLIP
classifies a dataset; the user's classes the rule keeps are kept, in the user's order,
the others are dropped before segmenting. A reference class that names one of the
user's classes (the same name or a synonym) is left out, so that the two never compete.

Cost: one TagCLIP pass per image (CLIP at the image's size up to 640 px, then one batch
of crops for the classes above its first threshold); the reference's text embeddings are
computed once and cached on disk, the user's classes' once per class list.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from faseg_cli.candidates.synonyms import ClassLookup
from faseg_cli.candidates.tagclip import TagClip
from faseg_cli.candidates.text_embeddings import class_embeddings
from faseg_cli.engine.clip import ClipEncoder
from faseg_cli.vocabularies import Vocabulary
from faseg_cli.word_lists import distractors as default_distractors

KEEP_LISTS = 64
"""How many class lists' TagCLIP heads (text embeddings) are kept between images."""


def combined_vocabulary(classes: Sequence[str], reference: Vocabulary) -> Vocabulary:
    """The user's ``classes`` first, then the reference classes that name none of them."""
    lookup = ClassLookup(Vocabulary("classes", tuple(classes)))
    rest = tuple(name for name in reference.classes if lookup(name) is None)
    return Vocabulary(f"{reference.name}+classes", (*classes, *rest))


def kept_classes(classes: Sequence[str], labels: Sequence[int]) -> list[str]:
    """The user's classes (the first ``len(classes)`` of the combined vocabulary) among TagCLIP's ``labels``."""
    chosen = set(labels)
    return [name for i, name in enumerate(classes) if i in chosen]


class AbsentClasses:
    """Drops the classes a picture does not show, with TagCLIP over the user's classes and ``reference``."""

    def __init__(self, encoder: ClipEncoder, reference: Vocabulary, max_side: int = 640) -> None:
        self.encoder = encoder
        self.reference = reference
        self.max_side = max_side
        self._shared: dict[str, torch.Tensor] | None = None
        self._heads: dict[tuple[str, ...], TagClip] = {}

    @classmethod
    def load(cls, clip_model: str, reference: Vocabulary, device: str | torch.device = "cpu") -> AbsentClasses:
        return cls(ClipEncoder.load(clip_model, device), reference)

    def present(self, image: Image.Image, classes: Sequence[str]) -> list[str]:
        """The classes of ``classes`` that TagCLIP finds in ``image``, in their order."""
        if not classes:
            return []
        return kept_classes(classes, self._head(tuple(classes))(image).labels)

    def _head(self, classes: tuple[str, ...]) -> TagClip:
        if classes not in self._heads:
            if len(self._heads) >= KEEP_LISTS:
                self._heads.pop(next(iter(self._heads)))
            vocabulary = combined_vocabulary(classes, self.reference)
            self._heads[classes] = TagClip(self.encoder, vocabulary, max_side=self.max_side, embeddings=self._embed)
        return self._heads[classes]

    def _embed(self, names: Sequence[str]) -> torch.Tensor:
        """Text embeddings of ``names``: the reference classes' and distractors' from one cached table,
        the others (the user's classes) computed (or read from the cache) per list."""
        if self._shared is None:
            shared = list(dict.fromkeys([*self.reference.classes, *default_distractors()]))
            self._shared = dict(zip(shared, class_embeddings(self.encoder, shared)))
        own = [name for name in names if name not in self._shared]
        mine = dict(zip(own, class_embeddings(self.encoder, own))) if own else {}
        return torch.stack([mine[name] if name in mine else self._shared[name] for name in names])
