"""NACLIP's resize is OpenCV's ``cv2.resize(INTER_LINEAR)`` on uint8, bit for bit (cv2 is a test dependency only)."""

import cv2
import numpy as np
import pytest
import torch

from faseg_cli.engine.naclip.maths import rescaled_size, resize_bilinear


def ours(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return resize_bilinear(torch.from_numpy(pixels), size).numpy()


def theirs(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR).reshape(size[1], size[0], -1)


def test_equal_to_opencv_over_random_sizes_up_and_down():
    rng = np.random.default_rng(18)
    shapes = [(int(h), int(w), int(th), int(tw)) for h, w, th, tw in rng.integers(1, 260, (300, 4))]
    shapes += [(100, 80, 50, 40), (99, 81, 33, 27), (1, 1, 5, 7), (7, 5, 1, 1), (40, 60, 40, 97), (40, 60, 71, 60)]
    for h, w, th, tw in shapes:
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert np.array_equal(ours(pixels, (tw, th)), theirs(pixels, (tw, th))), (h, w, th, tw)


@pytest.mark.parametrize("height, width", [(180, 240), (375, 500), (1000, 1500), (336, 336)])
def test_equal_to_opencv_on_naclip_sizes(height, width):
    """Photos of typical sizes (a gradient with noise: smooth areas and edges) to NACLIP's short side 336."""
    rng = np.random.default_rng(height)
    ramp = np.linspace(0, 255, width)[None, :, None] * np.linspace(0.2, 1, height)[:, None, None]
    pixels = np.clip(ramp + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
    size = rescaled_size(width, height, 336, 2048)
    assert np.array_equal(ours(pixels, size), theirs(pixels, size))


def test_the_same_size_is_the_image_itself():
    pixels = torch.zeros(4, 5, 3, dtype=torch.uint8)
    assert resize_bilinear(pixels, (5, 4)) is pixels
