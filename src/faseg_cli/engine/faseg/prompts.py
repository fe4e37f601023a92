"""FA-Seg's dual prompt and its class prompts with each class's token span (SPEC §2.3-2.4).

Class prompts are assembled from token ids rather than found again in decoded text,
so any class name works (multi-token, repeated words, non-ASCII). When the classes
need more than the text encoder's 75 content tokens they are split over several
class prompts, all evaluated in the same UNet pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faseg_cli.engine.diffusion.tokens import assemble, fragment_ids
from faseg_cli.errors import UsageError

SEPARATOR = ","


def class_prompt(classes: list[str]) -> str:
    """``"tv monitor, dog, person"``: the class prompt P_c."""
    return f"{SEPARATOR} ".join(classes)


def text_prompt(classes: list[str], caption: str | None = None) -> str:
    """The text prompt P_t = ``"<caption> ; <P_c>"``; without a caption, ``"a photo of <P_c>"`` is the caption."""
    classes_text = class_prompt(classes)
    if caption is None:
        caption = f"a photo of {classes_text}"
    return f"{caption} ; {classes_text}"


@dataclass(frozen=True)
class ClassPrompts:
    """Token ids of one image's class prompt(s) and where each class's tokens sit.

    ``ids`` is ``(P, L)``: P prompts of the encoder's full length L. ``spans[k]`` is
    ``(prompt index, token positions)`` of class k.
    """

    ids: torch.Tensor
    spans: tuple[tuple[int, tuple[int, ...]], ...]

    def token_weights(self, num_prompts: int, num_classes: int) -> torch.Tensor:
        """``(num_prompts * L, num_classes)`` matrix averaging each class's token columns.

        Multiplying flattened cross-attention probabilities by it gives one map per class:
        the mean over that class's tokens. Extra prompts and classes (batch padding) get zeros.
        """
        length = self.ids.shape[1]
        weights = torch.zeros(num_prompts * length, num_classes)
        for k, (prompt, positions) in enumerate(self.spans):
            for pos in positions:
                weights[prompt * length + pos, k] = 1.0 / len(positions)
        return weights


def build_class_prompts(tokenizer, classes: list[str]) -> ClassPrompts:
    """Tokenize each name once and assemble ``<bos> name , name , ... <eos> <pad>...`` per prompt."""
    room = tokenizer.model_max_length - 2
    separator = fragment_ids(tokenizer, [SEPARATOR])[0]
    name_ids = fragment_ids(tokenizer, classes)
    chunks: list[list[int]] = []
    used = 0
    for k, (name, ids) in enumerate(zip(classes, name_ids)):
        if not ids:
            raise UsageError(f"class name {name!r} has no text tokens")
        if len(ids) > room:
            raise UsageError(f"class name {name[:40]!r}... is longer than {room} tokens")
        cost = len(separator) + len(ids)
        if chunks and used + cost <= room:
            chunks[-1].append(k)
            used += cost
        else:
            chunks.append([k])
            used = len(ids)
    rows, spans = [], []
    for p, chunk in enumerate(chunks or [[]]):
        pieces = [piece for j, k in enumerate(chunk) for piece in ([separator] if j else []) + [name_ids[k]]]
        ids, piece_spans = assemble(tokenizer, pieces)
        rows.append(ids)
        spans += [(p, span) for span in piece_spans[::2]]
    return ClassPrompts(torch.tensor(rows), tuple(spans))
