"""``faseg download``: fetch model weights ahead of time."""

from __future__ import annotations

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.registry import MODELS


@guarded
def download(
    models: list[str] = typer.Argument(
        None, help=f"Models to fetch: {', '.join(MODELS)}, a hub id, or 'all'. Default: diffusion."
    ),
) -> None:
    """Download and cache model weights so later runs work offline."""
    from faseg_cli.registry import DIFFUSION, lookup
    from faseg_cli.weights import resolve_model

    names = models or ["diffusion"]
    if "all" in names:
        names = [name for name, source in MODELS.items() if not source.builder]
    for name in names:
        source = lookup(name) or DIFFUSION
        typer.echo(str(resolve_model(name, source)))
