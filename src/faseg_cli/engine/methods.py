"""The segmentation methods by name: what ``--method`` and ``Segmenter.load(method=...)`` choose from."""

from __future__ import annotations

from faseg_cli.errors import UsageError

METHODS = ("fa-seg", "naclip")
"""The segmentation methods, FA-Seg (the default) first."""


def load_method(method: str, model: str | None, *, device: str, dtype: str, settings=None):
    """The segmenter of a method other than FA-Seg (``Segmenter.load(method=...)`` dispatches here)."""
    from faseg_cli.engine.naclip.segmenter import NaclipSegmenter

    if method != NaclipSegmenter.method:
        raise UsageError(f"--method {method}: expected one of {', '.join(METHODS)}")
    return NaclipSegmenter.load(model or "clip", device=device, dtype=dtype, settings=settings)
