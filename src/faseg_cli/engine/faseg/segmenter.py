"""FA-Seg: load the diffusion model once, segment many images (SPEC §2).

``Segmenter`` is the Python API and the single code path behind every command:
``segment``, ``attention`` and ``eval`` all call ``segment_batch``; ``method=`` loads
another method of ``engine.methods`` instead.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from faseg_cli.engine.base import AttentionMaps, Segmentation, SegmenterBase, attention_npz
from faseg_cli.engine.diffusion.model import DiffusionModel
from faseg_cli.engine.diffusion.schedule import ddim_step, euler_step
from faseg_cli.engine.diffusion.tokens import tokenize_prompts
from faseg_cli.engine.faseg.prompts import build_class_prompts, text_prompt
from faseg_cli.engine.faseg.refine import fuse_cross, hard_refine, merge_flipped
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.engine.scores import labels_from_scores, minmax
from faseg_cli.errors import WeightsError
from faseg_cli.files.images import model_input, resize_labels
from faseg_cli.models.device import give_back_freed_memory


class Segmenter(SegmenterBase):
    """Segments images by class names: per image, a DDIM inversion pass and a recorded UNet pass (by default)."""

    method = "fa-seg"
    settings_class = FasegSettings

    @classmethod
    def load(
        cls,
        model: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        settings: FasegSettings | None = None,
        method: str = "fa-seg",
    ) -> Segmenter:
        """Resolve (download if needed) and load ``model``: a registered name, hub id or local directory.

        Another ``method`` (a name of ``engine.methods.METHODS``, e.g. ``"naclip"``) loads that method's
        segmenter and default model instead, with the same ``segment_batch`` and ``Segmentation`` results.
        """
        from faseg_cli.engine.methods import check_model, get, load_method

        if method != cls.method:
            return load_method(method, model, device=device, dtype=dtype, settings=settings)
        from faseg_cli.models.registry import DIFFUSION
        from faseg_cli.models.weights import resolve_model

        model = model or get(cls.method).default_model
        check_model(cls.method, model)
        torch_device, torch_dtype = cls.select_devices(device, dtype)
        path = resolve_model(model, DIFFUSION)
        cls.announce(model, torch_device, torch_dtype)
        return cls(DiffusionModel.load(path, torch_device, torch_dtype), settings)

    def check_classes(self, classes: list[str]) -> list[str]:
        """Checked names that also fit the text encoder's prompt (no name longer than it)."""
        checked = super().check_classes(classes)
        build_class_prompts(self.model.tokenizer, checked)
        return checked

    def attention_arrays(self, result: Segmentation) -> dict:
        """``attention.npz``: ``cross_{r}`` (G,K,r,r), ``self_{r}`` (G,r*r,r*r), ``fused``/``refined`` (G,K,L,L),
        ``scores`` (K,R,R), ``labels`` (H,W), ``classes`` (K,) and ``settings`` (JSON text)."""
        return attention_npz(result, self.settings)

    def _segment(self, pictures, classes, captions, keep_maps) -> list[Segmentation]:
        """The dual prompt per image; images without classes get an all-background mask without the model."""
        captions = list(captions) if captions is not None else [None] * len(pictures)
        prompts = [text_prompt(c, cap) for c, cap in zip(classes, captions)]
        results: list[Segmentation | None] = [None] * len(pictures)
        todo = [i for i, c in enumerate(classes) if c]
        if todo:
            for i, seg in zip(
                todo,
                self._run(
                    [pictures[i] for i in todo], [classes[i] for i in todo], [prompts[i] for i in todo], keep_maps
                ),
            ):
                results[i] = seg
        size = self.settings.resolution
        for i, pic in enumerate(pictures):
            if results[i] is None:
                labels = np.zeros((pic.height, pic.width), dtype=np.uint8)
                results[i] = Segmentation([], labels, np.zeros((0, size, size), np.float32), prompts[i])
        return results

    @torch.inference_mode()
    def _run(self, pictures, classes, prompts, keep_maps) -> list[Segmentation]:
        """Segment the images, all at once on a GPU, one at a time on the CPU.

        On the CPU batching gains nothing and would make a mask depend on the other
        images of its batch (the convolution and matmul kernels are chosen by batch size).
        """
        group = 1 if self.model.device.type == "cpu" else len(pictures)
        results = []
        for start in range(0, len(pictures), group):
            part = slice(start, start + group)
            results += self._run_group(pictures[part], classes[part], prompts[part], keep_maps)
        return results

    def _run_group(self, pictures, classes, prompts, keep_maps) -> list[Segmentation]:
        s, m, stage = self.settings, self.model, self._stage
        copies = 2 if s.flip else 1
        with stage("preprocess"):
            pixels = torch.from_numpy(np.stack([model_input(p, s.resolution) for p in pictures]))
            if s.flip:
                pixels = torch.stack([pixels, pixels.flip(-1)], 1).flatten(0, 1)
            class_prompts = [build_class_prompts(m.tokenizer, c) for c in classes]
            num_prompts = max(cp.ids.shape[0] for cp in class_prompts)
            ids = torch.cat([cp.ids[torch.arange(num_prompts).clamp(max=cp.ids.shape[0] - 1)] for cp in class_prompts])
            weights = torch.stack([cp.token_weights(num_prompts, max(map(len, classes))) for cp in class_prompts])
        with stage("vae"):
            latents = m.encode_images(pixels)
            give_back_freed_memory()  # the encoder's activations, before the UNet passes
        with stage("text"):
            text = m.encode_text(tokenize_prompts(m.tokenizer, prompts)).repeat_interleave(copies, 0)
            class_embeds = m.encode_text(ids).reshape(len(pictures), num_prompts * m.prompt_length, -1)
        with stage("inversion"):
            latents = self._invert(latents, text)
            give_back_freed_memory()  # the first pass's, before the recorded pass
        with stage("unet"):
            m.recorder.start(token_weights=weights, keys=class_embeds, segment=m.prompt_length)
            try:
                m.unet_pass(latents, s.record_timestep, text)
            finally:
                recorded = m.recorder.stop()
        self._check_resolutions(recorded.cross, s.level_weights(s.cross_weights), "cross")
        if s.refine:
            self._check_resolutions(recorded.self_, s.level_weights(s.self_weights), "self")
        results = []
        for i, (picture, names) in enumerate(zip(pictures, classes)):
            rows = slice(i * copies, (i + 1) * copies)
            cross = {r: c[rows, : len(names)].float().contiguous() for r, c in recorded.cross.items()}
            self_maps = {r: a[rows].float().contiguous() for r, a in recorded.self_.items()}
            fused, refined, scores, labels = maps_to_labels(cross, self_maps, s, picture.size, stage)
            maps = AttentionMaps(cross, self_maps, fused, refined) if keep_maps else None
            results.append(Segmentation(names, labels, scores.cpu().numpy(), prompts[i], maps))
        return results

    def _invert(self, latents: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The latent the recorded pass sees, after the settings' inversion (SPEC §2.5)."""
        s, m = self.settings, self.model
        t = s.record_timestep
        if s.inversion == "ddim":
            return ddim_step(latents, m.unet_pass(latents, t, text), m.alphas, t)
        if s.inversion == "euler":
            return euler_step(latents, m.unet_pass(latents, 0, text), t)
        return latents

    @staticmethod
    def _check_resolutions(recorded: dict[int, torch.Tensor], weights: dict[int, float], kind: str) -> None:
        missing = [r for r, w in weights.items() if w and r not in recorded]
        if missing:
            raise WeightsError(
                f"the model records {kind}-attention at {sorted(recorded)} but the weights need {sorted(weights)}"
            )


def maps_to_labels(cross, self_maps, settings: FasegSettings, size: tuple[int, int], stage=None):
    """SPEC §2 steps 6-9 for one image: ``(fused, refined, scores, labels)`` from its recorded maps.

    ``cross`` and ``self_maps`` are one image's maps (``AttentionMaps`` layout); ``size`` is
    the image's (width, height). The engine and ``dump.recompute_labels`` both
    call this on the same float32 arrays, so a dump reproduces its mask exactly.
    """
    stage = stage or (lambda name: nullcontext())
    with stage("hard"):
        fused = fuse_cross(cross, settings.level_weights(settings.cross_weights), settings.latent_size)
        if settings.refine:
            refined = hard_refine(self_maps, fused, settings.level_weights(settings.self_weights), settings.tau)
        else:
            refined = minmax(fused)
    with stage("ttf_labels"):
        scores = merge_flipped(refined.unsqueeze(0), settings.resolution)[0]
        labels = resize_labels(labels_from_scores(scores, settings.threshold).cpu().numpy(), size)
    return fused, refined, scores, labels
