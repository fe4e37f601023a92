"""The PASCAL VOC colour map: label k gets the colour VOC gives to class index k."""

from __future__ import annotations

import numpy as np


def voc_colormap(n: int = 256) -> np.ndarray:
    """``(n, 3)`` uint8 colours; 0 is black, then the VOC bit-interleaved sequence."""
    colors = np.zeros((n, 3), dtype=np.uint8)
    for label in range(n):
        value, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors[label] = (r, g, b)
    return colors


def class_colors(classes) -> dict[str, str]:
    """``{"background": "#000000", class: "#rrggbb", ...}``: the colour of each label of a mask, by name
    (the ``colors`` of ``faseg segment --json`` and of the server's answer)."""
    colors = voc_colormap(len(classes) + 1)
    return {name: "#%02x%02x%02x" % tuple(colors[k]) for k, name in enumerate(["background", *classes])}
