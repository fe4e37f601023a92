"""DiffSegmenter: load an SD 1.5-family model and BLIP once, segment many images (SPEC §6.1).

Per image: resize to the model's square (bilinear), VAE posterior mean, seeded noise
added at t = 100; per class a BLIP continuation of ``"<prefix> <class>"`` and its
weighted prompt; one UNet pass per class, all of an image's classes in one batch
(``classes_per_pass``), recording each class token's cross-attention at every resolution
and the self-attention at the latent's own resolution; then ``maths``.
"""

from __future__ import annotations

import numpy as np
import torch

from faseg_cli.engine.base import AttentionMaps, Segmentation, SegmenterBase, attention_npz
from faseg_cli.engine.diffsegmenter.maths import fuse, refine, scores_at
from faseg_cli.engine.diffsegmenter.prompts import (
    blip_prefix,
    class_prompt,
    continuation,
    token_weights,
    weighted_embeddings,
)
from faseg_cli.engine.diffsegmenter.settings import DiffSegmenterSettings
from faseg_cli.engine.diffusion.model import DiffusionModel, stretched_pixels
from faseg_cli.engine.diffusion.recording import RecordingPlan
from faseg_cli.engine.diffusion.tokens import assemble
from faseg_cli.engine.scores import labels_from_scores

MEMORY_BUDGET = 2 * 1024**3
"""Bytes of self-attention maps one UNet batch may hold (three ``n x n`` fp32 maps per class), when
``classes_per_pass`` is 0."""


class DiffSegmenter(SegmenterBase):
    """Segments images by class names with DiffSegmenter: per class one BLIP continuation and one UNet pass."""

    method = "diffsegmenter"
    settings_class = DiffSegmenterSettings

    def __init__(self, model: DiffusionModel, captioner, settings=None, timer=None) -> None:
        """``model``: the diffusion model; ``captioner``: a BLIP ``engine.blip.Captioner``."""
        super().__init__(model, settings, timer)
        self.captioner = captioner

    @classmethod
    def load(
        cls,
        model: str = "sd15",
        *,
        device: str = "auto",
        dtype: str = "auto",
        settings: DiffSegmenterSettings | None = None,
        caption_model: str | None = None,
    ) -> DiffSegmenter:
        """Resolve (download if needed) and load the diffusion ``model`` and the BLIP ``caption_model``
        (default ``blip``; ``tiny-blip`` with ``tiny-random``)."""
        from faseg_cli.engine.blip import Captioner
        from faseg_cli.models.registry import BLIP, SD15, TINY_BLIP, TINY_RANDOM
        from faseg_cli.models.weights import resolve_model

        torch_device, torch_dtype = cls.select_devices(device, dtype)
        path = resolve_model(model, SD15)
        caption_model = caption_model or (TINY_BLIP if model == TINY_RANDOM.name else BLIP).name
        captioner = Captioner.load(caption_model, torch_device, torch_dtype)
        cls.announce(f"{model} (DiffSegmenter, captions by {caption_model})", torch_device, torch_dtype)
        return cls(DiffusionModel.load(path, torch_device, torch_dtype), captioner, settings)

    def attention_arrays(self, result: Segmentation) -> dict:
        """``attention.npz``: ``cross_{r}`` (1,K,r,r), ``self_{L}`` (K,L*L,L*L), ``fused``/``refined`` (1,K,L,L),
        ``scores`` (K,H,W), ``labels``, ``classes``, ``prompts`` (each class's prompt) and ``settings`` (JSON)."""
        return attention_npz(result, self.settings, prompts=result.class_prompts)

    def _segment(self, pictures, classes, captions, keep_maps) -> list[Segmentation]:
        """Each image on its own (its own noise and class passes); captions do not apply."""
        return [self._run(picture, names, keep_maps) for picture, names in zip(pictures, classes)]

    @torch.inference_mode()
    def _run(self, picture, names: list[str], keep_maps: bool) -> Segmentation:
        s, m, stage = self.settings, self.model, self._stage
        height, width = picture.height, picture.width
        if not names:
            return Segmentation.empty(height, width)
        with stage("blip"):
            prefixes = [blip_prefix(s.prefix, s.prompt_name(name)) for name in names]
            texts = self.captioner.continue_text(picture, prefixes, s.max_length)
        with stage("preprocess"):
            prompts = [
                class_prompt(m.tokenizer, s.prefix, s.prompt_name(n), continuation(p, t), s.token_weight, s.ing_offset)
                for n, p, t in zip(names, prefixes, texts)
            ]
            pixels = stretched_pixels(picture, s.resolution)
        with stage("vae"):
            noisy = m.noisy_latent(pixels, s.seed, s.timestep)
        with stage("text"):
            empty = m.encode_text(torch.tensor([assemble(m.tokenizer, [])[0]]))[0]
            ids = torch.tensor([p.ids for p in prompts])
            weights = torch.tensor([p.weights for p in prompts])
            text = weighted_embeddings(m.encode_text(ids).float(), empty.float(), weights).to(m.dtype)
        cross, self_maps = self._passes(noisy, text, token_weights(prompts, ids.shape[1]))
        with stage("maths"):
            _, fused = fuse(cross, s.level_weights(), s.latent_size)
            refined = refine(self_maps, fused)
            scores = scores_at(refined, height, width)
            labels = labels_from_scores(scores, s.threshold).numpy().astype(np.uint8)
        maps = None
        if keep_maps:
            cross = {r: c.unsqueeze(0) for r, c in cross.items()}
            maps = AttentionMaps(cross, {s.latent_size: self_maps}, fused[None], refined[None], "S_64 x fused", False)
        texts = [p.text for p in prompts]
        return Segmentation(list(names), labels, scores.numpy(), " | ".join(texts), maps, class_prompts=texts)

    def _passes(self, noisy: torch.Tensor, text: torch.Tensor, weights: torch.Tensor):
        """The recorded UNet passes of all classes, ``classes_per_pass`` at a time: ``({r: (K, r, r)}, (K, n, n))``."""
        s, m = self.settings, self.model
        size = s.latent_size
        per_pass = s.classes_per_pass or max(1, MEMORY_BUDGET // (3 * 4 * size**4))
        plan = RecordingPlan(self_at=(size,), cross_at=tuple(s.level_weights()))
        cross, self_maps = [], []
        for start in range(0, text.shape[0], per_pass):
            part = slice(start, start + per_pass)
            count = text[part].shape[0]
            with self._stage("unet"):
                m.recorder.start(plan, token_weights=weights[part])
                try:
                    m.unet_pass(noisy.expand(count, -1, -1, -1), s.timestep, text[part])
                finally:
                    recorded = m.recorder.stop().require(plan, "DiffSegmenter needs an SD 1.5-shaped UNet")
            cross.append({r: c[:, 0].float().cpu() for r, c in recorded.cross.items()})
            self_maps.append(recorded.self_[size].float().cpu())
        return {r: torch.cat([c[r] for c in cross]) for r in plan.cross_at}, torch.cat(self_maps)
