"""Options shared by several commands, declared once.

``@engine_options`` appends the model, device and FA-Seg settings options to a
command's signature and hands them to the command body as one ``EngineOptions``;
``@batch_options(...)`` does the same for the inputs and per-image output options
(``BatchOptions``).
"""

import functools
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import List, Optional

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


def _grouped(group, target: str, parameters: list):
    """A decorator adding ``parameters`` to a command and passing them as ``target=group(**values)``."""
    names = [p.name for p in parameters]

    def decorate(command):
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != target]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            values = group(**{name: kwargs.pop(name) for name in names})
            return command(*args, **{target: values}, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + parameters}
        del wrapper.__wrapped__
        return wrapper

    return decorate


def _option(name: str, annotation, option) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _engine_parameters() -> list:
    params = []
    for f in fields(EngineOptions):
        decls = [_FLAGS.get(f.name, "--" + f.name.replace("_", "-")), *_SHORT.get(f.name, [])]
        option = typer.Option(f.default, *decls, help=_HELP[f.name], rich_help_panel=_PANEL,
                              show_default=f.name != "threshold")
        params.append(_option(f.name, f.type, option))
    return params


engine_options = _grouped(EngineOptions, "engine", _engine_parameters())
"""Add the engine options to a command, which receives them as ``engine: EngineOptions``."""


@dataclass(frozen=True)
class BatchOptions:
    """Which images to process and how per-image results are written."""

    inputs: List[str]
    output_dir: Path
    recursive: bool = False
    batch_size: int = 1
    json_lines: bool = False
    skip_existing: bool = False


def batch_options(output_dir: str, what: str):
    """Add the input and output options to a command, which receives them as ``batch: BatchOptions``.

    ``output_dir`` is the default folder, ``what`` says what stdout carries without --json.
    """
    return _grouped(BatchOptions, "batch", [
        _option("inputs", List[str], typer.Argument(..., help="Image files, folders, glob patterns, or - to read paths from stdin.")),
        _option("output_dir", Path, typer.Option(Path(output_dir), "--output-dir", "-o", help="Where results are written.")),
        _option("recursive", bool, typer.Option(False, "--recursive", "-r", help="Descend into subfolders of folder inputs.")),
        _option("batch_size", int, typer.Option(1, "--batch-size", "-b", min=1, help="Images per model pass.")),
        _option("json_lines", bool, typer.Option(False, "--json", help=f"One JSON object per image on stdout instead of {what}.")),
        _option("skip_existing", bool, typer.Option(False, "--skip-existing", help="Skip images whose outputs all exist (resume).")),
    ])
