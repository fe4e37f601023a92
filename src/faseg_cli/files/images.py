"""Read images safely and turn them into model input (SPEC §2.1).

Every way a file can be unusable becomes an ``InputError`` naming the file and the
reason. Pixels are taken in displayed orientation (EXIF applied), converted to 8-bit
RGB whatever the source mode (CMYK, grayscale, palette, alpha, 16-bit). An image over
the pixel limit (``MAX_PIXELS``, or ``FASEG_MAX_MEGAPIXELS``) is refused from its header,
before any pixel is decoded.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faseg_cli.errors import InputError

MAX_PIXELS = 40_000_000
"""The default pixel limit (40 MP): what one image may have, checked from its header."""
LIMIT_VARIABLE = "FASEG_MAX_MEGAPIXELS"
"""The environment variable that sets the limit of the commands, in megapixels (``inf``: Pillow's own)."""
ROWS = 256
"""Rows converted at a time by ``to_rgb`` (its float copies stay a few MB)."""


class ImageTooLarge(InputError):
    """An image over the pixel limit (its size and the limit are in the message)."""


def parse_megapixels(text: str) -> int | None:
    """The pixel count of a limit given in megapixels (``40``, ``2.5``); None for ``inf`` (Pillow's own
    decompression-bomb guard only). ``ValueError`` for anything else (zero, negative, nan, not a number)."""
    value = float(text)
    if math.isinf(value) and value > 0:
        return None
    if not value > 0 or math.isnan(value):
        raise ValueError(f"{text}: expected a positive number of megapixels (or inf)")
    return max(1, round(value * 1e6))


def pixel_limit() -> int | None:
    """The limit of the commands: ``FASEG_MAX_MEGAPIXELS`` if set (``InputError`` if malformed), else ``MAX_PIXELS``."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return MAX_PIXELS
    try:
        return parse_megapixels(text)
    except ValueError:
        raise InputError(f"{LIMIT_VARIABLE}={text}: expected a positive number of megapixels (or inf)") from None


def megapixels(pixels: int) -> str:
    """``40 MP``, ``0.5 MP``: a pixel count for messages."""
    return f"{pixels / 1e6:.3g} MP"


def image_extensions() -> frozenset[str]:
    """File extensions Pillow can read (lower case, with the dot)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def load_image(path: str | Path, max_pixels: int | None | str = "env") -> Image.Image:
    """Open ``path`` as an RGB image in displayed orientation, or raise ``InputError``.

    ``max_pixels``: the pixel limit (None: Pillow's bomb guard only); by default ``pixel_limit()``.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a directory")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    return _decode(path, path, pixel_limit() if max_pixels == "env" else max_pixels)


def decode_image(data: bytes, name: str, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """The image in ``data`` (an uploaded file called ``name``), read exactly as ``load_image`` reads files."""
    if not data:
        raise InputError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(source, name, max_pixels: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if max_pixels else "error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_size(name, img, max_pixels)
                img.load()
                ImageOps.exif_transpose(img, in_place=True)
                return to_rgb(img)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = re.search(r"\((\d+) pixels\)", str(exc))
        found = f"{megapixels(int(size[1]))}; " if size else ""
        bound = 2 * Image.MAX_IMAGE_PIXELS if isinstance(exc, Image.DecompressionBombError) else Image.MAX_IMAGE_PIXELS
        raise ImageTooLarge(
            f"{name}: image too large ({found}the limit is {megapixels(bound)}, Pillow's decompression-bomb guard)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: truncated or corrupt image data ({exc})") from None


def _check_size(name, img: Image.Image, max_pixels: int | None) -> None:
    width, height = img.size
    if width < 1 or height < 1:
        raise InputError(f"{name}: image has no pixels ({width}x{height})")
    if max_pixels and width * height > max_pixels:
        raise ImageTooLarge(
            f"{name}: image too large ({width}x{height}, {megapixels(width * height)}; "
            f"the limit is {megapixels(max_pixels)})"
        )


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB copy of any Pillow image; high-bit-depth grayscale is scaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img)
        peak = float(values.max(initial=0))
        top = 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
        grey = np.empty(values.shape, np.uint8)
        for start in range(0, values.shape[0], ROWS):
            rows = values[start : start + ROWS].astype(np.float64)
            grey[start : start + ROWS] = np.clip(rows / top * 255.0 + 0.5, 0, 255)
        img = Image.fromarray(grey)
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def model_input(img: Image.Image, resolution: int) -> np.ndarray:
    """``(3, R, R)`` float32 in [-1, 1]: bicubic resize without keeping the aspect, as the reference does."""
    resized = img.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return 2.0 * (np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0) - 1.0


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map to ``size`` = (width, height) with nearest neighbour (PIL's, as the reference)."""
    return np.asarray(Image.fromarray(labels.astype(np.uint8)).resize(size, Image.Resampling.NEAREST))
