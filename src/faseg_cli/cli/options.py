"""Options shared by every command that runs the engine, declared once.

``@engine_options`` appends the model, device and FA-Seg settings options to a
command's signature and hands them to the command body as one ``EngineOptions``.
"""

import functools
import inspect
from dataclasses import dataclass, fields
from typing import Optional

import typer

from faseg_cli.settings import FasegSettings

_DEFAULTS = FasegSettings()
_PANEL = "Model and algorithm"


@dataclass(frozen=True)
class EngineOptions:
    """What the user chose for loading the model and for the FA-Seg maths."""

    model: str = "diffusion"
    device: str = "auto"
    dtype: str = "auto"
    resolution: int = _DEFAULTS.resolution
    threshold: Optional[float] = None
    flip: bool = True
    refine: bool = True
    timestep: int = _DEFAULTS.timestep
    cross_weights: str = ",".join(f"{w:g}" for w in _DEFAULTS.cross_weights)
    self_weights: str = ",".join(f"{w:g}" for w in _DEFAULTS.self_weights)
    tau: int = _DEFAULTS.tau

    def settings(self, default_threshold: float = _DEFAULTS.threshold) -> FasegSettings:
        """Validated settings; ``default_threshold`` applies when ``--threshold`` was not given."""
        from faseg_cli.settings import parse_weights

        return FasegSettings(
            resolution=self.resolution,
            cross_weights=parse_weights(self.cross_weights),
            self_weights=parse_weights(self.self_weights),
            tau=self.tau,
            threshold=default_threshold if self.threshold is None else self.threshold,
            flip=self.flip,
            refine=self.refine,
            timestep=self.timestep,
        )

    def load(self, settings: FasegSettings):
        """The ``Segmenter`` for these options (resolves, downloads if needed, loads)."""
        from faseg_cli.engine import Segmenter

        return Segmenter.load(self.model, device=self.device, dtype=self.dtype, settings=settings)


_HELP = {
    "model": "Model: a registered name (diffusion, tiny-random), a Hub id, or a local directory.",
    "device": "auto, cpu, cuda, cuda:N or mps. auto = CUDA, else MPS, else CPU.",
    "dtype": "auto, fp16, bf16 or fp32. auto = fp16 on GPU, fp32 on CPU.",
    "resolution": "Side of the square the image is resized to (a multiple of 64).",
    "threshold": f"Background threshold on the class scores. Default: {_DEFAULTS.threshold}.",
    "flip": "Test-time flipping (average with the mirrored image).",
    "refine": "Self-attention refinement (HARD); --no-refine uses the fused cross-attention alone.",
    "timestep": "Record attention at this timestep; above 0 the latent is first inverted by one Euler step.",
    "cross_weights": "Cross-attention weights per resolution, coarse to fine (8,16,32,64 at 512 px).",
    "self_weights": "Refinement weights per resolution, coarse to fine (8,16,32,64 at 512 px).",
    "tau": "Power of the lifted self-attention affinity.",
}
_FLAGS = {"flip": "--flip/--no-flip", "refine": "--refine/--no-refine"}
_SHORT = {"model": ["-m"], "threshold": ["-t"]}


def _parameters() -> list[inspect.Parameter]:
    params = []
    for f in fields(EngineOptions):
        decls = [_FLAGS.get(f.name, "--" + f.name.replace("_", "-")), *_SHORT.get(f.name, [])]
        option = typer.Option(f.default, *decls, help=_HELP[f.name], rich_help_panel=_PANEL,
                              show_default=f.name != "threshold")
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=f.type))
    return params


def engine_options(command):
    """Add the engine options to ``command``, which receives them as ``engine: EngineOptions``."""
    names = [f.name for f in fields(EngineOptions)]
    signature = inspect.signature(command)
    own = [p for p in signature.parameters.values() if p.name != "engine"]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        engine = EngineOptions(**{name: kwargs.pop(name) for name in names})
        return command(*args, engine=engine, **kwargs)

    extra = _parameters()
    wrapper.__signature__ = signature.replace(parameters=own + extra)
    wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **{p.name: p.annotation for p in extra}}
    del wrapper.__wrapped__
    return wrapper
