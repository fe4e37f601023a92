"""Write random-weight diffusion models in the real on-disk layout.

Tests, the ``tiny-random`` smoke-test model and the benchmark load these through the
same code path as downloaded weights. Random weights give meaningless masks but
exact, deterministic maths; timings do not depend on weight values.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SPECIALS = ("<|startoftext|>", "<|endoftext|>")
TINY_WORDS = ("dog", "cat", "car", "person", "tv", "monitor", "photo", "of", "a", "the")
"""Words the tiny tokenizer knows as whole tokens; any other text splits into byte tokens."""

PRESETS = {
    "tiny": {
        "unet": {
            "block_out_channels": (32, 32, 64, 64),
            "layers_per_block": 1,
            "attention_head_dim": 4,
            "cross_attention_dim": 32,
            "norm_num_groups": 8,
        },
        "vae": {"block_out_channels": (16, 16, 32, 32), "layers_per_block": 1, "norm_num_groups": 8},
        "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
    },
    "sd15": {
        "unet": {
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "attention_head_dim": 8,
            "cross_attention_dim": 768,
            "norm_num_groups": 32,
        },
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "text": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
    },
}


def _byte_alphabet() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    return sorted(ByteLevel.alphabet())


def tiny_vocabulary() -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE vocabulary and merges that tokenize any text, CLIP style."""
    tokens = list(SPECIALS) + [c for ch in _byte_alphabet() for c in (ch, ch + "</w>")]
    merges: list[str] = []
    for word in TINY_WORDS:
        piece = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            merged = piece + right
            if merged not in tokens:
                merges.append(f"{piece} {right}")
                tokens.append(merged)
            piece = merged
    return {tok: i for i, tok in enumerate(tokens)}, merges


def write_tokenizer(path: Path) -> None:
    """Write a CLIP tokenizer folder (vocab.json, merges.txt, configs) of the tiny vocabulary."""
    vocab, merges = tiny_vocabulary()
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": SPECIALS[0], "eos_token": SPECIALS[1], "unk_token": SPECIALS[1], "pad_token": SPECIALS[1]}
    (path / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    config = {**special, "model_max_length": 77, "do_lower_case": True, "tokenizer_class": "CLIPTokenizer"}
    (path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def random_components(preset: str = "tiny", seed: int = 0):
    """Random-weight ``(unet, vae, text_encoder, tokenizer)`` of ``preset`` (``tiny`` or ``sd15``), in memory."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    cfg = PRESETS[preset]
    torch.manual_seed(seed)
    vocab, merges = tiny_vocabulary()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges], model_max_length=77)
    unet = UNet2DConditionModel(
        sample_size=64,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        **cfg["unet"],
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        sample_size=512,
        **cfg["vae"],
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=max(len(vocab), 49408 if preset == "sd15" else 0),
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            **cfg["text"],
        )
    )
    return unet, vae, text, tokenizer


def write_random_model(path: Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight model of ``preset`` to ``path`` in the real on-disk layout."""
    from faseg_cli.models.quiet import quiet_libraries

    quiet_libraries()
    path = Path(path)
    unet, vae, text, _ = random_components(preset, seed)
    write_tokenizer(path / "tokenizer")
    unet.save_pretrained(path / "unet")
    vae.save_pretrained(path / "vae")
    text.save_pretrained(path / "text_encoder")
    (path / "model_index.json").write_text(json.dumps({"_class_name": "RandomFasegModel", "preset": preset}))
    return path


def write_tiny_model(path: Path) -> Path:
    """Builder of the registered ``tiny-random`` model."""
    return write_random_model(path, "tiny")
