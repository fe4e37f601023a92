"""Fixtures for the candidate engine: tiny random BLIP and CLIP in temp dirs, a private cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    """A faseg cache shared by the session, so text embeddings are computed once per class list."""
    return tmp_path_factory.mktemp("faseg-cache")


@pytest.fixture(autouse=True)
def private_cache(cache_root, monkeypatch):
    monkeypatch.setenv("FASEG_CACHE_DIR", str(cache_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_blip_dir(tmp_path_factory):
    from faseg_cli.models.random_clip_blip import write_tiny_blip

    return write_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


@pytest.fixture(scope="session")
def clip_encoder(tiny_clip_dir):
    from faseg_cli.engine.clip import ClipEncoder

    return ClipEncoder.load(str(tiny_clip_dir))


@pytest.fixture
def noise_image():
    """Factory of reproducible random RGB images: ``noise_image(width, height, seed=0)``."""

    def make(width: int, height: int, seed: int = 0) -> Image.Image:
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))

    return make
