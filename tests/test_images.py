"""Every way an image file can be awkward or broken."""

import os

import numpy as np
import pytest
from PIL import Image

from faseg_cli.errors import InputError
from faseg_cli.files.images import ImageTooLarge, load_image, model_input, resize_labels
from tests import imagefiles


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: p.write_bytes(b"") or p, "empty file"),
        (imagefiles.truncated_jpeg, "truncated or corrupt"),
        (lambda p: p.write_text("hello, I am text") or p, "not an image"),
        (lambda p: p.write_bytes(os.urandom(300)) or p, "not an image"),
    ],
    ids=["zero-byte", "truncated-jpeg", "text-named-jpg", "random-bytes"],
)
def test_broken_files_raise_one_clear_error(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(InputError, match=reason) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file(tmp_path):
    path = imagefiles.rgb(tmp_path / "locked.png")
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        load_image(path)


@pytest.mark.parametrize("name", ["CMYK", "L", "P", "RGBA", "I;16"])
def test_every_mode_becomes_8bit_rgb(tmp_path, name):
    img = load_image(imagefiles.mode(tmp_path / "x.img", name))
    assert img.mode == "RGB" and img.size == (24, 16)


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    img = load_image(imagefiles.mode(tmp_path / "deep.png", "I;16"))
    values = np.asarray(img)[..., 0]
    assert values.max() > 200 and values.min() == 0 and len(np.unique(values)) > 50


def test_exif_orientation_is_applied(tmp_path):
    assert load_image(imagefiles.exif_rotated(tmp_path / "r.jpg")).size == (20, 40)


def test_one_pixel_image(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    assert model_input(load_image(path), 64).shape == (3, 64, 64)


def test_too_large_images_are_refused_from_the_header(tmp_path, monkeypatch):
    huge = tmp_path / "huge.png"
    huge.write_bytes(imagefiles.bomb_png(9000, 5000))
    with pytest.raises(ImageTooLarge, match=r"^.*huge.png: image too large \(9000x5000, 45 MP; the limit is 40 MP\)$"):
        load_image(huge)
    path = imagefiles.rgb(tmp_path / "big.png", 100, 100)
    monkeypatch.setenv("FASEG_MAX_MEGAPIXELS", "0.005")
    with pytest.raises(ImageTooLarge, match=r"\(100x100, 0.01 MP; the limit is 0.005 MP\)"):
        load_image(path)
    monkeypatch.setenv("FASEG_MAX_MEGAPIXELS", "inf")
    assert load_image(path).size == (100, 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    with pytest.raises(ImageTooLarge, match=r"\(0.01 MP; the limit is 0.005 MP, Pillow's decompression-bomb guard\)"):
        load_image(path)
    monkeypatch.setenv("FASEG_MAX_MEGAPIXELS", "nan")
    with pytest.raises(InputError, match="FASEG_MAX_MEGAPIXELS=nan: expected a positive number of megapixels"):
        load_image(path)


def test_tall_16bit_images_convert_band_by_band_as_a_whole(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (700, 9), dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "tall.png")
    expected = np.clip(values.astype(np.float64) / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(load_image(tmp_path / "tall.png"))[..., 0], expected)


def test_model_input_range_and_resize_labels():
    img = Image.fromarray(np.array([[[0, 255, 128]]], dtype=np.uint8))
    x = model_input(img, 64)
    assert x.dtype == np.float32 and x[0].min() == -1 and x[1].max() == 1
    labels = np.arange(4, dtype=np.uint8).reshape(2, 2)
    assert resize_labels(labels, (4, 2)).tolist() == [[0, 0, 1, 1], [2, 2, 3, 3]]
