"""Shared fixtures: isolated user directories, offline Hub, one tiny random model per session."""

import numpy as np
import pytest
import torch
from PIL import Image

from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.models.random_diffusion import write_random_model

TEST_RESOLUTION = 128


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Never touch the user's cache or the network; run each test in its own working directory."""
    monkeypatch.setenv("FASEG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def shared_cache(tmp_path_factory, monkeypatch):
    """A FASEG_CACHE_DIR shared by the tests that ask for it: the generated models (tiny-random,
    tiny-blip, tiny-clip) and CLIP text embeddings are built once per session."""
    path = tmp_path_factory.getbasetemp() / "shared-cache"
    monkeypatch.setenv("FASEG_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random-weight model in the real on-disk layout (unet/, vae/, text_encoder/, tokenizer/)."""
    return write_random_model(tmp_path_factory.mktemp("models") / "tiny", "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from faseg_cli.engine.diffusion.model import DiffusionModel

    return DiffusionModel.load(tiny_model_dir, torch.device("cpu"), torch.float32)


@pytest.fixture
def model_args(tiny_model_dir):
    """The command-line options that select the tiny model at the test resolution."""
    return ["--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)]


@pytest.fixture
def segmenter(tiny_model):
    from faseg_cli.engine.faseg.segmenter import Segmenter

    return Segmenter(tiny_model, FasegSettings(resolution=TEST_RESOLUTION))


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny random CLIP (TagCLIP, caption matching and NACLIP tests)."""
    from faseg_cli.models.random_clip_blip import write_tiny_clip

    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def photo():
    """A small deterministic RGB image."""
    rng = np.random.RandomState(0)
    return Image.fromarray((rng.rand(48, 64, 3) * 255).astype(np.uint8))
