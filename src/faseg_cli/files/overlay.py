"""The overlay picture: the image tinted with the label colours, and a legend beside it.

The legend lies outside the picture, below a landscape one and to the right of a
portrait one, wrapped into as many columns or rows as it needs: no image is too
small, narrow or tall for it and nothing is clipped. The picture keeps the top-left
corner at the mask's pixel grid; images with both sides under ``MIN_SIDE`` are enlarged
by a whole factor (nearest neighbour, so each mask pixel stays a crisp square). Text
grows with the picture and each class name gets a font that has its glyphs (``fonts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from faseg_cli.files.fonts import font_for
from faseg_cli.files.palette import voc_colormap

MIN_SIDE = 256
ROWS = 256
"""Rows blended at a time by ``tint``."""
PANEL = (255, 255, 255)
INK = (20, 20, 20)
FAINT = (110, 110, 110)


@dataclass(frozen=True)
class LegendLayout:
    """The canvas size and the top-left corner of each legend cell; the picture sits at (0, 0)."""

    canvas: tuple[int, int]
    cells: list[tuple[int, int]]


def legend_layout(picture: tuple[int, int], widths: list[int], row: int, margin: int) -> LegendLayout:
    """Cells of ``widths`` x ``row`` pixels in lines below a landscape (or square) ``picture``, in
    columns right of a portrait one.

    Cells fill columns top to bottom, then left to right; each column is as wide as its
    widest cell. Below, the legend takes as many columns as fit the picture's width; to
    the right, as many rows as fit its height. Either way at least one cell per line,
    so the canvas grows past the picture rather than clip a cell.
    """
    width, height = picture
    count = len(widths)
    if width >= height:
        rows = next(
            r for r in range(1, count + 1) if sum(_column_widths(widths, r)) + 2 * margin <= width or r == count
        )
        origin = (margin, height + margin)
    else:
        fit = max(1, min(count, (height - 2 * margin) // row))
        rows = math.ceil(count / math.ceil(count / fit))
        origin = (width + margin, margin)
    lefts = np.cumsum([origin[0], *_column_widths(widths, rows)]).tolist()
    cells = [(lefts[i // rows], origin[1] + (i % rows) * row) for i in range(count)]
    right = max(width, lefts[-1] + margin)
    bottom = max(height, origin[1] + rows * row + margin)
    return LegendLayout((right, bottom), cells)


def _column_widths(widths: list[int], rows: int) -> list[int]:
    return [max(widths[i : i + rows]) for i in range(0, len(widths), rows)]


def tint(image: Image.Image, labels: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """``image`` blended with the VOC colour of each pixel's label (background left as is).

    Blended ``ROWS`` rows at a time: the float copies stay a few MB whatever the image's size.
    """
    colors = voc_colormap()
    pixels = np.asarray(image.convert("RGB"))
    tinted = np.empty_like(pixels)
    for top in range(0, pixels.shape[0], ROWS):
        base = pixels[top : top + ROWS].astype(np.float32)
        rows = labels[top : top + ROWS]
        blended = np.where(rows[..., None] > 0, (1 - alpha) * base + alpha * colors[rows], base)
        tinted[top : top + ROWS] = blended.astype(np.uint8)
    return Image.fromarray(tinted)


def enlarged(picture: Image.Image) -> Image.Image:
    """``picture`` scaled by the smallest whole factor that brings its longer side to ``MIN_SIDE``."""
    factor = math.ceil(MIN_SIDE / max(picture.size))
    if factor <= 1:
        return picture
    return picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)


def text_size(picture: tuple[int, int]) -> int:
    """Legend text height in pixels: 14 up to about 1 megapixel, then growing with the picture."""
    return max(14, round(math.sqrt(picture[0] * picture[1]) / 60))


def share_text(share: float) -> str:
    """A pixel share (0-1) as a percentage: ``"12%"``, ``"<1%"`` for a trace, ``"0%"`` for none."""
    percent = 100 * share
    return "<1%" if 0 < percent < 0.5 else f"{percent:.0f}%"


def overlay_image(image: Image.Image, labels: np.ndarray, classes: list[str], alpha: float = 0.5) -> Image.Image:
    """The tinted image with a legend of every class (its colour, name and share of the pixels)."""
    picture = enlarged(tint(image, labels, alpha))
    if not classes:
        return picture
    size = text_size(picture.size)
    shares = np.bincount(labels.ravel(), minlength=len(classes) + 1)[1:] / labels.size
    entries = [(name, share_text(share), font_for(name, size)) for name, share in zip(classes, shares)]
    digits = font_for("0123456789<%", size)
    gap = size // 2
    widths = [
        math.ceil(size + gap + font.getlength(name) + gap + digits.getlength(share)) + 2 * gap
        for name, share, font in entries
    ]
    row = round(1.7 * size)
    layout = legend_layout(picture.size, widths, row, gap)
    canvas = Image.new("RGB", layout.canvas, PANEL)
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    colors = voc_colormap()
    for k, (name, share, font) in enumerate(entries):
        x, y = layout.cells[k]
        middle = y + row // 2
        swatch = [x, middle - size // 2, x + size, middle + size // 2]
        draw.rectangle(swatch, fill=tuple(int(c) for c in colors[k + 1]), outline=INK)
        x += size + gap
        draw.text((x, middle), name, fill=INK, font=font, anchor="lm")
        x += font.getlength(name) + gap
        draw.text((x, middle), share, fill=INK if share != "0%" else FAINT, font=digits, anchor="lm")
    return canvas
