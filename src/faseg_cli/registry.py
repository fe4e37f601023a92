"""The models faseg knows by name, each pinned to one revision so that results are reproducible."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """A sub-folder of a model repository ("" for the root) and whether it holds weight files."""

    folder: str
    weights: bool = True
    required: tuple[str, ...] = ("config.json",)


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from and which of its files faseg needs.

    ``builder`` names a local generator (``module:function`` writing the model into a
    directory) for models that are made on this machine instead of downloaded.
    """

    name: str
    repo_id: str
    revision: str
    components: tuple[Component, ...]
    description: str
    license: str | None = None
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
    license="CC-BY-NC-4.0 (non-commercial use only)",
)

TINY_RANDOM = ModelSource(
    name="tiny-random",
    repo_id="faseg/tiny-random",
    revision="v1",
    components=DIFFUSION.components[:4],
    description="a tiny random-weight model of the same architecture, made locally "
    "for smoke tests: it runs anywhere in seconds, its masks are meaningless",
    builder="faseg_cli.random_model:write_tiny_model",
)

MODELS: dict[str, ModelSource] = {m.name: m for m in (DIFFUSION, TINY_RANDOM)}


def lookup(name_or_repo: str) -> ModelSource | None:
    """The registered model called ``name_or_repo`` (alias or hub id), if any."""
    for source in MODELS.values():
        if name_or_repo in (source.name, source.repo_id):
            return source
    return None
