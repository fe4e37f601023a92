"""Pure tensor maths of FA-Seg (SPEC §2.6-2.8): fusion, HARD and test-time flipping; no model, no I/O.

Shapes: B images (with flipped copies), K classes, r a recorded resolution, L the
latent size (64 at 512 px). Self-attention maps are ``(B, r*r, r*r)`` with rows =
queries; cross and score maps are ``(B, K, side, side)``.

HARD lifts each ``S_r`` to ``L*L x L*L`` (queries bicubic, keys repeated) and uses
``lift(S_r)^tau`` as an affinity. With B the bicubic operator and N the 0/1 repeat
matrix, ``lift(S_r) = B S_r N^T``, so the affinity applied to the class maps V is
``B S_r (N^T B S_r)^(tau-1) N^T V``: a few small products instead of a 4096^2 lift
and matrix power. ``naive_propagate`` keeps the reference formulation for tests and
benchmarks.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from faseg_cli.engine.scores import minmax


def fuse_cross(cross: dict[int, torch.Tensor], weights: dict[int, float], size: int) -> torch.Tensor:
    """Weighted sum of the cross maps, each upsampled (nearest) to ``size`` (SPEC §2.6)."""
    fused = None
    for r, w in weights.items():
        if w:
            term = w * F.interpolate(cross[r].float(), size=(size, size), mode="nearest")
            fused = term if fused is None else fused + term
    return fused


def bicubic_operator(r: int, size: int, device: str = "cpu") -> torch.Tensor:
    """``(size*size, r*r)`` matrix B with ``B @ vec(x) == vec(bicubic(x, size))`` for an r x r map x."""
    basis = torch.eye(r * r, device=device).view(r * r, 1, r, r)
    return F.interpolate(basis, size=(size, size), mode="bicubic", align_corners=False).view(r * r, -1).T.contiguous()


@lru_cache(maxsize=16)
def lift_operators(r: int, size: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N^T B)`` for lifting r x r maps to size x size, built once per (r, size, device)."""
    lift_q = bicubic_operator(r, size, device)
    return lift_q, block_sum(lift_q, r, size)


def block_sum(x: torch.Tensor, r: int, size: int) -> torch.Tensor:
    """``N^T x``: sum ``(..., size*size, C)`` rows over each ``(size/r)^2`` block of the size x size grid."""
    f = size // r
    lead, channels = x.shape[:-2], x.shape[-1]
    return x.reshape(*lead, r, f, r, f, channels).sum((-4, -2)).reshape(*lead, r * r, channels)


def propagate(self_map: torch.Tensor, values: torch.Tensor, size: int, tau: int) -> torch.Tensor:
    """``lift(S)^tau @ V`` without building the lift.

    ``self_map`` is ``(B, r*r, r*r)``, ``values`` ``(B, size*size, C)``.
    """
    r = int(round(self_map.shape[-1] ** 0.5))
    if r == size:
        x = values
        for _ in range(tau):
            x = self_map @ x
        return x
    lift_q, lift_kq = lift_operators(r, size, str(self_map.device))
    x = self_map @ block_sum(values, r, size)
    for _ in range(tau - 1):
        x = self_map @ (lift_kq @ x)
    return lift_q @ x


def naive_lift(self_map: torch.Tensor, size: int) -> torch.Tensor:
    """The reference's explicit ``(B, size^2, size^2)`` lift: bicubic over queries, repeated keys."""
    b, n, _ = self_map.shape
    r = int(round(n**0.5))
    if r == size:
        return self_map
    f = size // r
    lifted = F.interpolate(self_map.view(b, r, r, n).permute(0, 3, 1, 2), size=(size, size), mode="bicubic")
    lifted = lifted.reshape(b, r, r, size, size).repeat_interleave(f, dim=1).repeat_interleave(f, dim=2)
    return lifted.reshape(b, size * size, size, size).permute(0, 2, 3, 1).reshape(b, size * size, size * size)


def naive_propagate(self_map: torch.Tensor, values: torch.Tensor, size: int, tau: int) -> torch.Tensor:
    """``matrix_power(lift(S), tau) @ V`` as the published code computes it (slow; for checks)."""
    return torch.linalg.matrix_power(naive_lift(self_map, size), tau) @ values


def hard_refine(
    self_maps: dict[int, torch.Tensor],
    fused: torch.Tensor,
    weights: dict[int, float],
    tau: int = 2,
    propagate_fn=propagate,
) -> torch.Tensor:
    """HARD (SPEC §2.7): ``sum_r w_r minmax(lift(S_r)^tau F)`` for all classes at once."""
    b, k, size, _ = fused.shape
    values = fused.flatten(2).transpose(1, 2)
    refined = torch.zeros_like(fused)
    for r, w in weights.items():
        if w:
            out = propagate_fn(self_maps[r].float(), values, size, tau)
            refined += w * minmax(out.transpose(1, 2).reshape(b, k, size, size))
    return refined


def merge_flipped(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Test-time flipping (SPEC §2.8): ``(n, G, K, s, s)`` with G = 2 (original, mirrored) or 1.

    Upsamples to ``size`` (bicubic), mirrors the second copy back and averages.
    """
    n, g, k, s, _ = maps.shape
    up = F.interpolate(maps.reshape(n * g, k, s, s), size=(size, size), mode="bicubic", align_corners=False)
    up = up.view(n, g, k, size, size)
    return up[:, 0] if g == 1 else (up[:, 0] + up[:, 1].flip(-1)) / 2
