"""Read images safely and turn them into model input (SPEC §2.1).

Every way a file can be unusable becomes an ``InputError`` naming the file and the
reason. Pixels are taken in displayed orientation (EXIF applied), converted to 8-bit
RGB whatever the source mode (CMYK, grayscale, palette, alpha, 16-bit).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faseg_cli.errors import InputError


def image_extensions() -> frozenset[str]:
    """File extensions Pillow can read (lower case, with the dot)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def load_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an RGB image in displayed orientation, or raise ``InputError``."""
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
    return _decode(path, path)


def decode_image(data: bytes, name: str) -> Image.Image:
    """The image in ``data`` (an uploaded file called ``name``), read exactly as ``load_image`` reads files."""
    if not data:
        raise InputError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name)


def _decode(source, name) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_size(name, img)
                img.load()
                return to_rgb(ImageOps.exif_transpose(img))
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{_megapixels(int(pixels.group(1)))}; " if pixels else ""
        raise InputError(f"{name}: image too large ({size}{_limit()})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: truncated or corrupt image data ({exc})") from None


def _check_size(name, img: Image.Image) -> None:
    width, height = img.size
    if width < 1 or height < 1:
        raise InputError(f"{name}: image has no pixels ({width}x{height})")
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise InputError(f"{name}: image too large ({width}x{height}, {_megapixels(width * height)}; {_limit()})")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} MP"


def _limit() -> str:
    return f"the limit is {_megapixels(Image.MAX_IMAGE_PIXELS)}, Pillow's decompression-bomb guard"


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB copy of any Pillow image; high-bit-depth grayscale is scaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 255.0 if values.max(initial=0) <= 255 else 65535.0 if values.max() <= 65535 else values.max()
        img = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
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
