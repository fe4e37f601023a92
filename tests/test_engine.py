"""The Segmenter on the tiny random model: shapes, batching, flipping, options."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from faseg_cli.engine import Segmenter
from faseg_cli.errors import UsageError
from faseg_cli.refine import minmax
from tests.conftest import TEST_RESOLUTION


def test_result_shapes_and_label_meaning(segmenter, photo):
    result = segmenter.segment(photo, ["dog", "tv monitor", "aeroplane"], keep_maps=True)
    assert result.labels.shape == (48, 64) and result.labels.dtype == np.uint8
    assert result.labels.max() <= 3
    assert result.scores.shape == (3, TEST_RESOLUTION, TEST_RESOLUTION)
    assert result.prompt == "a photo of dog, tv monitor, aeroplane ; dog, tv monitor, aeroplane"
    assert sum(result.fractions().values()) == pytest.approx(1.0)
    latent = TEST_RESOLUTION // 8
    maps = result.maps
    assert {r: tuple(t.shape) for r, t in maps.cross.items()} == {r: (2, 3, r, r) for r in (2, 4, 8, 16)}
    assert {r: tuple(t.shape) for r, t in maps.self_.items()} == {r: (2, r * r, r * r) for r in (2, 4, 8, 16)}
    assert maps.fused.shape == maps.refined.shape == (2, 3, latent, latent)


def test_mirror_symmetric_image_gives_mirror_symmetric_scores(segmenter):
    rng = np.random.RandomState(3)
    half = rng.rand(64, 32, 3)
    image = Image.fromarray((np.concatenate([half, half[:, ::-1]], axis=1) * 255).astype(np.uint8))
    result = segmenter.segment(image, ["dog", "cat"])
    torch.testing.assert_close(result.scores, result.scores.flip(-1), rtol=1e-5, atol=1e-5)


def test_batch_equals_one_by_one(segmenter, photo):
    """Recorded maps agree to fp32 rounding; the final scores more loosely, because min-max
    normalisation amplifies rounding on a random model's nearly uniform self-attention."""
    other = photo.transpose(Image.Transpose.ROTATE_90)
    batch = segmenter.segment_batch([photo, other], [["dog"], ["cat", "person", "car"]], ["a dog", None], True)
    alone = [
        segmenter.segment(photo, ["dog"], "a dog", True),
        segmenter.segment(other, ["cat", "person", "car"], keep_maps=True),
    ]
    for b, a in zip(batch, alone):
        assert b.classes == a.classes and b.prompt == a.prompt
        for r in a.maps.cross:
            torch.testing.assert_close(b.maps.cross[r], a.maps.cross[r], rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(b.maps.self_[r], a.maps.self_[r], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(b.maps.fused, a.maps.fused, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(b.scores, a.scores, rtol=0, atol=2e-2)
        assert b.labels.shape == a.labels.shape


def test_empty_class_list_is_all_background(segmenter, photo):
    result = segmenter.segment(photo, [])
    assert result.classes == [] and not result.labels.any() and result.labels.shape == (48, 64)


def test_without_flip_and_without_refinement(tiny_model, photo):
    base = Segmenter(tiny_model, segmenter_settings(flip=False, refine=False))
    result = base.segment(photo, ["dog", "cat"], keep_maps=True)
    assert result.maps.fused.shape[0] == 1
    expected = F.interpolate(
        minmax(result.maps.fused), size=(TEST_RESOLUTION,) * 2, mode="bicubic", align_corners=False
    )
    torch.testing.assert_close(result.scores, expected[0])


def test_timestep_inversion_changes_the_maps(tiny_model, photo):
    at_zero = Segmenter(tiny_model, segmenter_settings()).segment(photo, ["dog"])
    inverted = Segmenter(tiny_model, segmenter_settings(timestep=500)).segment(photo, ["dog"])
    assert not torch.allclose(at_zero.scores, inverted.scores)


def test_many_classes_run_in_one_pass(segmenter, photo):
    classes = [f"thing{letter}" for letter in "abcdefghijklmnopqrst"]
    result = segmenter.segment(photo, classes)
    assert result.scores.shape[0] == 20 and result.labels.max() <= 20


def test_bad_class_lists_are_usage_errors(segmenter, photo):
    with pytest.raises(UsageError):
        segmenter.segment(photo, ["dog", "dog"])


def test_deterministic(segmenter, photo):
    a = segmenter.segment(photo, ["dog", "cat"])
    b = segmenter.segment(photo, ["dog", "cat"])
    assert torch.equal(a.scores, b.scores)


def segmenter_settings(**changes):
    from faseg_cli.settings import FasegSettings

    return FasegSettings(resolution=TEST_RESOLUTION, **changes)
