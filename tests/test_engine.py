"""The Segmenter on the tiny random model: shapes, batching, flipping, options."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.scores import minmax
from faseg_cli.errors import UsageError
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
    np.testing.assert_allclose(result.scores, result.scores[..., ::-1], rtol=1e-5, atol=1e-5)


def test_batch_equals_one_by_one(segmenter, photo):
    """A result does not depend on the other images of its batch: maps, scores and labels are identical."""
    other = photo.transpose(Image.Transpose.ROTATE_90)
    batch = segmenter.segment_batch([photo, other], [["dog"], ["cat", "person", "car"]], ["a dog", None], True)
    alone = [
        segmenter.segment(photo, ["dog"], "a dog", True),
        segmenter.segment(other, ["cat", "person", "car"], keep_maps=True),
    ]
    for b, a in zip(batch, alone):
        assert b.classes == a.classes and b.prompt == a.prompt
        for r in a.maps.cross:
            assert torch.equal(b.maps.cross[r], a.maps.cross[r])
            assert torch.equal(b.maps.self_[r], a.maps.self_[r])
        assert torch.equal(b.maps.refined, a.maps.refined)
        assert np.array_equal(b.scores, a.scores) and np.array_equal(b.labels, a.labels)


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
    np.testing.assert_allclose(result.scores, expected[0].numpy(), rtol=1e-6, atol=1e-6)


def test_inversions_record_on_the_latent_they_name(tiny_model, photo, monkeypatch):
    """ddim: pass 1 at t=1 on x0, DDIM step, recorded pass at t=1; none: one pass at t=0; euler: v(x0, 0), step."""
    from faseg_cli.engine.diffusion.schedule import ddim_step, euler_step

    calls = []
    real_pass = tiny_model.unet_pass

    def spy(latents, timestep, text):
        calls.append((latents.clone(), timestep, tiny_model.recorder.active))
        return real_pass(latents, timestep, text)

    monkeypatch.setattr(tiny_model, "unet_pass", spy)
    scores = {}
    for inversion in ("ddim", "none", "euler"):
        calls.clear()
        scores[inversion] = (
            Segmenter(tiny_model, segmenter_settings(inversion=inversion)).segment(photo, ["dog"]).scores
        )
        x0 = calls[0][0]
        if inversion == "none":
            assert [(t, rec) for _, t, rec in calls] == [(0, True)]
            continue
        assert [(t, rec) for _, t, rec in calls] == [(1 if inversion == "ddim" else 0, False), (1, True)]
        assert not torch.equal(calls[1][0], x0)
    assert not np.allclose(scores["ddim"], scores["none"]) and not np.allclose(scores["ddim"], scores["euler"])
    x0, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(
        ddim_step(x0, eps, tiny_model.alphas, 1), 0.99957 * x0 + 0.01214 * eps, atol=2e-5, rtol=0
    )
    torch.testing.assert_close(euler_step(x0, eps, 500), x0 - 0.5 * eps)


def test_default_is_the_published_two_pass_ddim(segmenter):
    assert segmenter.settings.inversion == "ddim" and segmenter.settings.record_timestep == 1
    assert segmenter_settings(inversion="none").record_timestep == 0
    with pytest.raises(UsageError, match="--inversion"):
        segmenter_settings(inversion="ddpm")


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
    assert np.array_equal(a.scores, b.scores)


def segmenter_settings(**changes):
    from faseg_cli.engine.faseg.settings import FasegSettings

    return FasegSettings(resolution=TEST_RESOLUTION, **changes)
