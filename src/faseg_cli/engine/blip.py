"""BLIP-large: unconditional image captions (SPEC §3.1) and continuations of a text prefix (SPEC §6.1).

Captions are decoded by deterministic beam search (3 beams, 5 to 20 new tokens), the
beam-search settings of BLIP's own captioning demo; the published FA-Seg captions do not
record theirs. BLIP-large's artefacts ("arafed ...", "araflane ...") appear in the
published captions too and are kept as they are. Continuations (DiffSegmenter's prompts)
are greedy, at most ``max_length`` tokens in total, prefix included, as ``generate()``
behaved by default in the transformers version the published code used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from PIL import Image

from faseg_cli.engine.methods import model_uses
from faseg_cli.errors import WeightsError
from faseg_cli.files.images import to_rgb
from faseg_cli.models.quiet import quiet_libraries
from faseg_cli.models.registry import BLIP, BLIP_MODEL
from faseg_cli.models.weights import check_kind, resolve_model

log = logging.getLogger("faseg")


class Captioner:
    """A loaded BLIP captioning model on one device and precision."""

    def __init__(
        self,
        model,
        tokenizer,
        image_processor,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        num_beams: int = 3,
        min_new_tokens: int = 5,
        max_new_tokens: int = 20,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.device = torch.device(device)
        self.dtype = dtype
        self.generate_options = {
            "num_beams": num_beams,
            "do_sample": False,
            "min_new_tokens": min_new_tokens,
            "max_new_tokens": max_new_tokens,
        }

    @classmethod
    def load(
        cls, model: str = "blip", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **options
    ) -> Captioner:
        """Load BLIP by registry name, hub id or local directory; ``options`` go to the constructor."""
        from transformers import AutoTokenizer, BlipForConditionalGeneration, BlipImageProcessorPil

        check_kind(model, (BLIP_MODEL,), "--caption-model", model_uses())
        path = resolve_model(model, BLIP, "--caption-model")
        quiet_libraries()
        try:
            net = BlipForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device)
            tokenizer = AutoTokenizer.from_pretrained(path)
            processor = BlipImageProcessorPil.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise WeightsError(f"cannot load BLIP from {path}: {str(exc).splitlines()[0]}") from exc
        log.info("Loaded BLIP from %s", path)
        return cls(net, tokenizer, processor, device, dtype, **options)

    @torch.inference_mode()
    def caption(self, images: Sequence[Image.Image], batch_size: int = 8) -> list[str]:
        """One caption per image, in order."""
        captions: list[str] = []
        for start in range(0, len(images), batch_size):
            batch = [to_rgb(image) for image in images[start : start + batch_size]]
            pixels = self.image_processor(images=batch, return_tensors="pt").pixel_values
            ids = self.model.generate(pixel_values=pixels.to(self.device, self.dtype), **self.generate_options)
            captions += [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return captions

    @torch.inference_mode()
    def continue_text(self, image: Image.Image, prefixes: Sequence[str], max_length: int = 20) -> list[str]:
        """BLIP's greedy continuation of each prefix for ``image``, decoded without special tokens (the whole
        text, prefix included, at most ``max_length`` tokens)."""
        pixels = self.image_processor(images=[to_rgb(image)], return_tensors="pt").pixel_values
        pixels = pixels.to(self.device, self.dtype)
        texts = []
        for prefix in prefixes:
            tokens = self.tokenizer(prefix, return_tensors="pt").to(self.device)
            ids = self.model.generate(
                pixel_values=pixels,
                input_ids=tokens.input_ids,
                attention_mask=tokens.attention_mask,
                max_length=max_length,
                do_sample=False,
                num_beams=1,
            )
            texts.append(self.tokenizer.decode(ids[0], skip_special_tokens=True))
        return texts
