"""NACLIP on a large image: refined in column stripes (bounded memory), with the labels of the whole image."""

import numpy as np
import pytest
import torch
from PIL import Image

from faseg_cli.engine.naclip import segmenter as naclip_segmenter
from faseg_cli.engine.naclip.model import NaclipModel
from faseg_cli.engine.naclip.segmenter import NaclipSegmenter
from faseg_cli.engine.naclip.settings import NaclipSettings


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (5, 16, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((640, 200), Image.Resampling.BILINEAR)


@pytest.mark.parametrize(
    "settings",
    [
        NaclipSettings(background=(), threshold=0.0, pamr_steps=2),
        NaclipSettings(background=("sky", "wall"), threshold=0.3, pamr_steps=2, window=0),
        NaclipSettings(background=(), threshold=0.0, pamr_steps=0),
    ],
)
def test_stripes_give_the_labels_of_the_whole_image(tiny_clip_dir, picture, settings, monkeypatch):
    model = NaclipModel.load(str(tiny_clip_dir), torch.device("cpu"), torch.float32)
    segmenter = NaclipSegmenter(model, settings)
    names = ["dog", "person", "car"]
    whole = segmenter.segment(picture, names)
    monkeypatch.setattr(naclip_segmenter, "STRIPE_PIXELS", 30_000)
    striped = segmenter.segment(picture, names)
    assert striped.labels.shape == whole.labels.shape == (200, 640)
    assert len(np.unique(whole.labels)) > 1, "a picture with a single label would prove nothing"
    assert np.mean(striped.labels != whole.labels) <= 1e-4
    rows, cols = striped.scores.shape[1:]
    assert striped.scores.shape[0] == 3 and (rows, cols) == (336, 1075)
    ys = ((np.arange(rows) + 0.5) * 200 / rows).astype(int)
    xs = ((np.arange(cols) + 0.5) * 640 / cols).astype(int)
    assert np.allclose(striped.scores, whole.scores[:, ys][:, :, xs], atol=1e-5)
    if whole.background is not None:
        assert np.array_equal(striped.background, whole.background[ys][:, xs])
    assert np.array_equal(striped.labels_at(settings.threshold), whole.labels_at(settings.threshold)[ys][:, xs])
