"""The pure FA-Seg maths, checked against direct formulations."""

import pytest
import torch
import torch.nn.functional as F

from faseg_cli.engine.faseg.refine import (
    bicubic_operator,
    block_sum,
    fuse_cross,
    hard_refine,
    merge_flipped,
    naive_lift,
    naive_propagate,
    propagate,
)
from faseg_cli.engine.scores import labels_from_scores, minmax


def softmax_rows(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, n, generator=g).mul(3).softmax(-1)


@pytest.mark.parametrize("r", [2, 4, 8, 16])
def test_bicubic_operator_matches_interpolate(r):
    size = 16
    x = torch.randn(3, 1, r, r)
    direct = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).flatten(1)
    via_matrix = (bicubic_operator(r, size) @ x.flatten(1).T).T
    torch.testing.assert_close(via_matrix, direct, rtol=1e-5, atol=1e-6)


def test_block_sum_sums_each_block():
    x = torch.arange(16.0).reshape(1, 16, 1)  # a 4x4 grid, row-major
    assert block_sum(x, 2, 4).flatten().tolist() == [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]


def test_naive_lift_repeats_keys_and_interpolates_queries():
    s = softmax_rows(1, 4)  # r = 2 lifted to 4
    lifted = naive_lift(s, 4)
    assert lifted.shape == (1, 16, 16)
    # Key columns inside one 2x2 block of the 4x4 grid are copies of the same coarse key.
    assert torch.equal(lifted[0, :, 0], lifted[0, :, 1]) and torch.equal(lifted[0, :, 0], lifted[0, :, 4])
    # Each key column, seen over the query grid, is the bicubic upsampling of the coarse column.
    column = F.interpolate(s[0, :, 0].view(1, 1, 2, 2), size=(4, 4), mode="bicubic", align_corners=False)
    torch.testing.assert_close(lifted[0, :, 0], column.flatten())


@pytest.mark.parametrize("r,tau", [(2, 2), (4, 2), (8, 2), (16, 2), (4, 1), (8, 3)])
def test_factorised_propagation_equals_naive_lift_and_power(r, tau):
    size = 16
    s = softmax_rows(2, r * r, seed=r)
    v = torch.rand(2, size * size, 3)
    torch.testing.assert_close(propagate(s, v, size, tau), naive_propagate(s, v, size, tau), rtol=1e-4, atol=1e-6)


def test_hard_refine_factorised_equals_naive_at_full_size():
    """The reference sizes: 8, 16, 32, 64 lifted to 64 with tau 2, K classes at once."""
    size = 64
    maps = {r: softmax_rows(1, r * r, seed=r) for r in (8, 16, 32, 64)}
    fused = torch.rand(1, 3, size, size)
    weights = {8: 0.1, 16: 0.1, 32: 0.5, 64: 0.3}
    fast = hard_refine(maps, fused, weights, 2)
    slow = hard_refine(maps, fused, weights, 2, propagate_fn=naive_propagate)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


def test_fuse_cross_is_weighted_nearest_upsampling():
    cross = {2: torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), 4: torch.ones(1, 1, 4, 4)}
    fused = fuse_cross(cross, {2: 0.5, 4: 0.25}, 4)
    expected = 0.5 * cross[2].repeat_interleave(2, -1).repeat_interleave(2, -2) + 0.25
    torch.testing.assert_close(fused, expected)


def test_minmax_scales_each_map_and_zeroes_constant_maps():
    maps = torch.stack([torch.tensor([[1.0, 3.0], [2.0, 5.0]]), torch.full((2, 2), 7.0)])
    out = minmax(maps)
    torch.testing.assert_close(out[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert torch.equal(out[1], torch.zeros(2, 2))


def test_merge_flipped_averages_with_the_mirrored_copy():
    maps = torch.rand(1, 2, 2, 8, 8)
    mirrored = maps.clone()
    mirrored[:, 1] = maps[:, 0].flip(-1)
    merged = merge_flipped(mirrored, 16)
    single = F.interpolate(maps[:, 0], size=(16, 16), mode="bicubic", align_corners=False)
    torch.testing.assert_close(merged, single, rtol=1e-5, atol=1e-6)
    assert merge_flipped(maps[:, :1], 16).shape == (1, 2, 16, 16)


def test_labels_threshold_argmax_and_background():
    scores = torch.tensor([[[0.9, 0.2], [0.5, 0.6]], [[0.1, 0.3], [0.54, 0.7]]])
    assert labels_from_scores(scores, 0.55).tolist() == [[1, 0], [0, 2]]
    assert labels_from_scores(scores, 0.0).tolist() == [[1, 2], [2, 2]]
    assert labels_from_scores(scores - 1, 0.0).tolist() == [[1, 2], [2, 2]]
    assert labels_from_scores(torch.zeros(0, 2, 3), 0.5).tolist() == [[0, 0, 0], [0, 0, 0]]
