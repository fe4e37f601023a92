"""NACLIP's tensor maths, model-free: resizing, the Gaussian neighbourhood, sliding windows, PAMR, class scores.

Each function reproduces one step of the published code (github sinahmr/NACLIP @ 0cac3a6);
the docstrings name the place. Shapes: Q queries (text prompts' embeddings), C classes
(background first where there is one), H x W pixels, h x w patches.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

RING = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
"""The 8 neighbours of a pixel on a 3 x 3 ring, as (dy, dx) in units of the dilation."""


def rescaled_size(width: int, height: int, short_side: int, long_side: int) -> tuple[int, int]:
    """``(w, h)`` with the short side ``short_side`` unless the long side would exceed ``long_side``.

    mmcv ``imrescale`` as ``Resize(scale=(long_side, short_side), keep_ratio=True)`` calls it:
    small images are enlarged too.
    """
    factor = min(long_side / max(width, height), short_side / min(width, height))
    return int(width * factor + 0.5), int(height * factor + 0.5)


COEF_BITS = 11
"""cv2's fixed-point resize weights: 1.0 is ``2 ** COEF_BITS``."""


def _taps(source: int, target: int, edge_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index along one axis: the two source indices and their fixed-point weights (sum 2048).

    As ``cv::resize`` computes them for ``INTER_LINEAR``: the centre ``(d + 0.5) * scale - 0.5``
    in double, its fraction in float, each weight ``1 - f`` and ``f`` times 2048 rounded
    half to even; indices outside the image are clamped to its edge. Horizontally
    (``edge_weights``) such an output takes the edge pixel with weight 2048; vertically cv2
    keeps the fraction, weighting the same edge row twice.
    """
    scale = 1.0 / (target / source)
    centre = ((np.arange(target) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(centre).astype(np.int64)
    frac = centre - first.astype(np.float32)
    if edge_weights:
        frac[(first < 0) | (first >= source - 1)] = 0
    one = np.float32(1 << COEF_BITS)
    weights = np.stack([np.rint((np.float32(1) - frac) * one), np.rint(frac * one)], 1).astype(np.int32)
    return np.clip(first, 0, source - 1), np.clip(first + 1, 0, source - 1), weights


def resize_bilinear(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(h, w, 3)`` uint8 at ``size`` = (w, h): ``cv2.resize(INTER_LINEAR)`` bit for bit.

    cv2's integer arithmetic: a horizontal pass with 11-bit weights kept as integers ``a``, ``b``
    (two source rows), then a vertical one that rounds as its vector code does,
    ``((a >> 4) * wa >> 16) + ((b >> 4) * wb >> 16) + 2 >> 2``, for every value of a row (not
    the exact ``(a wa + b wb + 2^21) >> 22``). Only the source rows used are read. Tested equal to
    OpenCV over many sizes up and down (``tests/naclip/test_naclip_resize.py``).
    """
    width, height = size
    if (height, width) == tuple(pixels.shape[:2]):
        return pixels
    source = pixels.numpy()
    x0, x1, wx = _taps(source.shape[1], width, True)
    y0, y1, wy = _taps(source.shape[0], height, False)
    rows, where = np.unique(np.concatenate([y0, y1]), return_inverse=True)
    picked = source[rows]
    across = _weighted(picked[:, x0], wx[:, :1]) + _weighted(picked[:, x1], wx[:, 1:])
    across = across.reshape(len(rows), -1) >> 4
    out = _weighted(across[where[:height]], wy[:, :1]) >> 16
    out += _weighted(across[where[height:]], wy[:, 1:]) >> 16
    out += 2
    out >>= 2
    return torch.from_numpy(np.clip(out, 0, 255).astype(np.uint8).reshape(height, width, -1))


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values * weights`` as a new int32 array (computed in place: the resize's memory stays small)."""
    out = values.astype(np.int32)
    out *= weights
    return out


def normalise(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 ``(x - mean) / std`` (mmseg ``SegDataPreProcessor``)."""
    x = pixels.permute(2, 0, 1).unsqueeze(0).float()
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def interpolate_positions(weight: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Position embeddings ``(1 + g*g, D)`` resampled to a ``grid`` = (h, w) of patches.

    As ``VisionTransformer.interpolate_pos_encoding`` (``clip/model.py:134-151``): bicubic with
    the scale factor ``(side + 0.1) / g`` (DINO style), not a target size, so the sampling
    grid differs slightly from a size-based resize. The native grid is returned unchanged.
    """
    side = math.isqrt(weight.shape[0] - 1)
    if grid == (side, side):
        return weight
    patches = weight[1:].T.reshape(1, -1, side, side)
    factor = ((grid[0] + 0.1) / side, (grid[1] + 0.1) / side)
    patches = F.interpolate(
        patches, scale_factor=factor, mode="bicubic", align_corners=False, recompute_scale_factor=False
    )
    return torch.cat([weight[:1], patches.reshape(weight.shape[1], -1).T])


@lru_cache(maxsize=16)
def gaussian_bias(grid: tuple[int, int], std: float) -> torch.Tensor:
    """``(1 + h*w, 1 + h*w)`` attention-logit bias: a Gaussian of the patch offset, 0 for the class token.

    ``omega[p, q] = exp(-|p - q|^2 / (2 std^2))`` with p, q patch positions on the (h, w)
    grid; peak 1, not normalised, never truncated (``clip/model.py:153-176``).
    """
    rows, cols = (p.flatten() for p in torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij"))
    squared = ((rows[:, None] - rows) ** 2 + (cols[:, None] - cols) ** 2).float()
    bias = torch.zeros(squared.shape[0] + 1, squared.shape[0] + 1)
    bias[1:, 1:] = torch.exp(-squared / (2 * std**2))
    return bias


def neighbourhood_attention(keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """NACLIP's attention (``clip/model.py:198-207``): ``softmax(k k^T / sqrt(d) + bias) v``.

    Keys are compared with keys (the queries are not used); ``keys`` and ``values`` are
    ``(B, heads, T, d)``, ``bias`` ``(T, T)``.
    """
    return F.scaled_dot_product_attention(keys, keys, values, attn_mask=bias.to(keys.dtype))


def window_boxes(height: int, width: int, window: int, stride: int) -> list[tuple[int, int, int, int]]:
    """The sliding windows ``(y1, y2, x1, x2)`` covering an image (``naclip.py:71-108``, mmseg's grid).

    The last window of a row or column is shifted back inside the image; windows are
    smaller than ``window`` only where the image is.
    """
    boxes = []
    for row in range(max(height - window + stride - 1, 0) // stride + 1):
        for col in range(max(width - window + stride - 1, 0) // stride + 1):
            y2, x2 = min(row * stride + window, height), min(col * stride + window, width)
            boxes.append((max(y2 - window, 0), y2, max(x2 - window, 0), x2))
    return boxes


def merge_windows(
    boxes: list[tuple[int, int, int, int]], logits: list[torch.Tensor], height: int, width: int
) -> torch.Tensor:
    """Average the windows' ``(Q, y2-y1, x2-x1)`` logits where they overlap: ``(Q, H, W)``."""
    total = logits[0].new_zeros(logits[0].shape[0], height, width)
    count = logits[0].new_zeros(1, height, width)
    for (y1, y2, x1, x2), part in zip(boxes, logits):
        total[:, y1:y2, x1:x2] += part
        count[:, y1:y2, x1:x2] += 1
    return total / count


def _shifted(x: torch.Tensor, dilation: int) -> list[torch.Tensor]:
    """The 8 ring neighbours at ``dilation`` of every pixel of ``(..., H, W)``, edges replicated."""
    height, width = x.shape[-2:]
    padded = F.pad(x, [dilation] * 4, mode="replicate")
    return [
        padded[
            ..., dilation * (1 + dy) : dilation * (1 + dy) + height, dilation * (1 + dx) : dilation * (1 + dx) + width
        ]
        for dy, dx in RING
    ]


def pamr_affinity(guide: torch.Tensor, dilations: tuple[int, ...]) -> torch.Tensor:
    """PAMR's ``(B, 8 * len(dilations), H, W)`` weights of each pixel's ring neighbours (``pamr.py:107-128``).

    ``guide`` is ``(B, 3, H, W)``. Per channel, ``-|I_p - I_n| / (1e-8 + 0.1 std)`` with std
    the unbiased standard deviation of the 3 x 3 patches at all dilations together (the
    centre counted once per dilation), then the mean over channels and a softmax over
    the neighbours.
    """
    neighbours = [n for d in dilations for n in _shifted(guide, d)]
    patch = [guide] * len(dilations) + neighbours
    # the std in two passes, summed one shifted view at a time: no stack of the patches (18 copies of the
    # image), 3x faster than torch.std over one
    mean = torch.zeros_like(guide)
    for value in patch:
        mean += value
    mean /= len(patch)
    squares = torch.zeros_like(guide)
    for value in patch:
        squares += (value - mean).square_()
    spread = squares.div_(len(patch) - 1).sqrt_().mul_(0.1).add_(1e-8)
    logits = torch.stack([(guide - n).abs_().div_(spread).mean(1).neg_() for n in neighbours], -1)
    return logits.softmax(-1).movedim(-1, 1)  # stored pixel by pixel, as ``pamr``'s sparse rows read it


def pamr(guide: torch.Tensor, logits: torch.Tensor, steps: int, dilations: tuple[int, ...]) -> torch.Tensor:
    """PAMR (``pamr.py``): ``steps`` times, each pixel's logits become the affinity-weighted mean of its ring
    neighbours' (the centre excluded). ``guide`` is ``(B, 3, H, W)``, ``logits`` ``(B, Q, H, W)``.

    The affinities do not change between steps, so each step is one product of a sparse ``(HW, HW)`` matrix
    (a row per pixel: its neighbours' weights, edges replicated) with the ``(HW, Q)`` logits: one pass
    over the logits instead of one per neighbour, about 3x faster on a CPU, the same sums in the same
    order. MPS has no sparse product: there the steps run on the CPU.
    """
    if steps == 0:
        return logits
    batch, queries, height, width = logits.shape
    device = logits.device if logits.device.type in ("cpu", "cuda") else torch.device("cpu")
    affinity = pamr_affinity(guide, dilations).to(device)
    columns = _ring_indices(height, width, dilations, device)
    rows = torch.arange(0, columns.numel() + 1, columns.shape[1], dtype=torch.int32, device=device)
    refined = []
    for weights, values in zip(affinity, logits.to(device)):
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state", once per process
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(
                rows, columns.flatten(), weights.movedim(0, -1).flatten(), (height * width,) * 2, check_invariants=False
            )
        pixels = values.flatten(1).T.contiguous()
        for _ in range(steps):
            pixels = matrix @ pixels
        refined.append(pixels.T.reshape(queries, height, width))
        del matrix, pixels
    # one image (NACLIP's case) is returned without another copy
    return (refined[0][None] if batch == 1 else torch.stack(refined)).to(logits.device)


def _ring_indices(height: int, width: int, dilations: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``(H * W, 8 * len(dilations))`` int32: the flat index of each pixel's ring neighbours, in the order of
    ``pamr_affinity``'s channels (dilation, then ``RING``), clamped to the image as replicated edges are."""
    ys = torch.arange(height, dtype=torch.int32, device=device).view(-1, 1)
    xs = torch.arange(width, dtype=torch.int32, device=device).view(1, -1)
    return torch.stack(
        [
            ((ys + dy * d).clamp_(0, height - 1) * width + (xs + dx * d).clamp_(0, width - 1)).flatten()
            for d in dilations
            for dy, dx in RING
        ],
        1,
    )


def class_probabilities(
    logits: torch.Tensor, query_class: torch.Tensor, num_classes: int, logit_scale: float
) -> torch.Tensor:
    """``(C, H, W)``: softmax over the ``(Q, H, W)`` scaled logits, each class the max of its queries'.

    ``query_class[q]`` is the class of query q (``naclip.py:139-149``: probabilities are
    not renormalised after the max).
    """
    probs = (logits * logit_scale).softmax(0)
    if num_classes == logits.shape[0]:
        return probs
    index = query_class.view(-1, 1, 1).expand_as(probs)
    return probs.new_zeros(num_classes, *probs.shape[1:]).scatter_reduce(0, index, probs, "amax")


def split_background(probs: torch.Tensor, background: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Foreground class probabilities ``(K, H, W)`` and, with a background class 0, the pixels it wins.

    NACLIP labels a pixel with its most probable class (background if class 0), then
    background where that probability is below the threshold (``naclip.py:151-152``);
    ``engine.Segmentation.labels_at`` applies both from what this returns.
    """
    if not background:
        return probs, None
    return probs[1:], probs.argmax(0) == 0
