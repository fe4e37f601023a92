from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faseg_cli.errors import UsageError
from faseg_cli.evaluation.datasets import get_dataset
from faseg_cli.evaluation.scoring import score_predictions
from tests.dataset_builders import build, write_label

ALL = ["voc", "voc20", "context", "context59", "coco-object", "coco-stuff", "ade", "cityscapes"]


@pytest.mark.parametrize("name", ALL)
def test_perfect_predictions_score_one(tmp_path, name):
    built = build(name, tmp_path / "data")
    dataset = get_dataset(name).open(tmp_path / "data")
    for sample_id, raw in built.raw_labels.items():
        prediction = raw.copy()
        prediction[raw == 255] = 1  # whatever is predicted on ignored pixels does not count
        write_label(tmp_path / "pred" / f"{sample_id}.png", prediction, palette=name.startswith("voc"))
    scores = score_predictions(dataset, tmp_path / "pred")
    matrix = scores.matrix
    assert scores.missing == scores.errors == scores.resized == []
    assert matrix.miou() == 1.0 and matrix.pixel_accuracy() == 1.0
    assert matrix.pixels == sum(int((dataset.load_label(s) != 255).sum()) for s in dataset.samples())


def _write_voc(tmp_path, labels):
    """A VOC split whose labels are replaced by the given ones."""
    built = build("voc", tmp_path / "data")
    for (sample_id, _), label in zip(built.raw_labels.items(), labels):
        write_label(tmp_path / "data/VOCdevkit/VOC2012/SegmentationClass" / f"{sample_id}.png", label, palette=True)
    return built.ids


def test_hand_computed_imperfect_scores(tmp_path):
    gts = [np.array([[0, 0], [15, 15]]), np.array([[0, 12, 12, 255]]), np.array([[15]])]
    preds = [np.array([[0, 15], [15, 15]]), np.array([[12, 12, 0, 12]]), np.array([[15]])]
    ids = _write_voc(tmp_path, gts)
    for sample_id, pred in zip(ids, preds):
        write_label(tmp_path / "pred" / f"{sample_id}.png", pred)
    voc = get_dataset("voc").open(tmp_path / "data")
    matrix = score_predictions(voc, tmp_path / "pred").matrix
    # background: TP 1, gt 3, pred 2 -> 1/4; dog (12): TP 1, gt 2, pred 2 -> 1/3;
    # person (15): TP 3, gt 3, pred 4 -> 3/4; the other 18 classes are absent (NaN)
    iou = matrix.iou()
    np.testing.assert_allclose(iou[[0, 12, 15]], [1 / 4, 1 / 3, 3 / 4])
    assert np.isnan(np.delete(iou, [0, 12, 15])).all()
    assert matrix.miou() == pytest.approx((1 / 4 + 1 / 3 + 3 / 4) / 3)
    assert matrix.pixel_accuracy() == pytest.approx(5 / 8)
    # voc20 ignores background pixels and counts background predictions as wrong:
    # dog TP 1, gt 2, pred 1 -> 1/2; person TP 3, gt 3, pred 3 -> 1
    voc20 = score_predictions(get_dataset("voc20").open(tmp_path / "data"), tmp_path / "pred").matrix
    assert voc20.miou() == pytest.approx((1 / 2 + 1) / 2)


def test_predictions_of_another_size_are_resized(tmp_path):
    ids = _write_voc(tmp_path, [np.array([[1, 1, 2, 2], [1, 1, 2, 2]])] * 3)
    for sample_id in ids:
        write_label(tmp_path / "pred" / f"{sample_id}.png", np.array([[1, 2]]))
    scores = score_predictions(get_dataset("voc").open(tmp_path / "data"), tmp_path / "pred")
    assert scores.matrix.miou() == 1.0
    assert scores.resized == [f"{i}.png is 2x1, its label 4x2" for i in ids] and scores.errors == []


def test_missing_predictions_are_reported_and_limit_applies(tmp_path):
    built = build("ade", tmp_path / "data")
    dataset = get_dataset("ade").open(tmp_path / "data")
    first, second, third = built.ids
    write_label(tmp_path / "pred" / f"{second}.png", built.raw_labels[second])
    scores = score_predictions(dataset, tmp_path / "pred")
    assert scores.missing == [first, third] and scores.errors == []
    assert scores.matrix.miou() == 1.0
    scores = score_predictions(dataset, tmp_path / "pred", limit=1)
    assert scores.missing == [first] and scores.matrix.pixels == 0


def test_unreadable_masks_and_labels_fail_alone(tmp_path):
    """A bad label value, an RGB mask or a broken PNG leaves that sample out; the others are scored."""
    built = build("voc", tmp_path / "data")
    first, second, third = built.ids
    for sample_id, raw in built.raw_labels.items():
        write_label(tmp_path / "pred" / f"{sample_id}.png", raw, palette=True)
    label = tmp_path / "data/VOCdevkit/VOC2012/SegmentationClass" / f"{first}.png"
    write_label(label, np.full((6, 8), 50), palette=True)
    Image.new("RGB", (7, 5)).save(tmp_path / "pred" / f"{second}.png")
    voc = get_dataset("voc").open(tmp_path / "data")
    scores = score_predictions(voc, tmp_path / "pred")
    assert scores.missing == [] and len(scores.errors) == 2
    assert scores.errors[0].startswith(f"{label}: value 50 is no voc label")
    assert (
        scores.errors[1] == f"{tmp_path / 'pred'}/{second}.png: RGB image; a label must be a palette or grayscale PNG"
    )
    assert scores.matrix.miou() == 1.0 and scores.matrix.pixels == int((built.raw_labels[third] != 255).sum())
    (tmp_path / "pred" / f"{third}.png").write_bytes(b"\x89PNG broken")
    assert (
        score_predictions(voc, tmp_path / "pred").errors[2].startswith(f"{tmp_path / 'pred'}/{third}.png: cannot read")
    )


def test_prediction_folder_must_exist(tmp_path):
    build("voc", tmp_path)
    with pytest.raises(UsageError, match="not a folder of prediction masks"):
        score_predictions(get_dataset("voc").open(tmp_path), tmp_path / "nope")
