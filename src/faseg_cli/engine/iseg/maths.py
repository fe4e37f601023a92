"""iSeg's model-free maths (SPEC §6.2), each step a function of plain tensors.

Class-token emphasis, cross-map fusion, DFC-KL cluster smoothing, entropy-reduced self-attention, the iterative
refinement and the scores (both published background rules are thresholds).

Every function takes plain tensors, so tests feed each stage the published code's stored output of the
stage before (tests/iseg/). Shapes: ``T`` prompt tokens, ``K`` classes, ``N = 64 * 64`` latent pixels
(row-major), ``H x W`` the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LATENT = 64
"""Side of the latent grid every map is brought to."""
FUSION = {16: 0.7, 32: 0.3}
"""Weights of the per-token-normalised cross maps per resolution (8 and 64 are recorded by the published code
with weight 0, so faseg does not record them)."""
DFC_GRID = (0, 11, 22, 33, 44, 55)
"""Rows and columns of the 36 seed pixels of the DFC-KL clustering."""
DFC_ITERATIONS = 20
DFC_ZERO = 1e-6
"""What exact zeros of the fused map become inside the clustering (so that their logarithm is finite)."""
KL_EPSILON = 1e-5
"""Added to both distributions, in fp16, before the symmetric KL divergence."""
SCORE_SIZE = 512
"""The published code's square test size: the refined maps are brought to it and min-maxed there first."""
LABEL_EPSILON = 1e-6
"""Added to the span of the second min-max (the published ``cam_to_label``)."""


def emphasise(embedding: torch.Tensor, positions: list[int], gamma: float) -> torch.Tensor:
    """The text-encoder output ``(..., T, D)`` with the rows at ``positions`` (the class tokens) times ``gamma``."""
    out = embedding.clone()
    out[..., positions, :] *= gamma
    return out


def fuse_cross(cross: dict[int, torch.Tensor]) -> torch.Tensor:
    """``(T, 64, 64)``: each resolution's ``(T, r, r)`` head-mean cross map divided by its per-token spatial sum,
    bilinear to 64 x 64, weighted by ``FUSION`` and summed."""
    parts = []
    for r, weight in FUSION.items():
        maps = cross[r]
        normed = maps / maps.sum(dim=(-2, -1), keepdim=True)
        normed = F.interpolate(normed[None], size=(LATENT, LATENT), mode="bilinear", align_corners=False)[0]
        parts.append(weight * normed)
    return torch.stack(parts).sum(0)


def kl_terms(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(v, log v)`` with ``v = fp16(values) + KL_EPSILON``, the operands of ``symmetric_kl``."""
    shifted = values.to(torch.float16) + KL_EPSILON
    return shifted, torch.log(shifted)


def symmetric_kl(prototypes: torch.Tensor, pixels: torch.Tensor, pixel_terms=None) -> torch.Tensor:
    """``(P, N)`` symmetric KL divergence (half each way) between ``(P, T)`` prototypes and ``(N, T)`` pixel
    vectors, computed in fp16 with ``KL_EPSILON`` added, as the published code does (also on CPU).
    ``pixel_terms``: the pixels' ``kl_terms``, when already known."""
    a, log_a = kl_terms(prototypes)
    b, log_b = pixel_terms if pixel_terms is not None else kl_terms(pixels)
    log_ratio = log_a[:, None, :] - log_b[None]
    return torch.sum(a[:, None, :] * log_ratio, dim=-1) * 0.5 - torch.sum(b * log_ratio, dim=-1) * 0.5


def dfc_seeds(side: int = LATENT) -> torch.Tensor:
    """Row-major pixel indices of the seed grid ``DFC_GRID`` x ``DFC_GRID``."""
    grid = torch.tensor(DFC_GRID)
    return (grid[:, None] * side + grid[None, :]).flatten()


def dfc_kl(fused: torch.Tensor, iterations: int = DFC_ITERATIONS) -> tuple[torch.Tensor, int]:
    """DFC-KL clustering of the pixels of a ``(T, 64, 64)`` fused map: ``(N,)`` cluster ids numbered 0..n-1 in
    the order of the surviving seeds, and n.

    Each iteration assigns every pixel to the prototype at the smallest symmetric KL (first one on ties) and
    replaces the prototypes by their members' means; prototypes without members are dropped.
    """
    pixels = fused.flatten(-2, -1).T
    pixels = torch.where(pixels == 0, DFC_ZERO, pixels)
    prototypes = pixels[dfc_seeds(fused.shape[-1])]
    cluster = torch.zeros(pixels.shape[0], dtype=torch.long)
    terms = kl_terms(pixels)
    for _ in range(iterations):
        _, cluster = torch.min(symmetric_kl(prototypes, pixels, terms), dim=0)
        prototypes = _member_means(pixels, cluster)
    kept, ids = torch.unique(cluster, return_inverse=True)
    return ids, len(kept)


def _member_means(pixels: torch.Tensor, cluster: torch.Tensor) -> torch.Tensor:
    """The mean of each non-empty cluster's pixels, clusters in increasing id order. Each mean is taken over the
    cluster's pixels in image order, one contiguous block each, so it is bit for bit the published per-cluster
    ``mean(0)`` of the pixels it selects."""
    order = torch.sort(cluster, stable=True).indices
    sizes = torch.bincount(cluster)
    blocks = pixels[order].split(sizes[sizes > 0].tolist())
    return torch.stack([block.mean(0) for block in blocks])


def cluster_means(fused: torch.Tensor, clusters: torch.Tensor, count: int) -> torch.Tensor:
    """``(T, 64, 64)``: every pixel's token vector replaced by the mean of its cluster's."""
    pixels = fused.flatten(-2, -1).T
    sums = torch.zeros(count, pixels.shape[1], dtype=pixels.dtype).index_add_(0, clusters, pixels)
    sizes = torch.bincount(clusters, minlength=count).to(pixels.dtype)
    return (sums / sizes[:, None])[clusters].T.reshape(fused.shape)


def class_columns(maps: torch.Tensor, tokens: list[list[int]]) -> torch.Tensor:
    """``(N, K)``: per class, the mean of the ``(T, 64, 64)`` maps of its token positions."""
    flat = maps.flatten(-2, -1)
    return torch.stack([flat[positions].mean(0) for positions in tokens], dim=1)


def normalise_columns(columns: torch.Tensor) -> torch.Tensor:
    """Each column minus its minimum, divided by its sum (a distribution over pixels)."""
    shifted = columns - columns.amin(dim=0, keepdim=True)
    return shifted / shifted.sum(dim=0, keepdim=True)


def entropy_reduced(attention: torch.Tensor, strength: float) -> torch.Tensor:
    """The row-stochastic ``(N, N)`` ERS matrix of a self-attention ``attention[query, key]``.

    Each key column is divided by its maximum; non-zero entries ``A`` become ``A + strength * log10(e * A)``,
    clamped at 0 (weak links vanish); rows are normalised to sum to 1.
    """
    scaled = attention / attention.amax(dim=0, keepdim=True)
    boosted = scaled + torch.where(scaled == 0, 0, strength * torch.log10(math.e * scaled))
    boosted = torch.clamp(boosted, min=0)
    return boosted / boosted.sum(dim=-1, keepdim=True)


def refine(transition: torch.Tensor, columns: torch.Tensor, iterations: int) -> torch.Tensor:
    """``iterations`` times: ``C <- P C``, then each column minus its minimum, divided by its sum."""
    for _ in range(iterations):
        columns = transition @ columns
        columns = columns - columns.amin(dim=0, keepdim=True)
        columns = columns / columns.sum(dim=0, keepdim=True)
    return columns


def square_scores(columns: torch.Tensor) -> torch.Tensor:
    """``(K, 512, 512)``: the ``(N, K)`` refined columns as 64 x 64 maps, bilinear to 512 x 512, min-max per class."""
    side = int(round(columns.shape[0] ** 0.5))
    maps = columns.T.reshape(1, -1, side, side)
    maps = F.interpolate(maps, size=SCORE_SIZE, mode="bilinear", align_corners=False)[0]
    maps = maps - maps.amin(dim=(-2, -1), keepdim=True)
    return maps / maps.amax(dim=(-2, -1), keepdim=True)


def image_scores(square: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(K, H, W)``: ``square_scores`` bilinear to the image size."""
    return F.interpolate(square[None], size=(height, width), mode="bilinear", align_corners=False)[0]


def rescale(class_scores: torch.Tensor) -> torch.Tensor:
    """The published ``cam_to_label``'s min-max of each ``(K, H, W)`` class score map, ``LABEL_EPSILON`` added to
    the span: the scores faseg thresholds."""
    shifted = class_scores - class_scores.amin(dim=(-2, -1), keepdim=True)
    return shifted / (shifted.amax(dim=(-2, -1), keepdim=True) + LABEL_EPSILON)
