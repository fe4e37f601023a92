"""Template-ensemble text embeddings and their disk cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faseg_cli.candidates import text_embeddings
from faseg_cli.word_lists import templates


class FakeEncoder:
    """Deterministic 'CLIP': each text maps to a normalised vector derived from its hash."""

    fingerprint = "fake-model"

    def __init__(self):
        self.calls = 0

    def encode_text(self, texts):
        self.calls += 1
        rows = [torch.tensor([float(len(t)), float(sum(map(ord, t)) % 7 + 1), 1.0]) for t in texts]
        return F.normalize(torch.stack(rows), dim=-1)


def test_the_templates_are_the_80_imagenet_and_5_scene_ones():
    shipped = templates()
    assert len(shipped) == len(set(shipped)) == 85
    assert all(t.count("{}") == 1 for t in shipped)
    assert shipped[-5:] == (
        "there is a {} in the scene.",
        "there is the {} in the scene.",
        "this is a {} in the scene.",
        "this is the {} in the scene.",
        "this is one {} in the scene.",
    )


def test_ensemble_is_the_renormalised_mean_of_normalised_prompts():
    encoder = FakeEncoder()
    chosen = ("a photo of a {}.", "itap of my {}.")
    got = text_embeddings.ensemble(encoder, ["dog", "tv monitor"], chosen)
    for row, name in zip(got, ["dog", "tv monitor"], strict=True):
        prompts = encoder.encode_text([t.format(name) for t in chosen])
        assert torch.allclose(row, F.normalize(prompts.mean(0), dim=0))


def test_second_call_reads_the_cache(monkeypatch):
    encoder = FakeEncoder()
    classes = ["cached dog", "cached cat"]
    first = text_embeddings.class_embeddings(encoder, classes)
    assert text_embeddings.cache_path(encoder, classes, templates()).is_file()

    def refuse(texts):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(encoder, "encode_text", refuse)
    assert torch.equal(text_embeddings.class_embeddings(encoder, classes), first)


def test_cache_key_depends_on_model_classes_and_templates():
    encoder, other = FakeEncoder(), FakeEncoder()
    other.fingerprint = "another-model"
    base = text_embeddings.cache_path(encoder, ["dog"], ("{}",))
    assert base != text_embeddings.cache_path(other, ["dog"], ("{}",))
    assert base != text_embeddings.cache_path(encoder, ["dog", "cat"], ("{}",))
    assert base != text_embeddings.cache_path(encoder, ["dog"], ("a {}",))


def test_unwritable_cache_still_returns_embeddings(monkeypatch, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("FASEG_CACHE_DIR", str(blocked))
    got = text_embeddings.class_embeddings(FakeEncoder(), ["dog"], ("{}",))
    assert got.shape == (1, 3)
    assert "Could not cache" in caplog.text


def test_real_encoder_ensemble_is_normalised(clip_encoder):
    got = text_embeddings.ensemble(clip_encoder, ["dog", "tv monitor"], templates()[:4])
    assert got.shape == (2, clip_encoder.model.config.projection_dim)
    assert torch.allclose(got.norm(dim=-1), torch.ones(2))
