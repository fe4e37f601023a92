"""NACLIP's model-free maths against direct formulations of the published steps."""

import math

import pytest
import torch

from faseg_cli.engine.naclip.maths import (
    class_probabilities,
    gaussian_bias,
    interpolate_positions,
    merge_windows,
    neighbourhood_attention,
    pamr,
    rescaled_size,
    split_background,
    window_boxes,
)
from faseg_cli.engine.scores import labels_from_scores


def test_rescaled_size_follows_mmcv_imrescale():
    assert rescaled_size(500, 375, 336, 2048) == (448, 336)
    assert rescaled_size(64, 48, 336, 2048) == (448, 336)  # small images are enlarged
    assert rescaled_size(10000, 100, 336, 2048) == (2048, 20)  # the long side caps the scale


def test_gaussian_bias_is_the_offset_gaussian_with_a_free_class_token():
    bias = gaussian_bias((3, 4), 5.0)
    assert bias.shape == (13, 13)
    assert torch.all(bias[0] == 0) and torch.all(bias[:, 0] == 0)
    assert torch.allclose(bias.diagonal()[1:], torch.ones(12))
    # patch (0, 0) is token 1, patch (2, 3) token 12: offset (2, 3)
    assert bias[1, 12].item() == pytest.approx(math.exp(-(4 + 9) / 50), rel=1e-6)
    assert torch.equal(bias, bias.T)


def test_neighbourhood_attention_compares_keys_with_keys():
    torch.manual_seed(0)
    keys, values, bias = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4), torch.randn(5, 5)
    explicit = ((keys @ keys.transpose(-1, -2)) / 2 + bias).softmax(-1) @ values
    assert torch.allclose(neighbourhood_attention(keys, values, bias), explicit, atol=1e-6)


def test_interpolate_positions_keeps_native_grid_and_class_position():
    weight = torch.randn(1 + 14 * 14, 8)
    assert interpolate_positions(weight, (14, 14)) is weight
    out = interpolate_positions(weight, (21, 28))
    assert out.shape == (1 + 21 * 28, 8) and torch.equal(out[0], weight[0])


def test_window_boxes_cover_the_image_with_the_last_windows_shifted_inside():
    boxes = window_boxes(336, 448, 224, 112)
    assert boxes == [(y, y + 224, x, x + 224) for y in (0, 112) for x in (0, 112, 224)]
    assert window_boxes(300, 250, 224, 112)[-1] == (76, 300, 26, 250)
    assert window_boxes(100, 150, 224, 112) == [(0, 100, 0, 150)]  # smaller than a window: used as it is


def test_merge_windows_averages_overlaps():
    boxes = [(0, 2, 0, 2), (0, 2, 1, 3)]
    merged = merge_windows(boxes, [torch.ones(1, 2, 2), 3 * torch.ones(1, 2, 2)], 2, 3)
    assert torch.equal(merged[0], torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))


def _pamr_reference(guide, logits, steps, dilations):
    """PAMR pixel by pixel: ring neighbours with clamped (replicated) coordinates."""
    _, channels, height, width = guide.shape
    ring = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]

    def at(t, y, x):
        return t[0, :, min(max(y, 0), height - 1), min(max(x, 0), width - 1)]

    weights = torch.zeros(height, width, len(ring) * len(dilations))
    for y in range(height):
        for x in range(width):
            patch = torch.stack([at(guide, y + d * dy, x + d * dx) for d in dilations for dy, dx in [(0, 0), *ring]])
            spread = 1e-8 + 0.1 * patch.std(0)
            diffs = torch.stack(
                [(guide[0, :, y, x] - at(guide, y + d * dy, x + d * dx)).abs() for d in dilations for dy, dx in ring]
            )
            weights[y, x] = (-diffs / spread).mean(1).softmax(0)
    for _ in range(steps):
        out = torch.zeros_like(logits)
        for y in range(height):
            for x in range(width):
                neighbours = [at(logits, y + d * dy, x + d * dx) for d in dilations for dy, dx in ring]
                out[0, :, y, x] = sum(w * n for w, n in zip(weights[y, x], neighbours))
        logits = out
    return logits


def test_pamr_matches_a_pixel_by_pixel_reference():
    torch.manual_seed(0)
    guide, logits = torch.randn(1, 3, 5, 6), torch.randn(1, 2, 5, 6)
    expected = _pamr_reference(guide, logits, 3, (1, 2))
    assert torch.allclose(pamr(guide, logits, 3, (1, 2)), expected, atol=1e-5)
    assert pamr(guide, logits, 0, (1, 2)) is logits
    flat = torch.full((1, 2, 5, 6), 0.25)
    assert torch.allclose(pamr(guide, flat, 2, (8, 16)), flat)  # affinities sum to 1
    mirrored = pamr(guide.flip(-1), logits.flip(-1), 3, (1, 2))  # each image of a batch on its own
    pair = pamr(torch.cat([guide, guide.flip(-1)]), torch.cat([logits, logits.flip(-1)]), 3, (1, 2))
    assert torch.allclose(pair[1:], mirrored, atol=1e-6) and not torch.allclose(pair[0], mirrored[0], atol=1e-2)


def test_class_probabilities_take_the_max_over_a_class_queries():
    logits = torch.tensor([[0.1], [0.3], [0.2]]).view(3, 1, 1)
    probs = (logits * 40).softmax(0)
    merged = class_probabilities(logits, torch.tensor([0, 0, 1]), 2, 40.0)
    assert torch.allclose(merged.flatten(), torch.stack([probs[1], probs[2]]).flatten())
    assert torch.equal(class_probabilities(logits, torch.tensor([0, 1, 2]), 3, 40.0), probs)


def test_background_wins_at_every_threshold_and_the_threshold_applies_to_the_rest():
    probs = torch.tensor([[0.5, 0.2, 0.05], [0.3, 0.7, 0.05], [0.2, 0.1, 0.09]]).view(3, 1, 3)
    scores, wins = split_background(probs, True)
    assert wins.tolist() == [[True, False, False]]
    assert labels_from_scores(scores, 0.1, wins).tolist() == [[0, 1, 0]]  # 0.09 < 0.1
    assert labels_from_scores(scores, 0.0, wins).tolist() == [[0, 1, 2]]  # argmax, background still wins
    scores, wins = split_background(probs, False)
    assert wins is None and torch.equal(scores, probs)
