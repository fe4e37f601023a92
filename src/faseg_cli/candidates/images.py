"""Input images as the models see them."""

from __future__ import annotations

from PIL import Image, ImageOps


def rgb(image: Image.Image) -> Image.Image:
    """The image as displayed (EXIF orientation applied), in RGB."""
    return ImageOps.exif_transpose(image).convert("RGB")
