"""Option groups shared by several commands, each declared once.

A group is a dataclass; its decorator appends the group's options to a command's
signature and hands them to the command body as one object:

- ``@engine_options`` -> ``engine: EngineOptions`` (model, device, FA-Seg settings);
- ``@device_options`` -> ``devices: DeviceOptions`` (device and precision alone);
- ``@candidate_options`` -> ``candidates: CandidateOptions`` (vocabulary and candidate models);
- ``@batch_options(...)`` -> ``batch: BatchOptions`` (inputs and per-image outputs);
- ``quiet_option`` adds ``-q/--quiet`` (as after ``faseg``) to every command.
"""

import functools
import inspect
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import List, Optional

import typer

from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.engine.naclip.settings import NaclipSettings
from faseg_cli.errors import UsageError

_DEFAULTS = FasegSettings()
_NACLIP = NaclipSettings()

HELP = {
    "method": "Segmentation method: fa-seg (diffusion attention) or naclip (CLIP only, CPU-fast).",
    "model": "Model: a registered name (diffusion, tiny-random; clip, tiny-clip for naclip), a Hub id, or a local "
    "directory. Default: diffusion, or clip with --method naclip.",
    "pamr": "NACLIP's PAMR refinement (--method naclip only).",
    "device": "auto, cpu, cuda, cuda:N or mps. auto = CUDA, else MPS, else CPU.",
    "dtype": "auto, fp16, bf16 or fp32. auto = fp16 on GPU, fp32 on CPU.",
    "resolution": "Side of the square the image is resized to (a multiple of 64).",
    "threshold": f"Background threshold on the class scores. Default: {_DEFAULTS.threshold} (naclip: "
    f"{_NACLIP.threshold}); eval: the dataset's.",
    "flip": "Test-time flipping (average with the mirrored image).",
    "refine": "Self-attention refinement (HARD); --no-refine uses the fused cross-attention alone.",
    "inversion": "How the latent reaches the recorded timestep. ddim (default) reproduces the paper's published "
    "code: a DDIM step with the UNet, then the recorded pass (two UNet passes). none: one recorded pass on the "
    "clean latent, about 40% faster, an approximation. euler: a rectified-flow Euler step (ablation).",
    "timestep": "Timestep of the recorded pass. Default: 1 (ddim, euler), 0 (none).",
    "cross_weights": "Cross-attention weights per resolution, coarse to fine (8,16,32,64 at 512 px).",
    "self_weights": "Refinement weights per resolution, coarse to fine (8,16,32,64 at 512 px).",
    "tau": "Power of the lifted self-attention affinity.",
    "vocab": "Vocabulary for candidate classes: voc, context, coco, ade, coco-stuff, cityscapes, or a file.",
    "candidate_source": "Candidates from tagclip, caption (matches of caption words) or both (their union).",
    "caption_model": "Captioning model: blip (BLIP-large), tiny-blip (random weights, for smoke tests), a Hub id or "
    "a local directory. Default: blip; tiny-blip with --model tiny-random.",
    "clip_model": "CLIP model for TagCLIP and caption matching: clip (ViT-B/16), tiny-clip (random weights, for "
    "smoke tests), a Hub id or a local directory. Default: clip; tiny-clip with --model tiny-random.",
    "quiet": "Only warnings and errors on stderr (no notes, progress or summary).",
}
_METAVARS = {
    "method": "fa-seg|naclip",
    "inversion": "ddim|none|euler",
    "model": "NAME|DIR",
    "device": "DEVICE",
    "dtype": "DTYPE",
    "resolution": "PIXELS",
    "threshold": "VALUE",
    "timestep": "STEP",
    "cross_weights": "W,W,W,W",
    "self_weights": "W,W,W,W",
    "tau": "N",
    "vocab": "NAME|FILE",
    "candidate_source": "SOURCE",
    "caption_model": "NAME|DIR",
    "clip_model": "NAME|DIR",
}
"""What the help shows as each option's value (else the field's name in capitals); flags show none."""
_DECLS = {
    "model": ["--model", "-m"],
    "threshold": ["--threshold", "-t"],
    "flip": ["--flip/--no-flip"],
    "refine": ["--refine/--no-refine"],
    "pamr": ["--pamr/--no-pamr"],
}


@dataclass(frozen=True)
class DeviceOptions:
    device: str = "auto"
    dtype: str = "auto"

    def resolve(self):
        """``(torch.device, torch.dtype)`` for these choices (usage error if unavailable)."""
        from faseg_cli.models.device import select_device, select_dtype

        device = select_device(self.device)
        return device, select_dtype(self.dtype, device)


@dataclass(frozen=True)
class EngineOptions(DeviceOptions):
    """What the user chose for loading the model and for the FA-Seg maths."""

    method: str = "fa-seg"
    model: Optional[str] = None
    resolution: int = _DEFAULTS.resolution
    threshold: Optional[float] = None
    flip: bool = True
    refine: bool = True
    inversion: str = _DEFAULTS.inversion
    timestep: Optional[int] = None
    cross_weights: str = ",".join(f"{w:g}" for w in _DEFAULTS.cross_weights)
    self_weights: str = ",".join(f"{w:g}" for w in _DEFAULTS.self_weights)
    tau: int = _DEFAULTS.tau
    pamr: bool = True

    def __post_init__(self) -> None:
        _check_method(self)
        if self.model is None:
            object.__setattr__(self, "model", "clip" if self.method == "naclip" else "diffusion")

    def settings(self, default_threshold: float = _DEFAULTS.threshold, dataset: Optional[str] = None):
        """Validated settings; ``default_threshold`` applies when ``--threshold`` was not given.

        With ``--method naclip``: NACLIP's settings, those of ``dataset`` (an eval dataset's name) if given.
        """
        from faseg_cli.engine.faseg.settings import parse_weights

        if self.method == "naclip":
            return _naclip_settings(self, dataset)

        return FasegSettings(
            resolution=self.resolution,
            cross_weights=parse_weights(self.cross_weights),
            self_weights=parse_weights(self.self_weights),
            tau=self.tau,
            threshold=default_threshold if self.threshold is None else self.threshold,
            flip=self.flip,
            refine=self.refine,
            inversion=self.inversion,
            timestep=self.timestep,
        )

    def load(self, settings: FasegSettings):
        """The ``Segmenter`` for these options (resolves, downloads if needed, loads)."""
        from faseg_cli.engine.faseg.segmenter import Segmenter

        return Segmenter.load(self.model, device=self.device, dtype=self.dtype, settings=settings, method=self.method)


def _check_method(options: EngineOptions) -> None:
    """Usage error for an unknown method or an option of the other method."""
    from faseg_cli.engine.methods import METHODS

    if options.method not in METHODS:
        raise UsageError(f"--method {options.method}: expected one of {', '.join(METHODS)}")
    other = EngineOptions.__dataclass_fields__
    if options.method == "naclip":
        changed = [n for n in FASEG_ONLY if getattr(options, n) != other[n].default]
    else:
        changed = ["pamr"] * (not options.pamr)
    if changed:
        flag = changed[0].replace("_", "-")
        raise UsageError(
            f"--{'no-' * (flag in ('flip', 'refine', 'pamr'))}{flag} does not apply to --method {options.method}"
        )


FASEG_ONLY = ("resolution", "flip", "refine", "inversion", "timestep", "cross_weights", "self_weights", "tau")
"""Engine options that only FA-Seg reads."""


def _naclip_settings(options: EngineOptions, dataset: Optional[str]) -> NaclipSettings:
    settings = NaclipSettings.for_dataset(dataset) if dataset else NaclipSettings()
    changes = {"pamr_steps": 0} if not options.pamr else {}
    if options.threshold is not None:
        changes["threshold"] = options.threshold
    return settings.with_(**changes)


@dataclass(frozen=True)
class CandidateOptions:
    """The vocabulary and the models that propose candidate classes (None: the default model)."""

    vocab: Optional[str] = None
    candidate_source: str = "both"
    caption_model: Optional[str] = None
    clip_model: Optional[str] = None

    def __post_init__(self) -> None:
        from faseg_cli.candidates.pipeline import check_source

        check_source(self.candidate_source)

    def vocabulary(self):
        """The chosen vocabulary, or None."""
        from faseg_cli.vocabularies import load_vocabulary

        return load_vocabulary(self.vocab) if self.vocab else None

    def generator(self, devices: DeviceOptions, captions_given: bool):
        """A ``CandidateGenerator`` (BLIP is loaded only when captions are not given); see ``for_model``."""
        from faseg_cli.candidates import CandidateGenerator

        device, dtype = devices.resolve()
        return CandidateGenerator.load(
            self.vocabulary(),
            source=self.candidate_source,
            clip_model=self.clip_model,
            caption_model=None if captions_given else self.caption_model,
            device=device,
            dtype=dtype,
        )

    def captioner(self, devices: DeviceOptions):
        """A BLIP ``Captioner``; see ``for_model``."""
        from faseg_cli.candidates import Captioner

        device, dtype = devices.resolve()
        return Captioner.load(self.caption_model, device, dtype)

    def for_model(self, model: str | None) -> "CandidateOptions":
        """These options with the candidate models left unset filled in for the segmentation ``model``:
        tiny-blip and tiny-clip go with the random-weight test models (tiny-random, tiny-clip: a
        smoke test never downloads BLIP-large and CLIP), blip and clip with any other."""
        from faseg_cli.models.registry import BLIP, CLIP, TINY_BLIP, TINY_CLIP, lookup

        source = lookup(model) if model else None
        tiny = source is not None and source.builder is not None
        return replace(
            self,
            caption_model=self.caption_model or (TINY_BLIP if tiny else BLIP).name,
            clip_model=self.clip_model or (TINY_CLIP if tiny else CLIP).name,
        )

    def model_names(self) -> tuple[str | None, str | None]:
        """``(caption_model, clip_model)``."""
        return self.caption_model, self.clip_model

    def describe(self, source, generate: bool, model: str | None = None) -> None:
        """Record in a ``ClassSource`` what ``attach`` would load into it (``generated_with``) next to the
        diffusion ``model``; loads nothing."""
        from faseg_cli.files.provenance import vocabulary_identity
        from faseg_cli.models.weights import model_identity

        models = self.for_model(model)
        if generate:
            captioned = self.candidate_source != "tagclip" and not source.real_captions
            source.generated_with["classes"] = {
                "vocabulary": vocabulary_identity(self.vocabulary()),
                "candidate_source": self.candidate_source,
                "clip_model": model_identity(models.clip_model),
                "caption_model": model_identity(models.caption_model) if captioned else None,
            }
        if source.auto_captions:
            source.generated_with["caption"] = {"auto": model_identity(models.caption_model)}

    def attach(self, source, engine: EngineOptions, generate: bool) -> None:
        """Load into a ``ClassSource`` the models it needs: the candidate generator when
        ``generate``, BLIP when captions are ``auto`` (BLIP is loaded at most once)."""
        from faseg_cli.cli.console import note
        from faseg_cli.models.registry import TINY_RANDOM

        self.describe(source, generate, engine.model)
        if not generate and not source.auto_captions:
            return
        models = self.for_model(engine.model)
        defaulted = [chosen for chosen, given in zip(models.model_names(), self.model_names()) if given is None]
        if engine.model == TINY_RANDOM.name and defaulted:
            note(f"with --model {engine.model}, candidates come from {' and '.join(defaulted)} (random weights)")
        if generate:
            source.generator = models.generator(engine, captions_given=source.real_captions)
        if source.auto_captions:
            source.captioner = models.captioner(engine)


@dataclass(frozen=True)
class BatchOptions:
    """Which images to process and how per-image results are written."""

    inputs: List[str]
    output_dir: Optional[Path] = None
    recursive: bool = False
    null: bool = False
    batch_size: int = 1
    json_lines: bool = True
    skip_existing: bool = False


def _grouped(group, target: Optional[str], parameters: list):
    """A decorator adding ``parameters`` to a command and passing them as ``target=group(**values)``
    (with ``target`` None, ``group(**values)`` is only called before the command)."""
    names = [p.name for p in parameters]

    def decorate(command):
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != target]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            values = group(**{name: kwargs.pop(name) for name in names})
            return command(*args, **({target: values} if target else {}), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + parameters}
        del wrapper.__wrapped__
        return wrapper

    return decorate


def _param(name: str, annotation, info) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def _from_fields(group, panel: str) -> list:
    """One option per dataclass field, with the field's default and the help text above."""
    return [
        _param(
            f.name,
            f.type,
            typer.Option(
                f.default,
                *_DECLS.get(f.name, ["--" + f.name.replace("_", "-")]),
                help=HELP[f.name],
                metavar=_METAVARS.get(f.name, None if f.type is bool else f.name.upper()),
                rich_help_panel=panel,
                show_default=f.name not in ("threshold", "timestep"),
            ),
        )
        for f in fields(group)
    ]


engine_options = _grouped(EngineOptions, "engine", _from_fields(EngineOptions, "Model and algorithm"))
device_options = _grouped(DeviceOptions, "devices", _from_fields(DeviceOptions, "Device"))
candidate_options = _grouped(CandidateOptions, "candidates", _from_fields(CandidateOptions, "Candidate classes"))


def _quiet(quiet: bool) -> None:
    if quiet:
        from faseg_cli.cli.console import configure_logging

        configure_logging(quiet=True)


quiet_option = _grouped(_quiet, None, [_param("quiet", bool, typer.Option(False, "--quiet", "-q", help=HELP["quiet"]))])


def batch_options(output_dir: Optional[str], what: str):
    """Add the input and output options to a command, which receives them as ``batch: BatchOptions``.

    ``output_dir`` is the default folder (None: the command writes no files, only JSON
    lines); ``what`` says what stdout carries without --json.
    """
    params = [
        _param(
            "inputs",
            List[str],
            typer.Argument(
                ..., metavar="INPUT...", help="Image files, folders, glob patterns, or - to read paths from stdin."
            ),
        ),
        _param(
            "recursive",
            bool,
            typer.Option(False, "--recursive", "-r", help="Descend into subfolders of folder inputs."),
        ),
        _param(
            "null",
            bool,
            typer.Option(
                False, "--null", "-0", help="Paths on stdin are separated by NUL characters (find -print0), not lines."
            ),
        ),
        _param(
            "batch_size", int, typer.Option(1, "--batch-size", "-b", min=1, metavar="N", help="Images per model pass.")
        ),
    ]
    if output_dir is not None:
        params += [
            _param(
                "output_dir",
                Path,
                typer.Option(Path(output_dir), "--output-dir", "-o", metavar="DIR", help="Where results are written."),
            ),
            _param(
                "json_lines",
                bool,
                typer.Option(False, "--json", help=f"One JSON object per image on stdout instead of {what}."),
            ),
            _param(
                "skip_existing",
                bool,
                typer.Option(False, "--skip-existing", help="Skip images whose outputs all exist (resume)."),
            ),
        ]
    return _grouped(BatchOptions, "batch", params)
