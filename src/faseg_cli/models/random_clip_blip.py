"""Write tiny random-weight BLIP and CLIP models in the layout of the real hub repositories.

Tests and the ``tiny-blip`` / ``tiny-clip`` smoke-test models load them through the
same code as downloaded weights. The CLIP vision tower keeps ViT-B/16's depth (12
layers), patch size and input size so that every TagCLIP step runs as with the real
model; widths are tiny. Captions and labels are meaningless, the maths is exact.
"""

from __future__ import annotations

from pathlib import Path

import torch

from faseg_cli.models.quiet import quiet_libraries
from faseg_cli.models.random_diffusion import tiny_vocabulary, write_tokenizer

BLIP_WORDS = (
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "a", "an", "the", "of", "on", "in", "with", "there", "is", "are", "photo", "picture",
    "dog", "cat", "man", "woman", "people", "person", "tv", "table", "couch", "car", "bike",
    "sitting", "standing", "parked", "street", "room", "##s",
)  # fmt: skip
"""WordPiece vocabulary of the tiny BLIP tokenizer; ``[DEC]`` (BLIP's start token) is added after it."""


def write_tiny_blip(path: Path, seed: int = 0) -> Path:
    """Write a tiny random BLIP captioner (config, safetensors, tokenizer, image processor) to ``path``."""
    quiet_libraries()
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(BLIP_WORDS)}, bos_token="[DEC]")
    tokenizer.save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(BLIP_WORDS) + "\n", encoding="utf-8")
    BlipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(path)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = BlipConfig(
        text_config={
            **small,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**small, "image_size": 32, "patch_size": 16},
        projection_dim=8,
        image_text_hidden_size=8,
    )
    torch.manual_seed(seed)
    BlipForConditionalGeneration(config).save_pretrained(path)
    return path


def write_tiny_clip(path: Path, seed: int = 0) -> Path:
    """Write a tiny random CLIP (12-layer vision tower, 224 px, patch 16) to ``path``."""
    quiet_libraries()
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    path = Path(path)
    write_tokenizer(path)
    vocab_size = len(tiny_vocabulary()[0])
    CLIPImageProcessorPil().save_pretrained(path)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "hidden_act": "quick_gelu"}
    config = CLIPConfig(
        text_config={
            **small,
            "num_hidden_layers": 2,
            "vocab_size": vocab_size,
            "max_position_embeddings": 77,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={**small, "num_hidden_layers": 12, "image_size": 224, "patch_size": 16},
        projection_dim=8,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(path)
    return path
