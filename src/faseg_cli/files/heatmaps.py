"""Heat-map grids of one class's attention, for people to read at a glance.

A grid shows the image, the class's cross-attention at each recorded resolution, the
fused cross-attention, the HARD-refined map, the final score and the class's mask,
each colour-mapped (dark = low, bright = high) and blended over the image, in rows of
at most ``COLUMNS`` panels with a title above each and one colour bar. Raw attention
values are small and their range differs between resolutions and images, so those
panels are min-max scaled each on its own (their title gives the range that maps to
0-1); the refined map and the final score are shown as they are, on the 0-1 scale the
threshold applies to (marked on the bar), and the mask panel outlines the class's pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from faseg_cli.files.fonts import font_for
from faseg_cli.files.palette import voc_colormap

COLUMNS = 5
TILE = 320
ALPHA = 0.6
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
FAINT = (100, 100, 100)
MARK = (0, 150, 255)
"""The threshold on the colour bar and the mask's outline."""

_ANCHORS = np.array(
    [
        (0, 0, 4),
        (40, 11, 84),
        (101, 21, 110),
        (159, 42, 99),
        (212, 72, 66),
        (245, 125, 21),
        (250, 193, 39),
        (252, 255, 164),
    ],
    float,
)


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 with an inferno-like scale."""
    position = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(max=len(_ANCHORS) - 2)
    frac = (position - low)[..., None]
    return ((1 - frac) * _ANCHORS[low] + frac * _ANCHORS[low + 1]).astype(np.uint8)


@dataclass(frozen=True)
class Panel:
    """One picture of the grid.

    ``kind``: ``"image"`` (no values), ``"minmax"`` (values min-max scaled on their
    own), ``"absolute"`` (values shown as they are on the 0-1 scale) or ``"mask"`` (0/1).
    """

    title: str
    kind: str = "image"
    values: np.ndarray | None = None

    def scaled(self) -> np.ndarray:
        """The values on the colour bar's 0-1 scale."""
        if self.kind != "minmax":
            return np.clip(self.values, 0, 1)
        low, high = float(self.values.min()), float(self.values.max())
        return (self.values - low) / (high - low) if high > low else np.zeros_like(self.values)

    def scale_note(self) -> str:
        """The second title line: how the values map to the colour bar."""
        if self.kind == "image":
            return "input"
        if self.kind == "mask":
            return f"{100 * float(self.values.mean()):.1f}% of the pixels"
        low, high = float(self.values.min()), float(self.values.max())
        if self.kind == "minmax":
            return f"min-max scaled ({low:.2g} to {high:.2g})"
        return f"not rescaled ({low:.2f} to {high:.2f})"


def class_panels(result, k: int) -> list[Panel]:
    """The pictures of class ``k`` (0-based) of ``result`` (a ``Segmentation`` holding its maps), in grid order."""
    maps = result.maps
    panels = [Panel("image")]
    panels += [Panel(f"cross-attention {r}x{r}", "minmax", _array(maps.cross[r][0, k])) for r in sorted(maps.cross)]
    panels.append(Panel("fused cross-attention", "minmax", _array(maps.fused[0, k])))
    panels += [Panel(title, "minmax", _array(step[0, k])) for title, step in maps.steps.items()]
    panels += [
        Panel(
            f"refined ({maps.refinement})", "absolute" if maps.refined_scaled else "minmax", _array(maps.refined[0, k])
        ),
        Panel("final score", "absolute", _array(result.scores[k])),
        Panel("mask", "mask", (result.labels == k + 1).astype(np.float32)),
    ]
    return panels


def _array(values) -> np.ndarray:
    return torch.as_tensor(values).detach().float().cpu().numpy()


def grid_shape(count: int, columns: int = COLUMNS) -> tuple[int, int]:
    """``(columns, rows)`` for ``count`` panels: the fewest rows of at most ``columns``, filled evenly."""
    rows = math.ceil(count / columns)
    return math.ceil(count / rows), rows


def tile_size(image: Image.Image, tile: int = TILE) -> tuple[int, int]:
    """The panel size: the image's aspect ratio, at most ``tile`` wide and ``1.25 * tile`` high."""
    scale = min(tile / image.width, 1.25 * tile / image.height)
    return max(1, round(image.width * scale)), max(1, round(image.height * scale))


def render_panel(image: Image.Image, panel: Panel, size: tuple[int, int], color: tuple[int, int, int]) -> Image.Image:
    """The image at ``size``, with the panel's values colour-mapped over it (the mask in the class colour)."""
    base = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    if panel.kind == "image":
        return Image.fromarray(base.astype(np.uint8))
    if panel.kind == "mask":
        inside = np.asarray(Image.fromarray(panel.values).resize(size, Image.Resampling.NEAREST)) > 0.5
        picture = np.where(inside[..., None], base, 0.3 * base)
        picture[_outline(inside)] = MARK
        return Image.fromarray(picture.astype(np.uint8))
    values = np.asarray(Image.fromarray(panel.scaled().astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    return Image.fromarray(((1 - ALPHA) * base + ALPHA * colorize(values)).astype(np.uint8))


def _outline(inside: np.ndarray) -> np.ndarray:
    """The pixels of ``inside`` with a 4-neighbour outside it (or on the border)."""
    padded = np.pad(inside, 1, constant_values=False)
    core = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return inside & ~core


def colour_bar(height: int, threshold: float | None, text: int) -> Image.Image:
    """A vertical 0-1 colour bar with ticks, and the mask threshold marked when given."""
    bar, margin = max(14, text), text // 2
    font = font_for("0123456789. threshold", text)
    label_width = math.ceil(font.getlength("threshold 0.55" if threshold is not None else "0.75"))
    out = Image.new("RGB", (bar + margin + label_width + margin, height + text), BACKGROUND)
    ramp = colorize(np.linspace(1, 0, height))[:, None].repeat(bar, 1)
    out.paste(Image.fromarray(ramp), (0, text // 2))
    draw = ImageDraw.Draw(out)
    draw.rectangle([0, text // 2, bar - 1, text // 2 + height - 1], outline=INK)
    marked = None if threshold is None else text // 2 + round((1 - threshold) * (height - 1))
    for value in (0, 0.25, 0.5, 0.75, 1):
        y = text // 2 + round((1 - value) * (height - 1))
        draw.line([bar, y, bar + margin // 2, y], fill=INK)
        if marked is None or abs(y - marked) >= text:
            draw.text((bar + margin, y), f"{value:g}", fill=INK, font=font, anchor="lm")
    if marked is not None:
        draw.line([0, marked, bar + margin // 2, marked], fill=MARK, width=2)
        draw.text((bar + margin, marked), f"threshold {threshold:g}", fill=MARK, font=font, anchor="lm")
    return out


def class_grid(image: Image.Image, result, k: int, tile: int = TILE, threshold: float | None = None) -> Image.Image:
    """The grid for class ``k`` (0-based) of ``result``, which must hold its maps.

    ``threshold``, when given, is marked on the colour bar (where the final score becomes the mask).
    """
    panels = class_panels(result, k)
    width, height = tile_size(image, tile)
    text = max(13, tile // 22)
    title_font = font_for("".join(p.title for p in panels), text)
    note_font = font_for("".join(p.scale_note() for p in panels), text - 2)
    note_widths = [note_font.getlength(p.scale_note()) for p in panels]
    cell_width = math.ceil(max(width, *(title_font.getlength(p.title) for p in panels), *note_widths))
    gap, title_height = text, round(2.6 * text)
    columns, rows = grid_shape(len(panels))
    header = result.classes[k]
    prompt = f'prompt: "{result.class_prompts[k] if result.class_prompts else result.prompt}"'
    header_font = font_for(header, round(text * 1.4))
    top = round(text * 1.4) + 2 * gap
    bar = colour_bar(height, threshold, text)
    grid_width = gap + columns * (cell_width + gap)
    canvas = Image.new(
        "RGB",
        (grid_width + bar.width + gap, top + rows * (title_height + height + gap)),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(canvas)
    draw.text((gap, gap), header, fill=INK, font=header_font)
    prompt_x = gap + header_font.getlength(header) + 2 * gap
    draw.text((prompt_x, gap + round(text * 1.4)), prompt, fill=FAINT, font=font_for(prompt, text), anchor="ls")
    color = tuple(int(c) for c in voc_colormap()[k + 1])
    for i, panel in enumerate(panels):
        row, column = divmod(i, columns)
        x = gap + column * (cell_width + gap)
        y = top + row * (title_height + height + gap)
        draw.text((x, y), panel.title, fill=INK, font=title_font)
        draw.text((x, y + round(1.25 * text)), panel.scale_note(), fill=FAINT, font=note_font)
        canvas.paste(render_panel(image, panel, (width, height), color), (x, y + title_height))
    canvas.paste(bar, (grid_width, top + title_height - text // 2))
    return canvas
