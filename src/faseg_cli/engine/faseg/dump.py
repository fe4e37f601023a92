"""The arrays behind one segmentation, in the documented ``attention.npz`` layout.

The arrays are the very tensors ``Segmenter`` computes the mask from, so SPEC §2
steps 6-9 applied to them reproduce the mask (``recompute_labels`` does exactly that).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import torch

from faseg_cli.engine.base import Segmentation
from faseg_cli.engine.faseg.segmenter import maps_to_labels
from faseg_cli.engine.faseg.settings import FasegSettings


def attention_arrays(result: Segmentation, settings: FasegSettings) -> dict[str, np.ndarray]:
    """``cross_{r}`` (G,K,r,r), ``self_{r}`` (G,r*r,r*r), ``fused``/``refined`` (G,K,L,L), ``scores`` (K,R,R),
    ``labels`` (H,W), ``classes`` (K,) and ``settings`` (JSON text)."""
    maps = result.maps
    arrays = {f"cross_{r}": t for r, t in maps.cross.items()}
    arrays.update({f"self_{r}": t for r, t in maps.self_.items()})
    arrays.update(fused=maps.fused, refined=maps.refined)
    out = {name: t.float().cpu().numpy() for name, t in arrays.items()}
    out["scores"] = result.scores
    out["labels"] = result.labels
    out["classes"] = np.array(result.classes, dtype=str)
    out["settings"] = np.array(json.dumps(asdict(settings)))
    return out


def recompute_labels(arrays, size: tuple[int, int]) -> np.ndarray:
    """Steps 6-9 of SPEC §2 from saved arrays, by the engine's own function; ``size`` = (w, h)."""
    settings = FasegSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(str(arrays["settings"])).items()}
    )
    cross = {int(k[6:]): torch.from_numpy(arrays[k]) for k in arrays if k.startswith("cross_")}
    self_maps = {int(k[5:]): torch.from_numpy(arrays[k]) for k in arrays if k.startswith("self_")}
    return maps_to_labels(cross, self_maps, settings, size)[3]
