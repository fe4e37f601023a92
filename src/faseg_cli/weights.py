"""Locate model weights: a local directory, the faseg cache, or a pinned Hub download.

Downloads go to ``$FASEG_CACHE_DIR`` or the platform cache directory and fetch only
the files a model needs (never the 1.2 GB safety checker).
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os
from pathlib import Path

from faseg_cli.errors import WeightsError
from faseg_cli.registry import Component, ModelSource, lookup

log = logging.getLogger("faseg")

_TRUE = {"1", "ON", "YES", "TRUE"}
_OPTION = {"blip": "--caption-model", "clip": "--clip-model"}
"""The command-line option choosing a model of each layout (``--model`` for the diffusion model)."""


def cache_dir() -> Path:
    """Root of everything faseg caches (weights, generated models)."""
    env = os.environ.get("FASEG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("faseg"))


def hub_offline() -> bool:
    """True when the user asked the Hugging Face Hub to stay offline."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def missing_files(root: Path, components: tuple[Component, ...]) -> list[str]:
    """Files (or weight sets) the layout needs that ``root`` lacks, as relative paths."""
    missing = []
    for comp in components:
        folder = root / comp.folder
        missing += [f"{comp.folder}/{name}".lstrip("/") for name in comp.required if not (folder / name).is_file()]
        if comp.weights and not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            missing.append(f"{comp.folder}/*.safetensors".lstrip("/"))
    return missing


def select_files(repo_files: list[str], source: ModelSource) -> list[str]:
    """The repository files to download: configs, tokenizer files and one weight format.

    Per component folder, safetensors are preferred over ``.bin``; precision variants
    (``*.fp16.*``) and extra checkpoints (``*non_ema*``) are skipped.
    """
    chosen = [f for f in source.extra_files if f in repo_files]
    for comp in source.components:
        prefix = f"{comp.folder}/" if comp.folder else ""
        here = [f[len(prefix) :] for f in repo_files if f.startswith(prefix) and "/" not in f[len(prefix) :]]
        chosen += [prefix + f for f in here if fnmatch.fnmatch(f, "*.json") or fnmatch.fnmatch(f, "*.txt")]
        if comp.weights:
            for ext in (".safetensors", ".bin"):
                weights = [f for f in here if f.endswith(ext) and "." not in f[: -len(ext)] and "non_ema" not in f]
                if weights:
                    chosen += [prefix + f for f in weights]
                    break
    return sorted(set(chosen))


def _parse(model: str) -> tuple[str, str | None]:
    repo, _, revision = model.partition("@")
    return repo, revision or None


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1) or "\\" in model


def resolve_model(model: str, default: ModelSource) -> Path:
    """Return a directory holding ``model`` in the layout of ``default``.

    ``model`` is a registered name, a hub id (``owner/name`` or ``owner/name@revision``)
    or a local directory. Registered models use their pinned revision; generated ones
    are built into the cache on first use; anything else is downloaded once and cached.
    """
    local = Path(model).expanduser()
    if local.is_dir():
        _check_layout(local, default, model)
        return local
    if _looks_like_path(model):
        raise WeightsError(f"model directory {model} does not exist")
    repo, revision = _parse(model)
    source = lookup(repo)
    if source is None:
        source = ModelSource(
            name=repo,
            repo_id=repo,
            revision=revision or "main",
            components=default.components,
            extra_files=default.extra_files,
            description=f"{repo} (unregistered, same layout as {default.name})",
        )
    elif revision:
        source = ModelSource(**{**source.__dict__, "revision": revision})
    if source.builder:
        return _built(source)
    return _cached(source) or _download(source, _OPTION.get(default.name, "--model"))


def model_revision(model: str, path: Path) -> str | None:
    """The revision behind a model resolved to ``path``, for reports.

    A Hub snapshot's commit, a registered or generated model's pinned revision, or
    None for a local directory.
    """
    if path.parent.name == "snapshots":
        return path.name
    if Path(model).expanduser().is_dir():
        return None
    source = lookup(_parse(model)[0])
    return source.revision if source else None


def _check_layout(path: Path, source: ModelSource, shown: str) -> None:
    missing = missing_files(path, source.components)
    if missing:
        raise WeightsError(f"{shown} is not a complete {source.name} model directory: missing {', '.join(missing)}")


def _built(source: ModelSource) -> Path:
    target = cache_dir() / "generated" / f"{source.name}-{source.revision}"
    if not missing_files(target, source.components):
        return target
    module, _, func = source.builder.partition(":")
    log.info("Building %s in %s", source.name, target)
    getattr(importlib.import_module(module), func)(target)
    return target


def _hub_cache() -> Path:
    return cache_dir() / "hub"


def _cached(source: ModelSource) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        path = Path(
            snapshot_download(source.repo_id, revision=source.revision, cache_dir=_hub_cache(), local_files_only=True)
        )
    except Exception:  # noqa: BLE001 - any failure here only means "not cached"
        return None
    return None if missing_files(path, source.components) else path


def _download(source: ModelSource, option: str) -> Path:
    short = source.revision[:10]
    if hub_offline():
        raise WeightsError(
            f"{source.repo_id}@{short} is not in the cache ({_hub_cache()}) and the Hub is offline "
            f"(HF_HUB_OFFLINE is set): run `faseg download {source.name}` with network access, "
            f"or pass {option} with a local directory"
        )
    from huggingface_hub import HfApi, snapshot_download

    if source.license:
        log.warning("%s is licensed %s", source.repo_id, source.license)
    log.info("Downloading %s@%s (%s) to %s", source.repo_id, short, source.description, _hub_cache())
    try:
        files = HfApi().list_repo_files(source.repo_id, revision=source.revision)
        path = Path(
            snapshot_download(
                source.repo_id,
                revision=source.revision,
                cache_dir=_hub_cache(),
                allow_patterns=select_files(files, source),
            )
        )
    except Exception as exc:  # noqa: BLE001 - network and hub failures all end the same way
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise WeightsError(
            f"could not download {source.repo_id}@{short}: {type(exc).__name__}: {reason}"
            f" (check the network, or pass {option} with a local directory)"
        ) from exc
    _check_layout(path, source, f"{source.repo_id}@{short}")
    return path
