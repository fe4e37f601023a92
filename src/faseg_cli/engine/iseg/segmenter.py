"""iSeg: load an SD 2.1-base-shaped model once, segment many images (SPEC §6.2).

Per image: bilinear resize to 512 x 512, VAE posterior mean, noise from a CPU generator seeded 1101 added at
t = 100; one prompt with all the classes, its class tokens' text-encoder outputs times gamma; one UNet pass
recording only what iSeg reads (cross-attention of 8 named layers at 16 and 32, heads averaged or the VOC
subset; the self-attention of one layer at 64, heads 1 and 2); then ``maths``.
"""

from __future__ import annotations

import numpy as np
import torch

from faseg_cli.engine.base import AttentionMaps, Segmentation, SegmenterBase, attention_npz
from faseg_cli.engine.diffusion.model import DiffusionModel, stretched_pixels
from faseg_cli.engine.diffusion.recording import RecordingPlan
from faseg_cli.engine.iseg import maths
from faseg_cli.engine.iseg.prompts import ClassName, build_prompt, published_names
from faseg_cli.engine.iseg.settings import IsegSettings
from faseg_cli.engine.scores import labels_from_scores

CROSS_LAYERS = {
    32: ("down_blocks.1.attentions.1", "up_blocks.2.attentions.0", "up_blocks.2.attentions.1"),
    16: (
        "down_blocks.2.attentions.0",
        "down_blocks.2.attentions.1",
        "up_blocks.1.attentions.0",
        "up_blocks.1.attentions.1",
        "up_blocks.1.attentions.2",
    ),
}
"""The transformer blocks whose cross-attention iSeg reads, per resolution, in forward order (the order the VOC
head indices count in)."""
SELF_LAYER = "up_blocks.3.attentions.1"
SELF_HEADS = (1, 2)
BLOCK = ".transformer_blocks.0."


def recording_plan(unet, heads: dict[int, tuple[int, ...]] | None) -> RecordingPlan:
    """What iSeg records of ``unet``: its cross layers (``heads``: per resolution, indices counted across that
    resolution's layers; None: all) and its self layer's heads 1 and 2."""
    names = {SELF_LAYER + BLOCK + "attn1": SELF_HEADS}
    for r, layers in CROSS_LAYERS.items():
        counts = [unet.get_submodule(layer + BLOCK + "attn2").heads for layer in layers]
        chosen = heads.get(r) if heads else None
        for i, (layer, count) in enumerate(zip(layers, counts)):
            first = sum(counts[:i])
            own = tuple(h - first for h in chosen if first <= h < first + count) if chosen is not None else None
            names[layer + BLOCK + "attn2"] = own
    selected = {name: own for name, own in names.items() if own is not None}
    return RecordingPlan(
        self_at=(maths.LATENT,), cross_at=tuple(CROSS_LAYERS), layers=names.__contains__, heads=selected
    )


class IsegSegmenter(SegmenterBase):
    """Segments images by class names with iSeg: one prompt and one recorded UNet pass per image."""

    method = "iseg"
    settings_class = IsegSettings

    def __init__(self, model: DiffusionModel, settings: IsegSettings | None = None, timer=None) -> None:
        super().__init__(model, settings, timer)
        self.plan = recording_plan(model.unet, self.settings.heads)

    @classmethod
    def load(
        cls, model: str = "sd21-base", *, device: str = "auto", dtype: str = "auto", settings=None
    ) -> IsegSegmenter:
        """Resolve (download if needed) and load ``model``: a registered name, hub id or local directory."""
        from faseg_cli.models.registry import SD21_BASE
        from faseg_cli.models.weights import resolve_model

        torch_device, torch_dtype = cls.select_devices(device, dtype)
        path = resolve_model(model, SD21_BASE)
        cls.announce(f"{model} (iSeg)", torch_device, torch_dtype)
        return cls(DiffusionModel.load(path, torch_device, torch_dtype), settings)

    def attention_arrays(self, result: Segmentation) -> dict:
        """``attention.npz``: ``cross_16``/``cross_32`` (1,K,r,r) class-token head means, ``fused`` (1,K,64,64)
        before and ``clustered`` after the DFC-KL smoothing, ``refined`` (1,K,64,64) after the N iterations,
        ``scores`` (K,H,W), ``labels``, ``classes``, ``prompt`` and ``settings`` (JSON)."""
        clustered = result.maps.steps["clustered (DFC-KL)"]
        return attention_npz(result, self.settings, {"clustered": clustered}, prompt=result.prompt)

    def _segment(self, pictures, classes, captions, keep_maps) -> list[Segmentation]:
        """Each image on its own (its own noise); captions do not apply."""
        return [self._run(picture, names, keep_maps) for picture, names in zip(pictures, classes)]

    def class_names(self, names: list[str]) -> list[ClassName]:
        """The prompt's names: the published ones in an eval configuration, else every token of each name."""
        if self.settings.names:
            return published_names(self.settings.names, names)
        return [ClassName(name) for name in names]

    @torch.inference_mode()
    def _run(self, picture, names: list[str], keep_maps: bool) -> Segmentation:
        s, m, stage = self.settings, self.model, self._stage
        height, width = picture.height, picture.width
        if not names:
            return Segmentation.empty(height, width)
        with stage("preprocess"):
            prompt = build_prompt(m.tokenizer, self.class_names(names), s.context)
            pixels = stretched_pixels(picture, s.resolution)
        with stage("vae"):
            noisy = m.noisy_latent(pixels, s.seed, s.timestep)
        with stage("text"):
            text = maths.emphasise(m.encode_text(torch.tensor([prompt.ids])), prompt.emphasised, s.gamma)
        with stage("unet"):
            m.recorder.start(self.plan)
            try:
                m.unet_pass(noisy, s.timestep, text)
            finally:
                recorded = m.recorder.stop().require(self.plan, "iSeg needs an SD 2.1-base-shaped UNet")
        with stage("maths"):
            cross = {r: recorded.cross[r][0].float().cpu() for r in (16, 32)}
            fused = maths.fuse_cross(cross)
            clustered = fused
            if s.cluster:
                clusters, count = maths.dfc_kl(fused)
                clustered = maths.cluster_means(fused, clusters, count)
            columns = maths.normalise_columns(maths.class_columns(clustered, prompt.tokens))
            transition = maths.entropy_reduced(recorded.self_[64][0].float().cpu(), s.ers_strength)
            del recorded
            refined = maths.refine(transition, columns, s.iterations)
            del transition
            scores = maths.rescale(maths.image_scores(maths.square_scores(refined), height, width))
            labels = labels_from_scores(scores, s.threshold)
        maps = None
        if keep_maps:
            side = maths.LATENT
            clustered_maps = maths.class_columns(clustered, prompt.tokens).T.reshape(1, -1, side, side)
            maps = AttentionMaps(
                {r: maths.class_columns(c, prompt.tokens).T.reshape(1, -1, r, r) for r, c in cross.items()},
                {},
                maths.class_columns(fused, prompt.tokens).T.reshape(1, -1, side, side),
                refined.T.reshape(1, -1, side, side),
                refinement=f"{s.iterations} ERS iterations",
                refined_scaled=False,
                steps={"clustered (DFC-KL)": clustered_maps},
            )
        return Segmentation(list(names), labels.numpy().astype(np.uint8), scores.numpy(), prompt.text, maps)
