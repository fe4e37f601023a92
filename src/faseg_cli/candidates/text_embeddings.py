"""TagCLIP class text embeddings: a prompt-template ensemble, cached on disk.

Each class embedding is the mean of the L2-normalised CLIP embeddings of the class
name in every template, normalised again (SPEC §3.2). Computing them means
85 text passes per class, so results are stored under
``<cache>/text-embeddings/`` keyed by the model weights, the class list and the
templates; a later run with the same three reads the file instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from faseg_cli.engine.clip import ClipEncoder, ensemble
from faseg_cli.errors import OutputError
from faseg_cli.files.outputs import atomic_write
from faseg_cli.models.weights import cache_dir
from faseg_cli.word_lists import templates as default_templates

log = logging.getLogger("faseg")


def cache_path(encoder: ClipEncoder, classes: Sequence[str], templates: Sequence[str]) -> Path:
    """Where the embeddings of this model, class list and template list are cached."""
    key = json.dumps({"model": encoder.fingerprint, "classes": list(classes), "templates": list(templates)})
    return cache_dir() / "text-embeddings" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"


def class_embeddings(
    encoder: ClipEncoder, classes: Sequence[str], templates: Sequence[str] | None = None
) -> torch.Tensor:
    """Template-ensemble embeddings (K, E) of ``classes``, from the cache when possible."""
    templates = tuple(templates or default_templates())
    path = cache_path(encoder, classes, templates)
    try:
        cached = load_file(path)["embeddings"]
        if cached.shape[0] == len(classes):
            return cached
    except Exception:  # noqa: BLE001 - a missing or unreadable cache file only means "compute"
        pass
    log.info("Computing CLIP text embeddings for %d classes x %d templates", len(classes), len(templates))
    embeddings = ensemble(encoder, classes, templates).contiguous()
    metadata = {"classes": json.dumps(list(classes))}
    try:
        atomic_write(path, lambda tmp: save_file({"embeddings": embeddings}, str(tmp), metadata=metadata))
    except OutputError as exc:
        log.warning("Could not cache text embeddings: %s", exc)
    return embeddings
