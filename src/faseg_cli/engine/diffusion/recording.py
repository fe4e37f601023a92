"""Record the attention of one UNet pass as a method asks for it (SPEC §2.5, §6.1, §6.2).

One processor per attention layer, knowing the layer's name. Idle, it is plain scaled
dot-product attention. While a recorder is active it keeps, per kind (``self`` or
``cross``) and resolution, the running sum of the chosen heads' maps and how many
heads were added, never a per-layer map. A ``RecordingPlan`` says what to keep:

- which layers: by resolution (``self_at`` / ``cross_at``) and optionally by name;
- which heads: all averaged (default), a subset per layer averaged, or kept apart
  (mean over layers, one map per head);
- probabilities ``softmax(QK^T / sqrt d)`` (default) or the scaled scores before softmax.

Self-attention is computed one head at a time in one reused fp32 buffer (softmax in
place), which also gives the layer's output, so recording costs one extra sum. Cross
attention is recorded against the UNet's own context (DiffSegmenter, iSeg) or against
other keys (FA-Seg's class prompts, given to ``start``); either way the token axis can
be reduced at once by a weight matrix (the mean over each class's tokens), and the
layer's output always uses the UNet's own context: recording never changes the UNet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from faseg_cli.errors import WeightsError

ALL = None
"""Every resolution (or layer, or head): the default of each choice of a ``RecordingPlan``."""


@dataclass(frozen=True)
class RecordingPlan:
    """What one recorded pass keeps. Resolutions are the square side of the layer's token grid (64 at 512 px)."""

    self_at: tuple[int, ...] | None = ALL
    """Resolutions whose self-attention is kept; ``()`` none, None every one."""
    cross_at: tuple[int, ...] | None = ALL
    """Resolutions whose cross-attention is kept; ``()`` none, None every one."""
    layers: Callable[[str], bool] | None = ALL
    """Keep only layers whose name (as in ``unet.attn_processors``, without ``.processor``) passes this test."""
    heads: Mapping[str, tuple[int, ...]] | None = ALL
    """Per layer name, the head indices to average (layers not named: all heads); None: all heads everywhere."""
    keep_heads: bool = False
    """Keep one map per head (averaged over layers) instead of the mean over heads."""
    scores: bool = False
    """Keep the scaled scores ``QK^T / sqrt d`` before softmax instead of the probabilities."""

    def wants(self, kind: str, resolution: int, layer: str) -> bool:
        chosen = self.self_at if kind == "self" else self.cross_at
        if chosen is not ALL and resolution not in chosen:
            return False
        return self.layers is ALL or self.layers(layer)

    def head_index(self, layer: str, heads: int) -> list[int] | None:
        """The heads of ``layer`` to keep, or None for all of them."""
        if self.heads is ALL or layer not in self.heads:
            return None
        chosen = list(self.heads[layer])
        if any(not 0 <= h < heads for h in chosen):
            raise ValueError(f"{layer} has {heads} heads; asked for {chosen}")
        return chosen


@dataclass
class RecordedAttention:
    """Layer-averaged maps of one pass, per square resolution r.

    ``cross[r]`` is ``(B, C, r, r)``: C columns (classes, or tokens when not reduced);
    ``self_[r]`` is ``(B, r*r, r*r)`` with rows = queries. With ``keep_heads`` a head
    axis follows B: ``(B, h, C, r, r)`` and ``(B, h, r*r, r*r)``.
    """

    cross: dict[int, torch.Tensor]
    self_: dict[int, torch.Tensor]

    def require(self, plan: RecordingPlan, needs: str) -> RecordedAttention:
        """Itself, or ``WeightsError`` (ending with ``needs``, what the method needs) when a resolution ``plan``
        names was not recorded: the model's UNet has no attention layer there."""
        missing = [f"cross-attention at {r}" for r in plan.cross_at or () if r not in self.cross]
        missing += [f"self-attention at {r}" for r in plan.self_at or () if r not in self.self_]
        if missing:
            raise WeightsError(
                f"the model has no {' or '.join(missing)} (it has cross {sorted(self.cross)}, self "
                f"{sorted(self.self_)}): {needs}"
            )
        return self


class AttentionRecorder:
    """Accumulates attention maps while active; see the module docstring."""

    def __init__(self) -> None:
        self.active = False
        self.plan = RecordingPlan()
        self._keys: torch.Tensor | None = None
        self._token_weights: torch.Tensor | None = None
        self._segment = 0
        self._sums: dict[tuple[str, int], torch.Tensor] = {}
        self._heads: dict[tuple[str, int], int] = {}

    def start(
        self,
        plan: RecordingPlan | None = None,
        token_weights: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
        segment: int | None = None,
    ) -> None:
        """Begin recording what ``plan`` asks for (default: everything, all heads averaged).

        ``token_weights`` ``(m, T, C)`` reduces the T key tokens of cross-attention to C
        columns; the UNet batch is m groups of consecutive rows, each group with its own
        weights (m = 1: one for all). Without it every token is kept. ``keys`` ``(m, T, D)``
        are text embeddings to attend to instead of the UNet's own context (FA-Seg's class
        prompts); softmax then runs over each ``segment`` tokens (one encoded prompt) on its
        own. Without ``keys``, the UNet's context is used.
        """
        self.plan = plan or RecordingPlan()
        self._keys = keys
        self._token_weights = None if token_weights is None else token_weights.to(dtype=torch.float32)
        self._segment = segment or 0
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
                cross[r] = mean.transpose(-1, -2).unflatten(-1, (r, r))
            else:
                self_[r] = mean
        self._sums.clear()
        self._keys = self._token_weights = None
        return RecordedAttention(dict(sorted(cross.items())), dict(sorted(self_.items())))

    def wants(self, kind: str, n: int, layer: str) -> bool:
        return self.active and self.plan.wants(kind, int(round(n**0.5)), layer)

    def _add(self, kind: str, n: int, summed: torch.Tensor, heads: int) -> None:
        key = (kind, n)
        if key in self._sums:
            self._sums[key] += summed
            self._heads[key] += heads
        else:
            self._sums[key] = summed
            self._heads[key] = heads

    def _reduce(self, maps: torch.Tensor, chosen: list[int] | None) -> tuple[torch.Tensor, int]:
        """Per-head maps ``(b, h, ...)`` -> what the plan keeps: the sum over the chosen heads, or each head."""
        if chosen is not None:
            maps = maps[:, chosen]
        heads = maps.shape[1]
        return (maps, 1) if self.plan.keep_heads else (maps.sum(1), heads)

    def self_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, layer: str = ""
    ) -> torch.Tensor:
        """Attention output of ``(b, h, n, d)`` heads, recording the chosen heads' maps.

        Memory stays at two ``(b, n, n)`` fp32 maps (the probabilities of one head and
        the sum) whatever the number of heads; in fp32 no large tensor is allocated per
        head (in fp16/bf16 the scores and the probabilities for ``PV`` are).
        """
        b, h, n, d = q.shape
        chosen = self.plan.head_index(layer, h)
        wanted = set(range(h) if chosen is None else chosen)
        q = q * scale
        out = q.new_empty(h, b, n, d)
        probs = torch.empty(b, n, n, device=q.device, dtype=torch.float32)
        total = None
        kept = []
        for i in range(h):
            exact = q.dtype == torch.float32
            scores = torch.matmul(q[:, i], k[:, i].transpose(-1, -2), out=probs if exact else None)
            raw = scores.float().clone() if self.plan.scores and i in wanted else None
            torch.softmax(scores, -1, dtype=torch.float32, out=probs)
            if i in wanted:
                value = raw if raw is not None else probs
                if self.plan.keep_heads:
                    kept.append(value.clone() if raw is None else value)
                else:
                    total = value.clone() if total is None else total.add_(value)
            torch.matmul(probs if exact else probs.to(v.dtype), v[:, i], out=out[i])
        if self.plan.keep_heads:
            self._add("self", n, torch.stack(kept, 1), 1)
        elif total is not None:
            self._add("self", n, total, len(wanted))
        return out.transpose(0, 1)

    def cross_attention(self, attn, q: torch.Tensor, k: torch.Tensor, layer: str = "") -> None:
        """Record the cross-attention of queries ``(b, h, n, d)``: against keys ``k`` ``(b, h, T, d)`` (the
        UNet's context), or against the keys given to ``start``."""
        b, h, n, d = q.shape
        if self._keys is not None:
            embeds = attn.norm_encoder_hidden_states(self._keys) if attn.norm_cross else self._keys
            m = embeds.shape[0]
            keys = attn.to_k(embeds).view(m, 1, -1, h, d).transpose(2, 3)
            scores = torch.matmul(q.view(m, b // m, h, n, d) * attn.scale, keys.transpose(-1, -2)).float()
            segment = self._segment or scores.shape[-1]
            if not self.plan.scores:
                scores = scores.unflatten(-1, (-1, segment)).softmax(-1).flatten(-2)
            maps = scores.flatten(0, 1)
        else:
            maps = torch.matmul(q * attn.scale, k.transpose(-1, -2)).float()
            if not self.plan.scores:
                maps = maps.softmax(-1)
        maps, heads = self._reduce(maps, self.plan.head_index(layer, h))
        if self._token_weights is not None:
            weights = self._token_weights.to(maps.device)
            m = weights.shape[0]
            grouped = maps.view(m, b // m, *maps.shape[1:])
            extra = grouped.dim() - 4
            weights = weights.view(m, 1, *([1] * extra), *weights.shape[1:])
            maps = torch.matmul(grouped, weights).flatten(0, 1)
        self._add("cross", n, maps, heads)


class RecordingAttnProcessor:
    """A diffusers attention processor for one named layer that feeds an ``AttentionRecorder``."""

    def __init__(self, recorder: AttentionRecorder, layer: str = "") -> None:
        self.recorder = recorder
        self.layer = layer

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or attn.spatial_norm is not None or attn.group_norm is not None:
            raise NotImplementedError("attention masks and spatial/group norms are not used by SD UNets")
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
        recorder, kind = self.recorder, "cross" if is_cross else "self"
        if not is_cross and recorder.wants(kind, n, self.layer):
            out = recorder.self_attention(q, k, v, attn.scale, self.layer)
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
            if is_cross and recorder.wants(kind, n, self.layer):
                recorder.cross_attention(attn, q, k, self.layer)
        out = attn.to_out[1](attn.to_out[0](out.transpose(1, 2).reshape(b, n, -1)))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def install(unet, recorder: AttentionRecorder) -> None:
    """Give every attention layer of ``unet`` a recording processor that knows the layer's name."""
    unet.set_attn_processor(
        {name: RecordingAttnProcessor(recorder, name.removesuffix(".processor")) for name in unet.attn_processors}
    )
