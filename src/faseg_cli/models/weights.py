"""Locate model weights: a local directory, the faseg cache, or a pinned Hub download.

Downloads go to ``$FASEG_CACHE_DIR`` or the platform cache directory and fetch only
the files a model needs (never the 1.2 GB safety checker). A model that is not cached
is first looked up on the Hub with one short request, so that no network, a mistyped
name or an unknown repository fail at once with one line instead of minutes of retries.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from faseg_cli.errors import UsageError, WeightsError
from faseg_cli.models.quiet import quiet_hub
from faseg_cli.models.registry import FAMILIES, MODELS, Component, ModelKind, ModelSource, lookup, suggest

log = logging.getLogger("faseg")

_TRUE = {"1", "ON", "YES", "TRUE"}

PROBE_TIMEOUT = 10.0
"""Seconds the Hub may take to answer the lookup before faseg says it cannot be reached."""


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


def model_kind(model: str) -> ModelKind | None:
    """What ``model`` is, found without loading or downloading anything: a registered model's kind,
    a local directory's family from its files (``model_index.json`` or ``unet/``: diffusion; the
    ``model_type`` of ``config.json``: CLIP or BLIP), or None when unknown (an unregistered Hub id)."""
    local = Path(model).expanduser()
    if local.is_dir():
        if (local / "model_index.json").is_file() or (local / "unet").is_dir():
            return FAMILIES["diffusion"]
        try:
            model_type = json.loads((local / "config.json").read_text("utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            return None
        return FAMILIES.get(model_type)
    source = lookup(_parse(model)[0])
    return source.kind if source else None


def check_kind(model: str, wanted: Sequence[ModelKind], needed_by: str, uses: Sequence[tuple[ModelKind, str]]) -> None:
    """A usage error when ``model`` is known to be of none of the ``wanted`` kinds (checked before loading).

    ``needed_by`` names what asked for the model (``--method fa-seg``); ``uses`` pairs each kind with
    where such a model belongs (``(CLIP_MODEL, "--method naclip")``), for the hint.
    """
    kind = model_kind(model)
    if kind is None or any(kind.fits(w) for w in wanted):
        return
    use = next((where for known, where in uses if kind.fits(known)), None)
    hint = f": use it with {use}" if use else ""
    needs = " or ".join(dict.fromkeys(w.description for w in wanted))
    raise UsageError(f"{model} is a {kind.description}{hint} ({needed_by} needs a {needs})")


def resolve_model(model: str, default: ModelSource, option: str | None = "--model") -> Path:
    """Return a directory holding ``model`` in the layout of ``default``.

    ``model`` is a registered name, a hub id (``owner/name`` or ``owner/name@revision``)
    or a local directory. Registered models use their pinned revision; generated ones
    are built into the cache on first use; anything else is downloaded once and cached.
    ``option`` is the command-line option that names this model (errors suggest it for a
    local directory; None: no such option, as in ``faseg download``).
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
        if "/" not in repo:
            raise UsageError(_unknown(repo))
        source = ModelSource(
            name=repo,
            repo_id=repo,
            revision=revision or "main",
            components=default.components,
            extra_files=default.extra_files,
            description=f"{repo} (unregistered, same layout as {default.name})",
            kind=default.kind,
            license=None,
        )
    elif revision:
        source = ModelSource(**{**source.__dict__, "revision": revision})
    if source.builder:
        return _built(source)
    return _cached(source) or _download(source, model, option)


def _unknown(name: str) -> str:
    close = suggest(name)
    hint = f" (did you mean {close}?)" if close else ""
    return (
        f"unknown model {name!r}{hint}: use a registered name ({', '.join(MODELS)}), "
        "a Hub id (owner/name) or a local directory"
    )


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


def model_identity(model: str) -> dict:
    """Which model ``model`` names, found without loading or downloading anything, for output records.

    A local directory's absolute path, else the repository and revision (a registered
    model's pinned one, the one after ``@``, or None for the Hub's latest).
    """
    local = Path(model).expanduser()
    if local.is_dir():
        return {"path": str(local.resolve())}
    repo, revision = _parse(model)
    source = lookup(repo)
    return {"repo": source.repo_id if source else repo, "revision": revision or (source.revision if source else None)}


def _check_layout(path: Path, source: ModelSource, shown: str) -> None:
    missing = missing_files(path, source.components)
    if missing:
        raise WeightsError(f"{shown} is not a complete {source.name} model directory: missing {', '.join(missing)}")


def cached_path(source: ModelSource) -> Path | None:
    """Where ``source`` already is on this machine (built or downloaded, complete), or None; fetches nothing."""
    if source.builder:
        target = _built_dir(source)
        return None if missing_files(target, source.components) else target
    return _cached(source)


def _built_dir(source: ModelSource) -> Path:
    return cache_dir() / "generated" / f"{source.name}-{source.revision}"


def _built(source: ModelSource) -> Path:
    target = _built_dir(source)
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


def _download(source: ModelSource, model: str, option: str | None) -> Path:
    """Download ``source`` into the hub cache; ``model`` (as the user wrote it) and ``option`` go into errors."""
    short = source.revision[:10]
    files = _repo_files(source, model, option)
    from huggingface_hub import snapshot_download

    if source.license:
        log.warning("%s is licensed %s", source.repo_id, source.license)
    log.info("Downloading %s@%s (%s) to %s", source.repo_id, short, source.description, _hub_cache())
    try:
        path = Path(
            snapshot_download(
                source.repo_id,
                revision=source.revision,
                cache_dir=_hub_cache(),
                allow_patterns=select_files(files, source),
            )
        )
    except Exception as exc:  # noqa: BLE001 - network and hub failures all end the same way
        raise WeightsError(
            f"could not download {source.repo_id}@{short}: {_reason(exc)} (check the network{_local(option, ', or ')})"
        ) from exc
    _check_layout(path, source, f"{source.repo_id}@{short}")
    return path


def _repo_files(source: ModelSource, model: str, option: str | None) -> list[str]:
    """The files of ``source`` at its revision, from one Hub request without retries.

    Offline mode, an unreachable Hub, an unknown repository or revision each become
    one ``WeightsError`` line that says what is missing and how to get it.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = "the Hub is offline (HF_HUB_OFFLINE is set)"
    if hub_offline():
        raise _not_cached(source, model, option, offline)
    quiet_hub()
    try:
        info = HfApi().model_info(source.repo_id, revision=source.revision, timeout=PROBE_TIMEOUT)
    except OfflineModeIsEnabled:
        raise _not_cached(source, model, option, offline) from None
    except GatedRepoError:
        raise WeightsError(
            f"{source.repo_id} is gated: accept its terms on {constants.ENDPOINT}/{source.repo_id} "
            "and set HF_TOKEN to an access token of that account"
        ) from None
    except RepositoryNotFoundError:
        raise WeightsError(
            f"no model {source.repo_id} on the Hub ({constants.ENDPOINT}): check the name "
            f"(a private repository also needs HF_TOKEN){_hint(source.repo_id)}"
        ) from None
    except RevisionNotFoundError:
        raise WeightsError(f"{source.repo_id} has no revision {source.revision} on the Hub") from None
    except Exception as exc:  # noqa: BLE001 - no network, DNS, proxy, TLS, timeout: all mean "unreachable"
        reason = f"the Hub cannot be reached ({constants.ENDPOINT}: {_reason(exc)})"
        raise _not_cached(source, model, option, reason) from None
    return [sibling.rfilename for sibling in info.siblings or []]


def _not_cached(source: ModelSource, model: str, option: str | None, why: str) -> WeightsError:
    return WeightsError(
        f"{source.repo_id}@{source.revision[:10]} is not in the cache ({_hub_cache()}) and {why}: "
        f"run `{download_command(model, source)}` on a machine with network access"
        f"{_local(option, ', or ')}{_hint(source.repo_id)}"
    )


def download_command(model: str, source: ModelSource) -> str:
    """The ``faseg download`` command line that fetches ``model`` (``source``: what it resolved to) in its
    layout: an unregistered Hub id of another kind than the diffusion model's names its ``--kind``."""
    from faseg_cli.models.registry import DIFFUSION

    registered = lookup(_parse(model)[0]) is not None
    kind = "" if registered or source.kind == DIFFUSION.kind else f" --kind {source.kind.name}"
    return f"faseg download{kind} {model}"


def _local(option: str | None, joiner: str) -> str:
    """``, or pass --model with a local directory`` (nothing where no option names the model)."""
    return f"{joiner}pass {option} with a local directory" if option else ""


def _hint(repo_id: str) -> str:
    """``; did you mean <registered model>?`` when ``repo_id`` is a near miss of one, else nothing."""
    close = suggest(repo_id)
    return f"; did you mean {close}?" if close and close != repo_id else ""


def _reason(exc: Exception) -> str:
    """``Type: first line of the message`` of a library exception."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
