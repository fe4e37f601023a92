from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from faseg_cli.evaluation.metrics import IGNORE, INVALID, ConfusionMatrix, resize_nearest


def test_hand_computed_iou_with_ignore_and_invalid_predictions():
    gt = np.array([[0, 0, 1], [1, 2, IGNORE]])
    pred = np.array([[0, 1, 1], [1, 7, 0]])  # 7 is no class; the last pixel is ignored
    matrix = ConfusionMatrix(3)
    matrix.update(pred, gt)
    # class 0: TP 1, gt 2, pred 1 -> 1/2; class 1: TP 2, gt 2, pred 3 -> 2/3;
    # class 2: TP 0, gt 1 (its pixel predicted 7), pred 0 -> 0/1
    np.testing.assert_allclose(matrix.iou(), [1 / 2, 2 / 3, 0.0])
    assert matrix.miou() == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert matrix.pixel_accuracy() == pytest.approx(3 / 5)
    assert matrix.pixels == 5
    np.testing.assert_array_equal(matrix.intersection(), [1, 2, 0])
    np.testing.assert_array_equal(matrix.union(), [2, 3, 1])


def test_negative_and_invalid_constant_predictions_are_wrong():
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([[INVALID, -5, 1]]), np.array([[0, 0, 1]]))
    np.testing.assert_allclose(matrix.iou(), [0.0, 1.0])


def test_absent_class_is_nan_and_left_out_of_the_mean():
    gt = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    matrix = ConfusionMatrix(4)
    matrix.update(pred, gt)
    iou = matrix.iou()
    np.testing.assert_allclose(iou[:2], [1 / 2, 2 / 3])
    assert np.isnan(iou[2:]).all()
    assert matrix.miou() == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_class_only_predicted_counts_with_zero_iou():
    matrix = ConfusionMatrix(3)
    matrix.update(np.array([[0, 2]]), np.array([[0, 0]]))
    np.testing.assert_allclose(matrix.iou(), [1 / 2, np.nan, 0.0])
    assert matrix.miou() == pytest.approx(1 / 4)


def test_predictions_on_ignored_pixels_do_not_count():
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([[1, 1]]), np.array([[0, IGNORE]]))
    np.testing.assert_allclose(matrix.iou(), [0.0, 0.0])
    np.testing.assert_array_equal(matrix.union(), [1, 1])


def test_empty_matrix_gives_nan():
    matrix = ConfusionMatrix(3)
    matrix.update(np.zeros((2, 2), int), np.full((2, 2), IGNORE))
    assert math.isnan(matrix.miou()) and math.isnan(matrix.pixel_accuracy())
    assert np.isnan(matrix.iou()).all()


def test_prediction_is_resized_to_the_ground_truth_with_nearest():
    pred = np.array([[0, 1], [2, 0]])
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 0, 0], [2, 2, 0, 1]])
    matrix = ConfusionMatrix(3)
    matrix.update(pred, gt)
    # the upsampled prediction equals gt except the bottom-right pixel (0 instead of 1)
    np.testing.assert_allclose(matrix.iou(), [7 / 8, 4 / 5, 1.0])


@pytest.mark.parametrize(
    "shape_in,shape_out",
    [
        ((2, 3), (7, 5)),
        ((500, 375), (512, 512)),
        ((512, 512), (375, 500)),
        ((64, 64), (333, 500)),
        ((9, 13), (4, 6)),
        ((1, 1), (3, 2)),
    ],
)
def test_resize_nearest_matches_pil(shape_in, shape_out):
    labels = np.random.default_rng(0).integers(0, 256, size=shape_in).astype(np.uint8)
    expected = np.array(Image.fromarray(labels).resize(shape_out[::-1], Image.NEAREST))
    np.testing.assert_array_equal(resize_nearest(labels, shape_out), expected)


def test_resize_nearest_keeps_wide_values():
    labels = np.array([[-1, 300], [70000, 2]], dtype=np.int64)
    np.testing.assert_array_equal(resize_nearest(labels, (2, 4)), [[-1, -1, 300, 300], [70000, 70000, 2, 2]])


def _random_pairs(count: int, num_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shape = tuple(rng.integers(3, 20, size=2))
        gt = rng.integers(0, num_classes, size=shape)
        gt[rng.random(shape) < 0.1] = IGNORE
        pred = rng.integers(-1, num_classes + 2, size=shape)
        yield pred, gt


def test_merge_equals_one_accumulation():
    pairs = list(_random_pairs(10, 5))
    whole, first, second = ConfusionMatrix(5), ConfusionMatrix(5), ConfusionMatrix(5)
    for index, (pred, gt) in enumerate(pairs):
        whole.update(pred, gt)
        (first if index % 3 else second).update(pred, gt)
    assert first + second == whole
    assert first.merge(second) is first
    assert first == whole
    np.testing.assert_array_equal(first.iou(), whole.iou())


def test_add_leaves_operands_unchanged():
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update(np.array([[0]]), np.array([[0]]))
    b.update(np.array([[1]]), np.array([[1]]))
    total = a + b
    assert total.pixels == 2 and a.pixels == 1 and b.pixels == 1


def test_merge_rejects_other_class_counts():
    with pytest.raises(ValueError, match="merge"):
        ConfusionMatrix(2).merge(ConfusionMatrix(3))


def test_split_totals_not_per_image_means():
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([[1]]), np.array([[1]]))  # image 1: class 1 IoU 1
    matrix.update(np.array([[0, 0, 0]]), np.array([[1, 1, 1]]))  # image 2: class 1 IoU 0
    assert matrix.iou()[1] == pytest.approx(1 / 4)


def test_dict_round_trip_through_json():
    matrix = ConfusionMatrix(6)
    for pred, gt in _random_pairs(4, 6, seed=1):
        matrix.update(pred, gt)
    data = json.loads(json.dumps(matrix.to_dict()))
    assert ConfusionMatrix.from_dict(data) == matrix
    assert data["num_classes"] == 6
    assert sum(count for _, _, count in data["cells"]) == matrix.pixels


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"num_classes": 2},
        {"num_classes": 2, "cells": [[0, 3, 1]]},
        {"num_classes": 2, "cells": [[0, 1]]},
        {"num_classes": 0, "cells": []},
        {"num_classes": 2, "cells": [[0, 0, -1]]},
    ],
)
def test_from_dict_rejects_malformed_data(data):
    with pytest.raises(ValueError):
        ConfusionMatrix.from_dict(data)


def test_update_rejects_ground_truth_values_that_are_no_class():
    with pytest.raises(ValueError, match="ground-truth value 3"):
        ConfusionMatrix(3).update(np.array([[0]]), np.array([[3]]))


def test_update_rejects_float_predictions():
    with pytest.raises(ValueError, match="integer"):
        ConfusionMatrix(3).update(np.array([[0.5]]), np.array([[0]]))
