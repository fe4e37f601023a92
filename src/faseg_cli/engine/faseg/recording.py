"""Record attention probabilities during one UNet pass (SPEC §2.5).

One processor serves every attention layer of the UNet. Idle, it is plain scaled
dot-product attention. While a recorder is active it keeps, per resolution, the
running sum of head-summed probabilities and the number of heads added, never the
per-head or per-layer maps:

- self-attention: ``softmax(QK^T / sqrt d)`` over the image's own tokens, one head at
  a time in one reused fp32 buffer (softmax in place), and reused for the layer's
  output, so recording costs one extra sum, not a second attention;
- cross-attention: the image queries against the keys of the *class* prompt(s),
  softmax over each class prompt's tokens, reduced at once to one column per class.
  The layer's output still uses the text prompt: recording never changes the UNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class RecordedAttention:
    """Head- and layer-averaged maps of one pass, per square resolution r.

    ``cross[r]`` is ``(B, K, r, r)`` (one map per class); ``self_[r]`` is ``(B, r*r, r*r)``
    with rows = queries. B counts images with their flipped copies.
    """

    cross: dict[int, torch.Tensor]
    self_: dict[int, torch.Tensor]


class AttentionRecorder:
    """Accumulates attention maps while active; see the module docstring."""

    def __init__(self) -> None:
        self.active = False
        self._class_embeds: torch.Tensor | None = None
        self._token_weights: torch.Tensor | None = None
        self._prompt_length = 0
        self._sums: dict[tuple[str, int], torch.Tensor] = {}
        self._heads: dict[tuple[str, int], int] = {}

    def start(self, class_embeds: torch.Tensor, token_weights: torch.Tensor, prompt_length: int) -> None:
        """Begin recording.

        ``class_embeds`` is ``(m, P * L, D)``: the P encoded class prompts of each of m
        images; ``token_weights`` is ``(m, P * L, K)`` (see ``ClassPrompts.token_weights``).
        The UNet batch holds each image's copies (original, flipped) next to each other.
        """
        self._class_embeds = class_embeds
        self._token_weights = token_weights.to(device=class_embeds.device, dtype=torch.float32)
        self._prompt_length = prompt_length
        self._sums.clear()
        self._heads.clear()
        self.active = True

    def stop(self) -> RecordedAttention:
        """End recording and return the means per resolution."""
        self.active = False
        cross, self_ = {}, {}
        for (kind, n), total in self._sums.items():
            mean = total / self._heads[(kind, n)]
            r = int(round(n**0.5))
            if kind == "cross":
                cross[r] = mean.transpose(1, 2).reshape(mean.shape[0], -1, r, r)
            else:
                self_[r] = mean
        self._sums.clear()
        self._class_embeds = self._token_weights = None
        return RecordedAttention(dict(sorted(cross.items())), dict(sorted(self_.items())))

    def _add(self, kind: str, n: int, summed: torch.Tensor, heads: int) -> None:
        key = (kind, n)
        if key in self._sums:
            self._sums[key] += summed
            self._heads[key] += heads
        else:
            self._sums[key] = summed
            self._heads[key] = heads

    def self_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """Attention output of ``(b, h, n, d)`` heads, recording the head-summed probabilities.

        Memory stays at two ``(b, n, n)`` fp32 maps (the probabilities of one head and
        the sum) whatever the number of heads; in fp32 no large tensor is allocated per
        head (in fp16/bf16 the scores and the probabilities for ``PV`` are).
        """
        b, h, n, d = q.shape
        q = q * scale
        out = q.new_empty(h, b, n, d)
        probs = torch.empty(b, n, n, device=q.device, dtype=torch.float32)
        total = None
        for i in range(h):
            exact = q.dtype == torch.float32
            scores = torch.matmul(q[:, i], k[:, i].transpose(-1, -2), out=probs if exact else None)
            torch.softmax(scores, -1, dtype=torch.float32, out=probs)
            total = probs.clone() if total is None else total.add_(probs)
            torch.matmul(probs if exact else probs.to(v.dtype), v[:, i], out=out[i])
        self._add("self", n, total, h)
        return out.transpose(0, 1)

    def cross_attention(self, attn, q: torch.Tensor) -> None:
        """Record the class-prompt cross-attention of queries ``(b, h, n, d)``, one map per class."""
        embeds = self._class_embeds
        if attn.norm_cross:
            embeds = attn.norm_encoder_hidden_states(embeds)
        b, h, n, d = q.shape
        m = embeds.shape[0]
        keys = attn.to_k(embeds).view(m, 1, -1, h, d).transpose(2, 3)
        scores = torch.matmul(q.view(m, b // m, h, n, d) * attn.scale, keys.transpose(-1, -2))
        probs = scores.float().unflatten(-1, (-1, self._prompt_length)).softmax(-1).flatten(-2)
        per_class = torch.matmul(probs.sum(2), self._token_weights.unsqueeze(1))
        self._add("cross", n, per_class.reshape(b, n, -1), h)


class RecordingAttnProcessor:
    """A diffusers attention processor that feeds an ``AttentionRecorder``."""

    def __init__(self, recorder: AttentionRecorder) -> None:
        self.recorder = recorder

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or attn.spatial_norm is not None or attn.group_norm is not None:
            raise NotImplementedError("attention masks and spatial/group norms are not used by SD 1.x UNets")
        b, n, _ = hidden_states.shape
        is_cross = encoder_hidden_states is not None
        context = hidden_states
        if is_cross:
            context = (
                attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
            )
        h = attn.heads
        q, k, v = (
            x.view(b, -1, h, x.shape[-1] // h).transpose(1, 2)
            for x in (attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context))
        )
        if attn.norm_q is not None:
            q, k = attn.norm_q(q), attn.norm_k(k)
        if self.recorder.active and not is_cross:
            out = self.recorder.self_attention(q, k, v, attn.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
            if self.recorder.active:
                self.recorder.cross_attention(attn, q)
        out = attn.to_out[1](attn.to_out[0](out.transpose(1, 2).reshape(b, n, -1)))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor
