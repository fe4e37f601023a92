"""Write random-weight diffusion models in the real on-disk layout.

Tests, the ``tiny-random`` and ``tiny-random-sd21`` smoke-test models and the benchmarks
load these through the same code path as downloaded weights. Random weights give meaningless masks but
exact, deterministic maths; timings do not depend on weight values.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SPECIALS = ("<|startoftext|>", "<|endoftext|>")
TINY_WORDS = ("dog", "cat", "car", "person", "tv", "monitor", "photo", "of", "a", "the")
"""Words the tiny tokenizer knows as whole tokens; any other text splits into byte tokens."""
ISEG_WORDS = ("photograph", "and", "other", "object", "background", "plane", "people", "motorbike", "sofa",
              "laptop", "bedding", "land", "lake", "river", "sea", "railway")  # fmt: skip
"""iSeg's prompt words and published class names that faseg's class lists lack (``sd21_words``)."""

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
    "tiny-sd21": {
        "unet": {
            "block_out_channels": (20, 40, 80, 80),
            "layers_per_block": 2,
            "attention_head_dim": (5, 10, 20, 20),
            "cross_attention_dim": 32,
            "norm_num_groups": 4,
            "use_linear_projection": True,
        },
        "vae": {"block_out_channels": (16, 16, 32, 32), "layers_per_block": 1, "norm_num_groups": 8},
        "text": {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4},
    },
    "sd21": {
        "unet": {
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "attention_head_dim": (5, 10, 20, 20),
            "cross_attention_dim": 1024,
            "norm_num_groups": 32,
            "use_linear_projection": True,
        },
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "text": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16},
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
"""Model shapes. SD 2.x's ``attention_head_dim`` is, as in its published config, the number of heads per block
(5/10/20/20: head width 64 at full size, 4 in ``tiny-sd21``); its text encoder is OpenCLIP-H in ``CLIPTextModel``
layout (GELU, 1024 wide, 23 layers) and its tokenizer pads with ``!``."""

SD2_PRESETS = ("tiny-sd21", "sd21")

SD21_SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "steps_offset": 1,
}
"""The noise-schedule fields of SD 2.1-base's ``scheduler/scheduler_config.json``."""

QK_GAIN = {"attn1": 3.0, "attn2": 3.0**0.5}
"""Factors on the tiny SD 2.1 model's query and key weights (self-attention scores x9, cross x3), so that its
random attention maps are peaked enough to show structure instead of being nearly uniform."""


def _byte_alphabet() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    return sorted(ByteLevel.alphabet())


def sd21_words() -> tuple[str, ...]:
    """The tiny SD 2.1 tokenizer's whole words: ``TINY_WORDS``, iSeg's prompt and published class names, and
    every word of the VOC, Context and COCO class lists, so that a class name is as many tokens as words."""
    from importlib import resources

    words = dict.fromkeys(TINY_WORDS + ISEG_WORDS)
    for name in ("voc", "context", "coco"):
        text = resources.files("faseg_cli").joinpath(f"data/vocab/{name}.txt").read_text(encoding="utf-8")
        words.update(dict.fromkeys(text.split()))
    return tuple(words)


def tiny_vocabulary(words: tuple[str, ...] = TINY_WORDS) -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE vocabulary and merges that tokenize any text, CLIP style, each of ``words`` as one token."""
    tokens = list(SPECIALS) + [c for ch in _byte_alphabet() for c in (ch, ch + "</w>")]
    merges: list[tuple[str, str]] = []
    known = set(tokens)
    for _ in range(len(words)):
        added = False
        for word in words:
            pieces = _split(word, {m: i for i, m in enumerate(merges)})
            while len(pieces) > 1:
                merges.append((pieces[0], pieces[1]))
                pieces[:2] = [pieces[0] + pieces[1]]
                if pieces[0] not in known:
                    known.add(pieces[0])
                    tokens.append(pieces[0])
                added = True
        if not added:
            break
    return {tok: i for i, tok in enumerate(tokens)}, [f"{a} {b}" for a, b in merges]


def _split(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """``word``'s tokens under the BPE merges ``ranks`` (lowest rank first, as CLIP's tokenizer applies them)."""
    pieces = [*word[:-1], word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(zip(pieces, pieces[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def write_tokenizer(path: Path, pad: str = SPECIALS[1], words: tuple[str, ...] = TINY_WORDS) -> None:
    """Write a CLIP tokenizer folder (vocab.json, merges.txt, configs) of the tiny vocabulary of ``words``,
    padding with ``pad``."""
    vocab, merges = tiny_vocabulary(words)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": SPECIALS[0], "eos_token": SPECIALS[1], "unk_token": SPECIALS[1], "pad_token": pad}
    (path / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    config = {**special, "model_max_length": 77, "do_lower_case": True, "tokenizer_class": "CLIPTokenizer"}
    (path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def random_components(preset: str = "tiny", seed: int = 0):
    """Random-weight ``(unet, vae, text_encoder, tokenizer)`` of ``preset`` (a key of ``PRESETS``), in memory."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    cfg = PRESETS[preset]
    torch.manual_seed(seed)
    sd2 = preset in SD2_PRESETS
    vocab, merges = tiny_vocabulary(sd21_words() if sd2 else TINY_WORDS)
    pad = {"pad_token": "!"} if sd2 else {}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges], model_max_length=77, **pad)
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
            vocab_size=max(len(vocab), 49408 if preset in ("sd15", "sd21") else 0),
            max_position_embeddings=77,
            hidden_act="gelu" if sd2 else "quick_gelu",
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            **cfg["text"],
        )
    )
    if preset == "tiny-sd21":
        _sharpen_attention(unet)
    return unet, vae, text, tokenizer


def _sharpen_attention(unet) -> None:
    """Scale the query and key weights of every attention layer by ``QK_GAIN``."""
    with torch.no_grad():
        for name, module in unet.named_modules():
            gain = QK_GAIN.get(name.rsplit(".", 1)[-1])
            if gain is not None:
                module.to_q.weight.mul_(gain)
                module.to_k.weight.mul_(gain)


def write_random_model(path: Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight model of ``preset`` to ``path`` in the real on-disk layout."""
    from faseg_cli.models.quiet import quiet_libraries

    quiet_libraries()
    path = Path(path)
    unet, vae, text, tokenizer = random_components(preset, seed)
    words = sd21_words() if preset in SD2_PRESETS else TINY_WORDS
    write_tokenizer(path / "tokenizer", tokenizer.pad_token, words)
    unet.save_pretrained(path / "unet")
    vae.save_pretrained(path / "vae")
    text.save_pretrained(path / "text_encoder")
    if preset in SD2_PRESETS:
        _legacy_key_names(path)
        (path / "scheduler").mkdir(exist_ok=True)
        (path / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD21_SCHEDULER, indent=1))
    (path / "model_index.json").write_text(json.dumps({"_class_name": "RandomFasegModel", "preset": preset}))
    return path


def write_tiny_model(path: Path) -> Path:
    """Builder of the registered ``tiny-random`` model."""
    return write_random_model(path, "tiny")


LEGACY_VAE_ATTENTION = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
"""The VAE attention's weight names in checkpoints of SD 2.1's time, which older diffusers read."""


def _legacy_key_names(path: Path) -> None:
    """Rename the saved weights to the real SD 2.1-base repository's names: ``text_model.``-prefixed text-encoder
    keys and the VAE attention's ``query``/``key``/``value``/``proj_attn``, so that the libraries of its time (and
    the published iSeg code run on them) read the same weights faseg does."""
    from safetensors.torch import load_file, save_file

    def rename(file: Path, new_name) -> None:
        tensors = {new_name(key): value.contiguous() for key, value in load_file(file).items()}
        save_file(tensors, file, metadata={"format": "pt"})

    def vae_name(key: str) -> str:
        for new, old in LEGACY_VAE_ATTENTION.items():
            key = key.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
        return key

    rename(path / "text_encoder" / "model.safetensors", lambda key: f"text_model.{key.removeprefix('text_model.')}")
    rename(path / "vae" / "diffusion_pytorch_model.safetensors", vae_name)


def write_tiny_sd21(path: Path) -> Path:
    """Builder of the registered ``tiny-random-sd21`` model (SD 2.1-base's blocks, layer names and head counts)."""
    return write_random_model(path, "tiny-sd21")
