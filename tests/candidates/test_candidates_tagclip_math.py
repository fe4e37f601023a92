"""TagCLIP's tensor steps on hand-built inputs with known answers."""

from __future__ import annotations

import math

import torch

from faseg_cli.candidates.boxes import bounding_box, label_regions, region_boxes_mask
from faseg_cli.candidates.tagclip import (
    AttentionVotes,
    box_masks,
    coarse_scores,
    crop_region,
    cwr_classes,
    layer_votes,
    refine_in_boxes,
    relative_threshold,
    select_labels,
)
from faseg_cli.engine.scores import minmax


def _votes(attn: torch.Tensor) -> AttentionVotes:
    """DMAR statistics of all layers of ``attn`` (L, N, N), fed one layer at a time."""
    votes = AttentionVotes(attn.shape[0])
    for layer, attention in enumerate(attn):
        votes.add(layer, attention)
    return votes


def _layers(*high_sets, total=12, n=2):
    """(total, n, n) attention: 1 on the given cells of each listed layer, 0 elsewhere."""
    attn = torch.zeros(total, n, n)
    for layer, cells in enumerate(high_sets):
        for r, c in cells:
            attn[layer, r, c] = 1.0
    return attn


def test_layer_votes_use_the_mean_of_the_whole_layer_matrix():
    attention = torch.tensor([[0.9, 0.1], [0.35, 0.25]])  # mean 0.4; row 1's own mean would be 0.3
    assert layer_votes(attention).tolist() == [[True, False], [False, False]]


def test_voting_mask_needs_four_of_twelve_layers():
    three = {(0, 0), (0, 1), (1, 0)}
    attn = _layers(three, three, three, {(0, 0), (0, 1)}, {(0, 0)})
    # votes: (0,0) 5, (0,1) 4, (1,0) 3, (1,1) 0
    assert _votes(attn).mask().tolist() == [[True, True], [False, False]]


def test_dmar_affinity_averages_layers_8_to_10_under_the_mask():
    attn = torch.stack([(layer + 1) * torch.eye(2) for layer in range(12)])
    assert torch.allclose(_votes(attn).affinity(), 10 * torch.eye(2))  # mean of 9, 10, 11


def test_coarse_scores_are_a_softmax_of_100_cosines():
    theta = math.acos(0.99)
    text = torch.tensor([[1.0, 0.0], [math.cos(theta), math.sin(theta)]])
    scores = coarse_scores(torch.tensor([[1.0, 0.0]]), text)
    e = math.e
    assert torch.allclose(scores, torch.tensor([[e / (e + 1), 1 / (e + 1)]]), atol=1e-5)


def test_minmax_of_a_constant_slice_is_zero():
    assert minmax(torch.tensor([[2.0, 1.0], [2.0, 3.0]]), dim=0).tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_regions_are_8_connected():
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    mask[0, 0, 0] = mask[0, 1, 1] = mask[0, 2, 0] = True
    labels = label_regions(mask)[0]
    assert labels[0, 0] == labels[1, 1] == labels[2, 0] != 0


def test_box_masks_from_a_known_score_map():
    grid = (4, 5)
    blob = torch.zeros(grid)
    blob[1:3, 1:3] = 9.0
    blob[3, 4] = 1.0  # a weak peak, below the mean after min-max: no box
    edge = torch.zeros(grid)
    edge[2, 4] = edge[3, 4] = edge[3, 3] = 5.0  # touches the right and bottom borders
    diagonal = torch.zeros(grid)
    diagonal[0, 0] = diagonal[1, 1] = 1.0  # one 8-connected region
    scores = torch.stack([blob.flatten(), edge.flatten(), diagonal.flatten()], dim=1)
    masks = box_masks(scores, grid).T.reshape(3, *grid)

    expected_blob = torch.zeros(grid)
    expected_blob[1:3, 1:3] = 1
    expected_edge = torch.zeros(grid)
    expected_edge[2, 3] = 1  # rows 2..3, cols 3..4 clipped to end at size - 1, as OpenCV's boxes were
    expected_diagonal = torch.zeros(grid)
    expected_diagonal[0:2, 0:2] = 1
    assert torch.equal(masks[0], expected_blob)
    assert torch.equal(masks[1], expected_edge)
    assert torch.equal(masks[2], expected_diagonal)


def test_region_boxes_of_empty_maps_are_empty():
    assert not region_boxes_mask(torch.zeros(2, 3, 4, dtype=torch.bool)).any()


def test_refine_in_boxes_restricts_keys_to_the_class_boxes():
    affinity = 0.5 * torch.eye(10) + 0.05  # rows sum to 1
    p0 = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.2])
    p1 = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.8])
    # R = A P. Class 0 is above its mean at (0,0), (0,1) and (0,4); the last one touches the
    # right border, so its clipped box is empty. Class 1's region (0,2)-(0,4)-(1,4) has the
    # box rows 0..1, cols 2..4, clipped to row 0, cols 2..3. Keys outside the boxes drop out.
    refined = refine_in_boxes(affinity, torch.stack([p0, p1], dim=1), (2, 5))
    box0 = torch.tensor([1.0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    box1 = torch.tensor([0.0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    assert torch.allclose(refined[:, 0], 0.5 * box0 * p0 + 0.05 * 2.0)
    assert torch.allclose(refined[:, 1], 0.5 * box1 * p1 + 0.05 * 2.0)


def test_refine_keeps_columns_that_score_nowhere():
    coarse = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert torch.equal(refine_in_boxes(torch.eye(2), coarse, (1, 2))[:, 1], torch.zeros(2))


def test_relative_thresholds_and_argmax_fallback():
    assert relative_threshold(torch.tensor([[0.0, 4.0], [2.0, 1.0]])) == 2.0
    assert select_labels(torch.tensor([0.0, 1.0, 0.5])) == [1]  # strictly above the threshold
    assert select_labels(torch.tensor([0.2, 0.8, 0.7, 0.1])) == [1, 2]
    assert select_labels(torch.tensor([0.3, 0.3, 0.3])) == [0]


def test_cwr_threshold_spans_the_whole_score_map_including_distractors():
    scores_map = torch.tensor([[0.1, 0.9, 0.2], [0.0, 0.3, 0.1]])
    assert cwr_classes(scores_map, scores_map.amax(0)[:2]) == [1]
    with_distractor = torch.tensor([[0.1, 0.5, 1.0], [0.0, 0.2, 0.0]])
    assert cwr_classes(with_distractor, with_distractor.amax(0)[:2]) == []


def test_crop_region_box_and_class_token_mask():
    column = torch.zeros(3, 4)
    column[0, 1] = column[1, 1] = column[1, 2] = 1.0
    box, keep = crop_region(column.flatten(), (3, 4), native=4)
    assert box == (0, 2, 1, 3)
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(keep, expected.flatten())


def test_crop_region_in_the_last_column_only_is_skipped():
    column = torch.zeros(3, 4)
    column[:, 3] = 1.0
    assert crop_region(column.flatten(), (3, 4), native=4) is None
    assert bounding_box(torch.zeros(2, 2, dtype=torch.bool)) is None
