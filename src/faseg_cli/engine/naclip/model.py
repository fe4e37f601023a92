"""CLIP ViT-B/16 as NACLIP runs it: template-ensemble text queries and dense patch logits.

Loaded through the shared ``engine.clip.ClipEncoder`` (transformers' ``CLIPModel`` weights, the same
``clip`` / ``tiny-clip`` models). The vision tower is driven layer by layer from the
model's own modules; the last block is NACLIP's reduced one (``clip/model.py:118-119``):
neighbourhood attention on its layer norm, ``out_proj``, and nothing else (no residual,
no MLP).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from faseg_cli.engine.clip import ClipEncoder, ensemble
from faseg_cli.engine.naclip.maths import gaussian_bias, interpolate_positions, neighbourhood_attention
from faseg_cli.word_lists import imagenet_templates

WINDOW_BATCH = 8
"""Sliding windows per vision forward (a speed/memory trade-off only)."""


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class NaclipModel:
    """A loaded CLIP with NACLIP's text queries and dense logits."""

    def __init__(self, encoder: ClipEncoder, path, dtype: torch.dtype = torch.float32) -> None:
        self.encoder = encoder
        self.path = path
        self.device = encoder.device
        self.dtype = dtype
        self.patch = encoder.patch
        self._queries: dict[str, torch.Tensor] = {}
        encoder.model.to(dtype)

    @classmethod
    def load(cls, model: str, device: torch.device, dtype: torch.dtype) -> NaclipModel:
        """Load a CLIP model by registry name, hub id or local directory."""
        from faseg_cli.models.registry import CLIP
        from faseg_cli.models.weights import resolve_model

        return cls(ClipEncoder.load(model, device, option="--model"), resolve_model(model, CLIP), dtype)

    def query_features(self, names: Sequence[str]) -> torch.Tensor:
        """``(Q, E)`` fp32 embeddings of ``names``: the 80 ImageNet templates' mean (``naclip.py:28-41``), cached."""
        todo = [n for n in dict.fromkeys(names) if n not in self._queries]
        if todo:
            self._queries.update(zip(todo, ensemble(self.encoder, todo, imagenet_templates())))
        return torch.stack([self._queries[n] for n in names])

    @torch.inference_mode()
    def window_logits(self, pixels: torch.Tensor, queries: torch.Tensor, std: float) -> torch.Tensor:
        """``(B, Q, H, W)`` cosine logits of normalised images ``(B, 3, H, W)`` against ``queries``.

        Patch logits are stretched bilinearly over the whole input (``naclip.py:54-69``):
        pixels beyond the last full patch are covered by the stretch, not by a patch.
        """
        vision = self.encoder.model.vision_model
        grid = (pixels.shape[-2] // self.patch, pixels.shape[-1] // self.patch)
        x = self._embed(pixels.to(self.device, self.dtype), grid)
        *layers, last = vision.encoder.layers
        for layer in layers:
            x = _block(layer, x)
        attn = last.self_attn
        normed = last.layer_norm1(x)
        bias = gaussian_bias(grid, std).to(x.device)
        mixed = neighbourhood_attention(
            _heads(attn.k_proj(normed), attn.num_heads), _heads(attn.v_proj(normed), attn.num_heads), bias
        )
        x = attn.out_proj(_merge(mixed))
        features = self.encoder.model.visual_projection(vision.post_layernorm(x[:, 1:])).float()
        logits = F.normalize(features, dim=-1) @ queries.to(features.device).T
        logits = logits.transpose(1, 2).reshape(pixels.shape[0], -1, *grid)
        return F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear", align_corners=False)

    def _embed(self, pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        embeddings = self.encoder.model.vision_model.embeddings
        patches = embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = embeddings.class_embedding.expand(pixels.shape[0], 1, -1)
        positions = interpolate_positions(embeddings.position_embedding.weight, grid)
        return self.encoder.model.vision_model.pre_layrnorm(torch.cat([cls, patches], dim=1) + positions)


def _block(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One unchanged pre-norm CLIP encoder layer (attention and MLP, both with residuals)."""
    attn = layer.self_attn
    normed = layer.layer_norm1(x)
    q, k, v = (_heads(proj(normed), attn.num_heads) for proj in (attn.q_proj, attn.k_proj, attn.v_proj))
    x = x + attn.out_proj(_merge(F.scaled_dot_product_attention(q, k, v)))
    return x + layer.mlp(layer.layer_norm2(x))
