"""The models faseg knows by name, each pinned to one revision so that results are reproducible."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """A sub-folder of a model repository ("" for the root) and whether it holds weight files."""

    folder: str
    weights: bool = True
    required: tuple[str, ...] = ("config.json",)


@dataclass(frozen=True)
class ModelKind:
    """What a model is, so that a method or an option refuses a model it cannot run before loading it.

    ``family`` groups kinds that share a layout (``diffusion``, ``clip``, ``blip``); a local
    directory is recognised by its family alone (see ``weights.model_kind``).
    """

    name: str
    description: str
    family: str

    def fits(self, wanted: ModelKind) -> bool:
        """True when a model of this kind can serve where ``wanted`` is needed (a family-only
        kind, as found for a local directory, fits every kind of its family)."""
        return self == wanted or (self.name == self.family == wanted.family)


SD15_MODEL = ModelKind("sd15", "Stable Diffusion 1.5-family diffusion model", "diffusion")
SD21_MODEL = ModelKind("sd21", "Stable Diffusion 2.1-family diffusion model", "diffusion")
CLIP_MODEL = ModelKind("clip", "CLIP model", "clip")
BLIP_MODEL = ModelKind("blip", "BLIP captioning model", "blip")
FAMILIES = {k.family: k for k in (ModelKind("diffusion", "diffusion model", "diffusion"), CLIP_MODEL, BLIP_MODEL)}
"""A family-only kind per family: what a local directory is known to be from its files."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from and which of its files faseg needs.

    ``builder`` names a local generator (``module:function`` writing the model into a
    directory) for models that are made on this machine instead of downloaded; ``kind`` says
    which methods and options can use it; ``size`` is what it takes on disk, roughly.
    """

    name: str
    repo_id: str
    revision: str
    components: tuple[Component, ...]
    description: str
    kind: ModelKind
    license: str | None = None
    size: str | None = None
    extra_files: tuple[str, ...] = ()
    builder: str | None = None


_TOKENIZER = Component("tokenizer", weights=False, required=("vocab.json", "merges.txt"))

DIFFUSION = ModelSource(
    name="diffusion",
    repo_id="XCLiu/2_rectified_flow_from_sd_1_5",
    revision="934962eb1054b67883fabb3e0860b851baf31142",
    components=(
        Component("unet"),
        Component("vae"),
        Component("text_encoder"),
        _TOKENIZER,
        Component("scheduler", weights=False, required=()),
    ),
    extra_files=("model_index.json",),
    description="2-Rectified Flow distilled from Stable Diffusion 1.5 (UNet, VAE, CLIP text encoder)",
    kind=SD15_MODEL,
    size="4.4 GB",
    license="CC-BY-NC-4.0 (non-commercial use only)",
)

SD15 = ModelSource(
    name="sd15",
    repo_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
    revision="451f4fe16113bff5a5d2269ed5ad43b0592e9a14",
    components=DIFFUSION.components,
    extra_files=("model_index.json",),
    description="Stable Diffusion 1.5 (UNet, VAE, CLIP text encoder; no safety checker), for DiffSegmenter",
    kind=SD15_MODEL,
    size="4.3 GB",
    license="CreativeML OpenRAIL-M (use-based restrictions; see the model card)",
)

SD21_BASE = ModelSource(
    name="sd21-base",
    repo_id="stabilityai/stable-diffusion-2-1-base",
    revision="5ede9e4bf3e3fd1cb0ef2f7a3fff13ee514fdf06",
    components=DIFFUSION.components,
    extra_files=("model_index.json",),
    description="Stable Diffusion 2.1-base (UNet, VAE, OpenCLIP-H text encoder), the model of iSeg",
    kind=SD21_MODEL,
    size="5.2 GB",
    license="CreativeML Open RAIL++-M (openrail++)",
)
"""The revision is the repository's last commit as cached snapshots across public code show it (the Hub
itself was not reachable when it was pinned); see docs/algorithm.md."""

BLIP = ModelSource(
    name="blip",
    repo_id="Salesforce/blip-image-captioning-large",
    revision="353689b859fcf0523410b1806dace5fb46ecdf41",
    components=(
        Component("", required=("config.json", "preprocessor_config.json", "tokenizer_config.json", "vocab.txt")),
    ),
    description="BLIP-large image captioner (captions for candidate classes and text prompts)",
    kind=BLIP_MODEL,
    size="1.9 GB",
    license="BSD-3-Clause",
)

CLIP = ModelSource(
    name="clip",
    repo_id="openai/clip-vit-base-patch16",
    revision="57c216476eefef5ab752ec549e440a49ae4ae5f3",
    components=(
        Component(
            "",
            required=("config.json", "preprocessor_config.json", "tokenizer_config.json", "vocab.json", "merges.txt"),
        ),
    ),
    description="CLIP ViT-B/16 (TagCLIP multi-label classifier and caption-word matching; NACLIP's model)",
    kind=CLIP_MODEL,
    size="600 MB",
    license="MIT",
)


def _generated(
    name: str, like: ModelSource, size: str, builder: str, components: tuple[Component, ...] = ()
) -> ModelSource:
    """A tiny random-weight model of the kind and layout of ``like``, built locally for smoke tests."""
    return ModelSource(
        name=name,
        repo_id=f"faseg/{name}",
        revision="v1",
        components=components or like.components,
        description=f"a tiny random-weight {like.kind.description} made locally for smoke tests: "
        "it runs anywhere in seconds, its output is meaningless",
        kind=like.kind,
        license="Apache-2.0 (made by faseg)",
        size=size,
        builder=builder,
    )


TINY_RANDOM = _generated(
    "tiny-random", DIFFUSION, "8 MB", "faseg_cli.models.random_diffusion:write_tiny_model", DIFFUSION.components[:4]
)
TINY_SD21 = _generated("tiny-random-sd21", SD21_BASE, "15 MB", "faseg_cli.models.random_diffusion:write_tiny_sd21")
TINY_BLIP = _generated("tiny-blip", BLIP, "0.2 MB", "faseg_cli.models.random_clip_blip:write_tiny_blip")
TINY_CLIP = _generated("tiny-clip", CLIP, "0.3 MB", "faseg_cli.models.random_clip_blip:write_tiny_clip")

MODELS: dict[str, ModelSource] = {
    m.name: m for m in (DIFFUSION, SD15, TINY_RANDOM, SD21_BASE, TINY_SD21, BLIP, CLIP, TINY_BLIP, TINY_CLIP)
}


def layout_of(kind: ModelKind) -> ModelSource:
    """The first registered model of ``kind``: the layout of unregistered models of that kind."""
    return next(source for source in MODELS.values() if source.kind == kind)


def lookup(name_or_repo: str) -> ModelSource | None:
    """The registered model called ``name_or_repo`` (alias or hub id), if any."""
    for source in MODELS.values():
        if name_or_repo in (source.name, source.repo_id):
            return source
    return None


def suggest(name: str) -> str | None:
    """The registered model a mistyped ``name`` most likely means, if any.

    A hub id matches a registered one only up to case and ``-``/``_``/``.``; a bare
    name may also be a near miss (``difusion``, ``tiny_random``).
    """
    import difflib

    def key(text: str) -> str:
        return re.sub(r"[-_.]", "-", text.casefold())

    for source in MODELS.values():
        for known in (source.name, source.repo_id):
            if key(name) == key(known):
                return known
    if "/" in name:
        return None
    close = difflib.get_close_matches(key(name), list(MODELS), n=1, cutoff=0.75)
    return close[0] if close else None
