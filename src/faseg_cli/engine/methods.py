"""The segmentation methods in one table: what ``--method``, ``Segmenter.load(method=...)`` and the commands read.

Each row names the method's package under ``engine/``, its segmenter and settings
classes (as ``module:Class`` strings, imported only when used), its default and tiny
models, the kinds of model it accepts, the commands that support it and the engine
options it reads. Adding a method means adding a row here and its own package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from faseg_cli.errors import UsageError
from faseg_cli.models.registry import BLIP_MODEL, CLIP_MODEL, SD15_MODEL, SD21_MODEL, ModelKind

COMMANDS = ("segment", "eval", "attention", "serve", "candidates")
"""The commands that run a method's segmenter."""


@dataclass(frozen=True)
class Method:
    """One row of the table."""

    name: str
    """The ``--method`` value."""
    package: str
    """Its package under ``engine/``; methods never import each other's."""
    segmenter: str
    """``module:Class`` of its segmenter (a ``SegmenterBase`` with a ``load`` classmethod)."""
    settings: str
    """``module:Class`` of its settings (frozen dataclass with ``threshold``, ``summary()``, ``recorded()``,
    ``with_()`` and ``from_options()``)."""
    default_model: str
    """The registered model it loads when none is given."""
    tiny_model: str
    """Its tiny random-weight model (smoke tests, quickstart)."""
    model_kinds: tuple[ModelKind, ...]
    """The kinds of model it runs (``--model`` of another kind is refused before loading)."""
    commands: tuple[str, ...]
    """The commands (of ``COMMANDS``) that support it."""
    options: tuple[str, ...]
    """The engine options it reads besides ``--model``, ``--device``, ``--dtype`` and ``--threshold``."""
    eval_candidates: str
    """``faseg eval``'s default ``--candidates``: ``auto`` (its own candidates) or ``all`` (every class)."""
    summary: str
    """A few words for ``--method``'s help."""
    captioner: bool = False
    """Its segmenter runs BLIP itself (loaded with ``caption_model``, the ``--caption-model`` choice)."""

    def segmenter_class(self) -> type:
        return _load(self.segmenter)

    def settings_class(self) -> type:
        return _load(self.settings)

    def supports(self, command: str) -> bool:
        return command in self.commands


def _load(reference: str):
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


FASEG_OPTIONS = ("resolution", "flip", "refine", "inversion", "timestep", "cross_weights", "self_weights", "tau")

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            name="fa-seg",
            package="faseg",
            segmenter="faseg_cli.engine.faseg.segmenter:Segmenter",
            settings="faseg_cli.engine.faseg.settings:FasegSettings",
            default_model="diffusion",
            tiny_model="tiny-random",
            model_kinds=(SD15_MODEL,),
            commands=COMMANDS,
            options=FASEG_OPTIONS,
            eval_candidates="auto",
            summary="diffusion attention, one image pass for all classes",
        ),
        Method(
            name="naclip",
            package="naclip",
            segmenter="faseg_cli.engine.naclip.segmenter:NaclipSegmenter",
            settings="faseg_cli.engine.naclip.settings:NaclipSettings",
            default_model="clip",
            tiny_model="tiny-clip",
            model_kinds=(CLIP_MODEL,),
            commands=("segment", "eval", "serve", "candidates"),
            options=("pamr",),
            eval_candidates="all",
            summary="CLIP only, CPU-fast",
        ),
        Method(
            name="diffsegmenter",
            package="diffsegmenter",
            segmenter="faseg_cli.engine.diffsegmenter.segmenter:DiffSegmenter",
            settings="faseg_cli.engine.diffsegmenter.settings:DiffSegmenterSettings",
            default_model="sd15",
            tiny_model="tiny-random",
            model_kinds=(SD15_MODEL,),
            commands=COMMANDS,
            options=("resolution", "seed"),
            eval_candidates="auto",
            summary="SD 1.5 attention, one BLIP prompt and UNet pass per class",
            captioner=True,
        ),
        Method(
            name="iseg",
            package="iseg",
            segmenter="faseg_cli.engine.iseg.segmenter:IsegSegmenter",
            settings="faseg_cli.engine.iseg.settings:IsegSettings",
            default_model="sd21-base",
            tiny_model="tiny-random-sd21",
            model_kinds=(SD21_MODEL,),
            commands=COMMANDS,
            options=("seed",),
            eval_candidates="auto",
            summary="SD 2.1 attention refined iteratively, one pass for all classes",
        ),
    )
}
"""Every method by ``--method`` name, the default (FA-Seg) first."""

DEFAULT = "fa-seg"


def get(name: str) -> Method:
    """The method called ``name`` (usage error otherwise)."""
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"--method {name}: expected one of {', '.join(METHODS)}") from None


OTHER_USES = ((CLIP_MODEL, "--clip-model"), (BLIP_MODEL, "--caption-model"))
"""Where the candidate-class models belong."""


def model_uses() -> tuple:
    """``(kind, where it is used)`` pairs for hints: each method's kinds, then the candidate models' options."""
    return tuple((kind, f"--method {m.name}") for m in METHODS.values() for kind in m.model_kinds) + OTHER_USES


def check_model(method: str, model: str | None) -> None:
    """A usage error, before anything loads, for an unknown method or a model ``method`` cannot run
    (``tiny-clip`` under FA-Seg: "tiny-clip is a CLIP model: use it with --method naclip ...")."""
    from faseg_cli.models.weights import check_kind

    row = get(method)
    check_kind(model or row.default_model, row.model_kinds, f"--method {method}", model_uses())


def load_method(method: str, model: str | None, *, device: str, dtype: str, settings=None, caption_model=None):
    """The loaded segmenter of ``method`` (its default model when ``model`` is None); ``caption_model`` is the
    BLIP of methods that run one (default: theirs)."""
    check_model(method, model)
    row = get(method)
    extra = {"caption_model": caption_model} if row.captioner else {}
    segmenter = row.segmenter_class()
    return segmenter.load(model or row.default_model, device=device, dtype=dtype, settings=settings, **extra)
