"""Prompts assembled from text fragments, and where each fragment's tokens sit (SPEC §2.4, §6.1).

A CLIP tokenizer splits text at spaces and punctuation before its BPE, so tokenizing
fragments one by one and concatenating the ids gives the prompt's own ids while telling
exactly which positions each fragment (a class name, a word) occupies: any name works,
multi-token, repeated or non-English, without searching decoded text. No model.
"""

from __future__ import annotations

import torch


def fragment_ids(tokenizer, fragments: list[str]) -> list[list[int]]:
    """The token ids of each fragment on its own (no start, end or padding tokens)."""
    return tokenizer(list(fragments), add_special_tokens=False).input_ids if fragments else []


def assemble(tokenizer, pieces: list[list[int]]) -> tuple[list[int], list[tuple[int, ...]]]:
    """``<bos> piece piece ... <eos> <pad>...`` at the encoder's full length, and each piece's positions.

    Pieces beyond the encoder's length are cut, as Stable Diffusion truncates its prompts
    (a piece cut entirely gets no positions).
    """
    length = tokenizer.model_max_length
    ids, spans = [tokenizer.bos_token_id], []
    for piece in pieces:
        room = max(0, length - 1 - len(ids))
        kept = piece[:room]
        spans.append(tuple(range(len(ids), len(ids) + len(kept))))
        ids += kept
    ids.append(tokenizer.eos_token_id)
    return ids + [tokenizer.pad_token_id] * (length - len(ids)), spans


def tokenize_prompts(tokenizer, prompts: list[str]) -> torch.Tensor:
    """Pad and truncate text prompts to the encoder's length, as Stable Diffusion does."""
    return tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
