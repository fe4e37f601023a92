"""The NACLIP backend through the Python API, on the tiny random CLIP."""

import numpy as np
import pytest
import torch

from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.naclip import model as naclip_model
from faseg_cli.engine.naclip.model import NaclipModel
from faseg_cli.engine.naclip.segmenter import NaclipSegmenter
from faseg_cli.engine.naclip.settings import STUFF, NaclipSettings
from faseg_cli.engine.scores import labels_from_scores
from faseg_cli.evaluation.datasets import dataset_names, get_dataset
from faseg_cli.vocabularies import validate_classes


@pytest.fixture(scope="session")
def clip_model(tiny_clip_dir):
    return NaclipModel.load(str(tiny_clip_dir), torch.device("cpu"), torch.float32)


def test_load_by_method_gives_the_same_contract(tiny_clip_dir, photo):
    segmenter = Segmenter.load(str(tiny_clip_dir), method="naclip")
    assert isinstance(segmenter, NaclipSegmenter) and segmenter.method == "naclip"
    result = segmenter.segment(photo, ["dog", "person"])
    assert result.classes == ["dog", "person"] and result.labels.shape == (48, 64)
    assert result.labels.dtype == np.uint8 and result.labels.max() <= 2
    assert result.scores.shape == (2, 48, 64) and result.background.shape == (48, 64)
    background = torch.from_numpy(result.background)
    expected = labels_from_scores(torch.from_numpy(result.scores), segmenter.settings.threshold, background)
    assert np.array_equal(result.labels, expected.numpy())
    assert sum(result.fractions().values()) == pytest.approx(1.0)


def test_without_background_queries_every_pixel_gets_a_class(clip_model, photo):
    segmenter = NaclipSegmenter(clip_model, NaclipSettings(background=(), threshold=0.0, window=0))
    result = segmenter.segment(photo, ["dog", "person", "car"])
    assert result.background is None and result.labels.min() >= 1
    assert np.allclose(result.scores.sum(0), np.ones((48, 64)), rtol=1e-5, atol=1e-5)  # one query per class


def test_empty_class_list_is_all_background_without_the_model(clip_model, photo):
    result = NaclipSegmenter(clip_model).segment_batch([photo, photo], [[], ["dog"]])
    assert result[0].classes == [] and not result[0].labels.any() and result[0].scores.shape == (0, 48, 64)
    assert result[1].classes == ["dog"]


def test_requested_classes_are_dropped_from_the_background_queries(clip_model, photo, monkeypatch):
    asked = []
    original = clip_model.query_features
    monkeypatch.setattr(clip_model, "query_features", lambda names: asked.append(names) or original(names))
    NaclipSegmenter(clip_model).segment(photo, ["Sky", "dog"])
    assert asked == [[s for s in STUFF if s != "sky"] + ["Sky", "dog"]]


def test_window_batching_does_not_change_the_logits(clip_model, photo, monkeypatch):
    segmenter = NaclipSegmenter(clip_model, NaclipSettings(pamr_steps=0))
    batched = segmenter.segment(photo, ["dog"]).scores
    monkeypatch.setattr(naclip_model, "WINDOW_BATCH", 1)
    monkeypatch.setattr("faseg_cli.engine.naclip.segmenter.WINDOW_BATCH", 1)
    assert np.allclose(segmenter.segment(photo, ["dog"]).scores, batched, rtol=1e-5, atol=1e-5)


def test_dataset_configs_follow_the_published_ones():
    voc, context, voc20 = (NaclipSettings.for_dataset(n) for n in ("voc", "context", "voc20"))
    assert (voc.window, voc.threshold, voc.background) == (0, 0.1, STUFF)
    assert (context.window, context.threshold, context.background) == (224, 0.1, ("background",))
    assert (voc20.window, voc20.threshold, voc20.background) == (0, 0.0, ())
    assert NaclipSettings.for_dataset("cityscapes").short_side == 560
    assert NaclipSettings.for_dataset("ade").background == ()
    for name in dataset_names():  # the published name files' background line is the config's
        published, settings = get_dataset(name).published_queries(), NaclipSettings.for_dataset(name)
        assert published.background == settings.background and settings.background_ties


def test_every_prompt_is_a_query_and_a_class_scores_its_best(clip_model, photo):
    segmenter = NaclipSegmenter(clip_model, NaclipSettings(background=(), threshold=0.0, window=0))
    classes = [["person", "man", "woman"], "tv monitor|television", "dog"]
    queries, owners, background = segmenter.queries(validate_classes(classes))
    assert owners.tolist() == [0, 0, 0, 1, 1, 2] and not background
    assert torch.equal(
        queries, clip_model.query_features(["person", "man", "woman", "tv monitor", "television", "dog"])
    )
    grouped = segmenter.segment(photo, classes)
    each = segmenter.segment(photo, ["person", "man", "woman", "tv monitor", "television", "dog"])
    assert grouped.classes == ["person", "tv monitor", "dog"]
    expected = np.stack([each.scores[:3].max(0), each.scores[3:5].max(0), each.scores[5]])
    assert np.allclose(grouped.scores, expected, atol=1e-6)


def test_segment_drops_a_requested_prompt_from_the_background_queries(clip_model):
    settings = NaclipSettings(background=("sky", "bed", "wall"))
    _, owners, _ = NaclipSegmenter(clip_model, settings).queries(validate_classes(["cat|bed", "dog"]))
    assert owners.tolist() == [0, 0, 1, 1, 2]  # sky, wall; cat, bed; dog
    tied = NaclipSegmenter(clip_model, settings.with_(background_ties=True)).queries(validate_classes(["cat|bed"]))
    assert tied[1].tolist() == [0, 0, 0, 1, 1]  # published: bed stays a background query too
