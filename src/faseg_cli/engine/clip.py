"""CLIP ViT-B/16 as TagCLIP and NACLIP run it: text embeddings, dense patch features, region classification.

The vision tower is driven layer by layer from the model's own modules
(``embeddings``, ``encoder.layers[i].{layer_norm1,self_attn.*_proj,layer_norm2,mlp}``,
``post_layernorm``, ``visual_projection``) so that TagCLIP can read the attention
probabilities, change the last layer and mask the class token's attention; only the
attention product itself is written out here. Always fp32 (SPEC §3.2).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faseg_cli.engine.methods import model_uses
from faseg_cli.errors import WeightsError
from faseg_cli.files.images import to_rgb
from faseg_cli.models.quiet import quiet_libraries
from faseg_cli.models.registry import CLIP, CLIP_MODEL
from faseg_cli.models.weights import check_kind, resolve_model

log = logging.getLogger("faseg")

AttentionObserver = Callable[[int, torch.Tensor], None]
"""Called with (layer index, head-mean attention probabilities (T, T)) for every layer."""


def interpolate_positions(weight: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Position embeddings (1 + g*g, D) of a g x g grid resampled bilinearly to ``grid`` (h, w).

    The class position is kept; the native grid is returned unchanged.
    """
    side = math.isqrt(weight.shape[0] - 1)
    if grid == (side, side):
        return weight
    patches = weight[1:].T.reshape(1, -1, side, side)
    patches = F.interpolate(patches, size=grid, mode="bilinear", align_corners=False)
    return torch.cat([weight[:1], patches.reshape(weight.shape[1], -1).T])


def _heads(x: torch.Tensor, attn: torch.nn.Module) -> torch.Tensor:
    b, t, _ = x.shape
    return x.view(b, t, attn.num_heads, attn.head_dim).transpose(1, 2)


def attention_probs(
    layer: torch.nn.Module, normed: torch.Tensor, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head attention probabilities (B, H, T, T) and values (B, H, T, d) of one encoder layer."""
    attn = layer.self_attn
    logits = _heads(attn.q_proj(normed), attn) @ _heads(attn.k_proj(normed), attn).transpose(-1, -2) * attn.scale
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1), _heads(attn.v_proj(normed), attn)


def layer_forward(
    layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None, self_only: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pre-norm encoder layer; returns its output and the head-mean attention (B, T, T).

    ``bias`` is added to the attention logits. With ``self_only`` every token attends
    only to itself (TagCLIP's last layer): the attention output is
    ``out_proj(v_proj(LN1 x))``; the returned probabilities are still the unmasked ones.
    """
    normed = layer.layer_norm1(x)
    probs, values = attention_probs(layer, normed, bias)
    if self_only:
        mixed = layer.self_attn.v_proj(normed)
    else:
        mixed = (probs @ values).transpose(1, 2).reshape(x.shape)
    x = x + layer.self_attn.out_proj(mixed)
    x = x + layer.mlp(layer.layer_norm2(x))
    return x, probs.mean(1)


def native_size(width: int, height: int, patch: int, max_side: int) -> tuple[int, int]:
    """TagCLIP's input size: the image size (shrunk to ``max_side`` if larger), rounded up to multiples of ``patch``."""
    scale = min(1.0, max_side / max(width, height))
    return (
        max(patch, math.ceil(round(width * scale) / patch) * patch),
        max(patch, math.ceil(round(height * scale) / patch) * patch),
    )


def model_fingerprint(path: Path) -> str:
    """Identify a model directory's weights (path, weight file names, sizes, times) for caches."""
    digest = hashlib.sha256(str(path.resolve()).encode())
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


class ClipEncoder:
    """A loaded CLIP model with the operations TagCLIP and caption matching need."""

    def __init__(
        self,
        model,
        tokenizer,
        mean: Sequence[float],
        std: Sequence[float],
        device: str | torch.device,
        fingerprint: str,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.fingerprint = fingerprint
        vision = model.config.vision_config
        self.patch = vision.patch_size
        self.image_size = vision.image_size
        self.num_layers = vision.num_hidden_layers

    @classmethod
    def load(cls, model: str = "clip", device: str | torch.device = "cpu", option: str = "--clip-model") -> ClipEncoder:
        """Load a CLIP model by registry name, hub id or local directory (fp32, eval mode); ``option`` is the
        command-line option that named it (for errors)."""
        from transformers import AutoTokenizer, CLIPModel

        check_kind(model, (CLIP_MODEL,), option, model_uses())
        path = resolve_model(model, CLIP, option)
        quiet_libraries()
        try:
            net = CLIPModel.from_pretrained(path, dtype=torch.float32).to(device)
            tokenizer = AutoTokenizer.from_pretrained(path)
            config = json.loads((path / "preprocessor_config.json").read_text("utf-8"))
            mean, std = config["image_mean"], config["image_std"]
        except (OSError, ValueError, KeyError) as exc:
            raise WeightsError(f"cannot load CLIP from {path}: {str(exc).splitlines()[0]}") from exc
        log.info("Loaded CLIP from %s", path)
        return cls(net, tokenizer, mean, std, device, model_fingerprint(path))

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised projected text embeddings (len(texts), E), fp32 on the CPU."""
        limit = self.model.config.text_config.max_position_embeddings
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            ).to(self.device)
            pooled = self.model.text_model(
                input_ids=tokens.input_ids, attention_mask=tokens.attention_mask
            ).pooler_output
            out.append(F.normalize(self.model.text_projection(pooled).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.model.config.projection_dim)

    def pixels(self, image: Image.Image, max_side: int) -> torch.Tensor:
        """The normalised image (1, 3, h, w) at TagCLIP's native size (bicubic resize)."""
        image = to_rgb(image)
        size = native_size(*image.size, self.patch, max_side)
        array = np.asarray(image.resize(size, Image.BICUBIC), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)
        return ((tensor - self.mean) / self.std).to(self.device)

    def _embed(self, pixels: torch.Tensor) -> torch.Tensor:
        vision = self.model.vision_model
        patches = vision.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        grid = (pixels.shape[-2] // self.patch, pixels.shape[-1] // self.patch)
        cls = vision.embeddings.class_embedding.expand(pixels.shape[0], 1, -1)
        positions = interpolate_positions(vision.embeddings.position_embedding.weight, grid)
        return vision.pre_layrnorm(torch.cat([cls, patches], dim=1) + positions)

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        projected = self.model.visual_projection(self.model.vision_model.post_layernorm(hidden))
        return F.normalize(projected, dim=-1)

    @torch.inference_mode()
    def dense_features(self, pixels: torch.Tensor, observe: AttentionObserver) -> torch.Tensor:
        """Normalised projected features (T, E) of every token (class token first) of one image.

        The last layer is self-only; ``observe`` receives every layer's attention.
        """
        x = self._embed(pixels)
        layers = self.model.vision_model.encoder.layers
        for i, layer in enumerate(layers):
            x, probs = layer_forward(layer, x, self_only=i == len(layers) - 1)
            observe(i, probs[0])
        return self._project(x[0])

    @torch.inference_mode()
    def region_features(self, crops: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Normalised class-token features (B, E) of crops (B, 3, S, S) at the model's input size S.

        ``keep`` (B, patches) says which patches the class token may attend to, in
        every layer; patch tokens attend everywhere.
        """
        b, n = keep.shape
        bias = torch.zeros(b, 1, n + 1, n + 1, device=crops.device)
        bias[:, 0, 0, 1:] = torch.where(keep.to(crops.device), 0.0, float("-inf"))
        x = self._embed(crops)
        for layer in self.model.vision_model.encoder.layers:
            x, _ = layer_forward(layer, x, bias)
        return self._project(x[:, 0])


def ensemble(encoder: ClipEncoder, classes: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Template-ensemble embeddings (K, E) of ``classes``, computed now."""
    texts = [template.format(name) for name in classes for template in templates]
    per_prompt = encoder.encode_text(texts).view(len(classes), len(templates), -1)
    return F.normalize(per_prompt.mean(1), dim=-1)
