"""The segmentation methods by name: what ``--method`` and ``Segmenter.load(method=...)`` choose from."""

from __future__ import annotations

from faseg_cli.errors import UsageError
from faseg_cli.models.registry import BLIP_MODEL, CLIP_MODEL, SD15

METHODS = ("fa-seg", "naclip")
"""The segmentation methods, FA-Seg (the default) first."""

MODEL_KINDS = {"fa-seg": (SD15,), "naclip": (CLIP_MODEL,)}
"""The kinds of model each method runs on (``--model`` of another kind is refused before loading)."""

DEFAULT_MODELS = {"fa-seg": "diffusion", "naclip": "clip"}
"""The model each method loads when none is named."""

OTHER_USES = ((CLIP_MODEL, "--clip-model"), (BLIP_MODEL, "--caption-model"))
"""Where the candidate-class models belong."""


def model_uses() -> tuple:
    """``(kind, where it is used)`` pairs for hints: each method's kinds, then the candidate models' options."""
    return tuple((kind, f"--method {method}") for method, kinds in MODEL_KINDS.items() for kind in kinds) + OTHER_USES


def check_model(method: str, model: str | None) -> None:
    """A usage error, before anything loads, for an unknown method or a model ``method`` cannot run
    (``tiny-clip`` under FA-Seg: "tiny-clip is a CLIP model: use it with --method naclip ...")."""
    from faseg_cli.models.weights import check_kind

    if method not in METHODS:
        raise UsageError(f"--method {method}: expected one of {', '.join(METHODS)}")
    check_kind(model or DEFAULT_MODELS[method], MODEL_KINDS[method], f"--method {method}", model_uses())


def load_method(method: str, model: str | None, *, device: str, dtype: str, settings=None):
    """The segmenter of a method other than FA-Seg (``Segmenter.load(method=...)`` dispatches here)."""
    from faseg_cli.engine.naclip.segmenter import NaclipSegmenter

    check_model(method, model)
    return NaclipSegmenter.load(model or DEFAULT_MODELS[method], device=device, dtype=dtype, settings=settings)
