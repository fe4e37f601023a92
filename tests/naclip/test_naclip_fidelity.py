"""faseg's NACLIP against the published code's own masks and logits (fixtures/README.md says how they were made)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faseg_cli.engine.naclip.model import NaclipModel
from faseg_cli.engine.naclip.segmenter import NaclipSegmenter
from faseg_cli.engine.naclip.settings import NaclipSettings

FIXTURES = Path(__file__).parent / "fixtures"
CASES = json.loads((FIXTURES / "cases.json").read_text())


@pytest.fixture(scope="module")
def arrays():
    return np.load(FIXTURES / "images.npz"), np.load(FIXTURES / "published.npz")


@pytest.fixture(scope="module")
def model():
    return NaclipModel.load(str(FIXTURES / "model"), torch.device("cpu"), torch.float32)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_masks_and_logits_match_the_published_code(case, model, arrays):
    images, published = arrays
    name, step = case["name"], case["step"]
    background = tuple(case["background"].split(", ")) if case["background"] else ()
    settings = NaclipSettings(window=case["window"], threshold=case["threshold"], background=background)
    segmenter = NaclipSegmenter(model, settings)
    picture = Image.fromarray(images[name])
    expected = published[f"{name}/mask"] + (0 if background else 1)  # theirs: class k-1 when no background
    counts = np.bincount(expected.ravel(), minlength=len(case["classes"]) + bool(background)) / expected.size
    assert (counts > 0.02).sum() >= 2, "the fixture should exercise several labels"

    result = segmenter.segment(picture, case["classes"])
    assert result.labels.shape == expected.shape
    assert (result.labels == expected).mean() >= 0.999

    queries, _, _ = segmenter.queries(case["classes"])
    logits = segmenter.logits(picture, queries)[:, ::step, ::step]
    assert torch.allclose(logits, torch.from_numpy(published[f"{name}/logits"]).float(), atol=1e-3, rtol=0)
