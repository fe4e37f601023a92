"""iSeg's prompt and class-token positions, and the published per-dataset class names (SPEC §6.2).

The prompt is ``"a photograph of " + " and ".join(names) + " and other object and background" + context``.
Each class's tokens are found with the model's own tokenizer (the published tables declare token counts by
hand, "fire hydrant" wrongly). ``faseg segment`` uses every token of each class name; ``faseg eval`` uses the
published name of each dataset class and, for some, only the tokens of one word of it ("potted plant" ->
"plant"). Classes are matched by name, never by index.
"""

from __future__ import annotations

from dataclasses import dataclass

from faseg_cli.engine.diffusion.tokens import assemble, fragment_ids
from faseg_cli.errors import UsageError

PREFIX = "a photograph of "
SEPARATOR = " and "
SUFFIX = " and other object and background"

PROMPT_NAMES = {
    "voc": {
        "aeroplane": "plane",
        "potted plant": ("potted plant", "plant"),
        "tv monitor": ("tv monitor", "monitor"),
    },
    "context": {
        "aeroplane": "plane",
        "potted plant": "plant",
        "tv monitor": "monitor",
        "computer": "laptop",
        "bedclothes": "bedding",
    },
    "coco-object": {
        "person": "people",
        "motorcycle": "motorbike",
        "airplane": "plane",
        "couch": "sofa",
        "potted plant": ("potted plant", "plant"),
        "tv": ("tv monitor", "monitor"),
        "traffic light": ("traffic light", "light"),
        "fire hydrant": ("fire hydrant", "hydrant"),
        "baseball bat": ("baseball bat", "bat"),
        "baseball glove": ("baseball glove", "glove"),
        "tennis racket": ("tennis racket", "racket"),
        "wine glass": ("wine glass", "glass"),
    },
}
"""Per published configuration, faseg's dataset class name -> the published prompt name, or (prompt name, the
word whose tokens are the class tokens). Classes not listed keep their name and use all its tokens."""


@dataclass(frozen=True)
class ClassName:
    """A class as it enters the prompt: its text and the word of it whose tokens stand for it (None: all)."""

    text: str
    word: str | None = None


def published_names(family: str, classes: list[str]) -> list[ClassName]:
    """The published prompt names of a dataset configuration's classes (faseg's names, matched by name)."""
    table = PROMPT_NAMES.get(family, {})
    names = []
    for name in classes:
        entry = table.get(name, name)
        names.append(ClassName(*entry) if isinstance(entry, tuple) else ClassName(entry))
    return names


@dataclass(frozen=True)
class IsegPrompt:
    """The prompt, its token ids ``(L,)`` and each class's token positions in them."""

    text: str
    ids: list[int]
    tokens: list[list[int]]

    @property
    def emphasised(self) -> list[int]:
        """Every class token position, in class order (the rows gamma multiplies)."""
        return [p for positions in self.tokens for p in positions]


def build_prompt(tokenizer, names: list[ClassName], context: str) -> IsegPrompt:
    """The prompt of ``names`` with ``context`` glued on, as token ids at the encoder's length, and each class's
    token positions (assembled from fragments, ``diffusion.tokens``, so any name works).

    A class whose tokens do not all fit in the prompt is a usage error: the published code would silently
    read padding instead.
    """
    joint = SEPARATOR.strip()
    fragments = [PREFIX.strip()]
    for i, name in enumerate(names):
        fragments += [joint, name.text] if i else [name.text]
    fragments.append((SUFFIX + context).strip())
    pieces = fragment_ids(tokenizer, fragments)
    ids, spans = assemble(tokenizer, pieces)
    tokens = []
    for name, span, piece in zip(names, spans[1::2], pieces[1::2]):
        if len(span) < len(piece):
            raise UsageError(
                f"class {name.text!r} does not fit in iSeg's {len(ids)}-token prompt: segment fewer classes at once"
            )
        chosen = range(len(span))
        if name.word is not None:
            words = name.text.split()
            before = sum(map(len, fragment_ids(tokenizer, words[: words.index(name.word)])))
            chosen = range(before, before + len(fragment_ids(tokenizer, [name.word])[0]))
        tokens.append([span[i] for i in chosen])
    text = PREFIX + SEPARATOR.join(n.text for n in names) + SUFFIX + context
    return IsegPrompt(text, ids, tokens)
