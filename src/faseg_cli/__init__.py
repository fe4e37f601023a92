"""faseg: training-free open-vocabulary segmentation with FA-Seg (or ``method="naclip"`` / ``"diffsegmenter"``).

Importing the package is cheap: the heavy engine (torch, diffusers) loads only
when one of the public names below is first used.
"""

__version__ = "0.1.0"

_LAZY = {
    "Segmenter": "faseg_cli.engine.faseg.segmenter",
    "Segmentation": "faseg_cli.engine.base",
    "FasegSettings": "faseg_cli.engine.faseg.settings",
    "NaclipSettings": "faseg_cli.engine.naclip.settings",
    "DiffSegmenterSettings": "faseg_cli.engine.diffsegmenter.settings",
    "FasegError": "faseg_cli.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faseg_cli' has no attribute {name!r}")
