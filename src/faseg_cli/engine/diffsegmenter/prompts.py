"""DiffSegmenter's prompt per class: the BLIP continuation, the weighted class word and the class token (SPEC §6.1).

The published code writes ``"<prefix> <class>++<continuation>"`` for compel, which splits
it into three fragments (before the class's last word, that word, the rest), weights the
middle one 1.1^2 = 1.21 and encodes ``e_empty + w (e - e_empty)`` per token, ``e_empty``
being the encoding of the empty prompt. The fragments are tokenized one by one
(``diffusion.tokens``), so the weighted word's positions are known exactly. The class
token is the last token of the class name; when the word after the name ends in "ing",
it is averaged with the token ``ing_offset`` after it. No model here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faseg_cli.engine.diffusion.tokens import assemble, fragment_ids


@dataclass(frozen=True)
class ClassPrompt:
    """One class's prompt: its text (compel syntax), token ids, per-token weights and the class token(s)."""

    text: str
    ids: tuple[int, ...]
    weights: tuple[float, ...]
    tokens: tuple[int, ...]
    """Positions whose cross-attention maps are averaged into the class's map."""


def blip_prefix(prefix: str, name: str) -> str:
    """The text BLIP continues: ``"a photograph of cat"``."""
    return f"{prefix} {name}"


def continuation(prefix: str, generated: str) -> str:
    """What BLIP added: the decoded output less the prefix's length in characters, as published."""
    return generated[len(prefix) :]


def class_prompt(
    tokenizer, prefix: str, name: str, added: str, weight: float = 1.21, ing_offset: int = 1
) -> ClassPrompt:
    """The weighted prompt of class ``name`` (its prompt name) given BLIP's continuation ``added``."""
    words = name.split(" ")
    before = " ".join([prefix, *words[:-1]])
    pieces = fragment_ids(tokenizer, [before, words[-1], added])
    ids, spans = assemble(tokenizer, pieces)
    weights = [1.0] * len(ids)
    for position in spans[1]:
        weights[position] = weight
    text = f"{prefix} {name}++{added}"
    last = (spans[1] or spans[0])[-1]
    after = text.split(" ")
    following = len(prefix.split(" ")) + len(words)
    ing = following < len(after) and after[following].endswith("ing")
    tokens = (last, last + ing_offset) if ing and last + ing_offset < len(ids) else (last,)
    return ClassPrompt(text, tuple(ids), tuple(weights), tokens)


def weighted_embeddings(embeds: torch.Tensor, empty: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``empty + weights * (embeds - empty)`` per token: ``embeds`` ``(K, L, D)``, ``empty`` ``(L, D)``,
    ``weights`` ``(K, L)`` (compel's weighting for weights of at least 1)."""
    return empty + (embeds - empty) * weights.to(embeds).unsqueeze(-1)


def token_weights(prompts: list[ClassPrompt], length: int) -> torch.Tensor:
    """``(K, length, 1)``: each prompt's mean over its class tokens, as a weight column for the recorder."""
    out = torch.zeros(len(prompts), length, 1)
    for k, prompt in enumerate(prompts):
        out[k, list(prompt.tokens), 0] = 1.0 / len(prompt.tokens)
    return out
