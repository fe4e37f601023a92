"""``faseg download``: fetch model weights ahead of time."""

from __future__ import annotations

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.help import examples
from faseg_cli.models.registry import MODELS

EXAMPLES = examples(
    ("the diffusion model (about 4.4 GB)", "faseg download"),
    ("BLIP and CLIP, for --vocab and --caption auto (about 2.5 GB)", "faseg download blip clip"),
    ("every registered model", "faseg download all"),
)


@guarded
def download(
    models: list[str] = typer.Argument(
        None, metavar="MODEL...", help=f"Models to fetch: {', '.join(MODELS)}, a hub id, or 'all'. Default: diffusion."
    ),
) -> None:
    """Download and cache model weights so later runs work offline."""
    from faseg_cli.models.registry import DIFFUSION, lookup
    from faseg_cli.models.weights import resolve_model

    names = models or ["diffusion"]
    if "all" in names:
        names = [name for name, source in MODELS.items() if not source.builder]
    for name in names:
        source = lookup(name) or DIFFUSION
        typer.echo(str(resolve_model(name, source)))
