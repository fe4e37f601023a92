"""FA-Seg's mask again from its ``attention.npz`` (``engine.base.attention_npz``).

The arrays are the very tensors ``Segmenter`` computes the mask from, so SPEC §2
steps 6-9 applied to them reproduce the mask (``recompute_labels`` does exactly that).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from faseg_cli.engine.faseg.segmenter import maps_to_labels
from faseg_cli.engine.faseg.settings import FasegSettings


def recompute_labels(arrays, size: tuple[int, int]) -> np.ndarray:
    """Steps 6-9 of SPEC §2 from saved arrays, by the engine's own function; ``size`` = (w, h)."""
    settings = FasegSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(str(arrays["settings"])).items()}
    )
    cross = {int(k[6:]): torch.from_numpy(arrays[k]) for k in arrays if k.startswith("cross_")}
    self_maps = {int(k[5:]): torch.from_numpy(arrays[k]) for k in arrays if k.startswith("self_")}
    return maps_to_labels(cross, self_maps, settings, size)[3]
