"""End to end on tiny random BLIP + CLIP loaded from local directories, and the model registry."""

from __future__ import annotations

import shutil

import pytest
import torch

from faseg_cli.candidates.pipeline import CandidateGenerator
from faseg_cli.candidates.tagclip import TagClip
from faseg_cli.engine.blip import Captioner
from faseg_cli.errors import UsageError, WeightsError
from faseg_cli.models.registry import BLIP, CLIP, MODELS, lookup
from faseg_cli.models.weights import resolve_model, select_files
from faseg_cli.vocabularies import Vocabulary

SMALL = Vocabulary("small", ("dog", "person", "tv monitor", "sky"), {"puppy": "dog"})


@pytest.fixture(scope="module")
def generator(tiny_clip_dir, tiny_blip_dir, cache_root):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FASEG_CACHE_DIR", str(cache_root))
        return CandidateGenerator.load(SMALL, clip_model=str(tiny_clip_dir), caption_model=str(tiny_blip_dir))


def test_generator_end_to_end(generator, noise_image):
    images = [noise_image(64, 48, seed=1), noise_image(40, 90, seed=2).convert("L")]
    results = generator.generate(images)
    assert len(results) == 2
    for found in results:
        assert isinstance(found.caption, str)
        assert list(found.scores) == list(SMALL.classes)
        assert found.tagclip  # TagCLIP always labels at least the best class
        assert set(found.candidates) == set(found.tagclip) | set(found.caption_matches)
        assert list(found.candidates) == [c for c in SMALL.classes if c in found.candidates]
    assert [r.candidates for r in generator.generate(images)] == [r.candidates for r in results]


def test_given_captions_replace_blip(generator, noise_image):
    found = generator.generate([noise_image(32, 32)], captions=["a man with his puppy watching tv"])[0]
    assert found.caption == "a man with his puppy watching tv"
    assert {"dog", "person", "tv monitor"} <= set(found.caption_matches)


def test_sources(tiny_clip_dir, noise_image):
    image = noise_image(48, 48)
    tagclip_only = CandidateGenerator.load(SMALL, source="tagclip", clip_model=str(tiny_clip_dir), caption_model=None)
    found = tagclip_only.generate([image])[0]
    assert found.caption is None and found.caption_matches == () and found.candidates == found.tagclip
    captions_only = CandidateGenerator.load(SMALL, source="caption", clip_model=str(tiny_clip_dir), caption_model=None)
    found = captions_only.generate([image], captions=["a dog"])[0]
    assert found.scores == {} and found.tagclip == () and found.candidates == found.caption_matches
    assert "dog" in found.candidates
    with pytest.raises(UsageError, match="needs captions"):
        captions_only.generate([image])
    with pytest.raises(UsageError, match="1 captions given for 2 images"):
        captions_only.generate([image, image], captions=["a dog"])
    with pytest.raises(UsageError, match="candidate source"):
        CandidateGenerator.load(SMALL, source="clip", clip_model=str(tiny_clip_dir))


def test_distractors_that_are_vocabulary_classes_are_not_added_twice(generator):
    names = generator.tagclip.names
    assert names[: len(SMALL.classes)] == SMALL.classes
    assert "sky" not in names[len(SMALL.classes) :] and "grass" in names
    assert isinstance(generator.tagclip, TagClip)


def test_captions_are_deterministic_and_independent_of_the_batch(tiny_blip_dir, noise_image):
    captioner = Captioner.load(str(tiny_blip_dir))
    images = [noise_image(50, 40, seed=s) for s in range(3)]
    batched = captioner.caption(images, batch_size=3)
    assert batched == [captioner.caption([image])[0] for image in images]
    assert all(isinstance(c, str) for c in batched)


def test_registry_pins_blip_and_clip():
    assert MODELS["blip"] is BLIP and MODELS["clip"] is CLIP
    assert lookup("Salesforce/blip-image-captioning-large") is BLIP
    assert lookup("openai/clip-vit-base-patch16") is CLIP
    for source in (BLIP, CLIP):
        assert len(source.revision) == 40 and int(source.revision, 16) >= 0


def test_download_selection_takes_configs_tokenizer_and_safetensors():
    files = [
        ".gitattributes", "README.md", "config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5",
        "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
        "vocab.txt",
    ]  # fmt: skip
    assert select_files(files, BLIP) == [
        "config.json", "model.safetensors", "preprocessor_config.json", "special_tokens_map.json",
        "tokenizer.json", "tokenizer_config.json", "vocab.txt",
    ]  # fmt: skip


def test_local_directories_are_checked_and_offline_hub_fails_in_one_line(tiny_blip_dir, tmp_path):
    assert resolve_model(str(tiny_blip_dir), BLIP) == tiny_blip_dir
    broken = tmp_path / "blip"
    shutil.copytree(tiny_blip_dir, broken)
    (broken / "vocab.txt").unlink()
    with pytest.raises(WeightsError, match="missing vocab.txt"):
        resolve_model(str(broken), BLIP)
    with pytest.raises(WeightsError, match="Hub is offline") as failure:
        resolve_model("clip", CLIP)
    assert "\n" not in str(failure.value)


def test_scores_are_probabilities(generator, noise_image):
    scores = torch.tensor(list(generator.generate([noise_image(80, 64)])[0].scores.values()))
    assert ((scores >= 0) & (scores <= 1)).all()
