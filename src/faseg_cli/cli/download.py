"""``faseg download``: fetch model weights ahead of time."""

from __future__ import annotations

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.help import examples
from faseg_cli.models.registry import MODELS

KINDS = list(dict.fromkeys(source.kind.name for source in MODELS.values()))

EXAMPLES = examples(
    ("the diffusion model (about 4.4 GB)", "faseg download"),
    ("BLIP and CLIP, for --vocab and --caption auto (about 2.5 GB)", "faseg download blip clip"),
    ("every registered model", "faseg download all"),
    ("a CLIP model from the Hub, for --method naclip", "faseg download --kind clip openai/clip-vit-large-patch14"),
)


@guarded
def download(
    models: list[str] = typer.Argument(
        None, metavar="MODEL...", help=f"Models to fetch: {', '.join(MODELS)}, a hub id, or 'all'. Default: diffusion."
    ),
    kind: str = typer.Option(
        "sd15",
        "--kind",
        metavar="|".join(KINDS),
        help="What a Hub id that is not registered is (its files are fetched in that layout): "
        f"{', '.join(KINDS)}. Registered models know their kind.",
    ),
) -> None:
    """Download and cache model weights so later runs work offline."""
    from faseg_cli.errors import UsageError
    from faseg_cli.models.registry import layout_of, lookup
    from faseg_cli.models.weights import resolve_model

    layouts = {source.kind.name: source.kind for source in MODELS.values()}
    if kind not in layouts:
        raise UsageError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
    names = models or ["diffusion"]
    if "all" in names:
        names = [name for name, source in MODELS.items() if not source.builder]
    for name in names:
        source = lookup(name.partition("@")[0]) or layout_of(layouts[kind])
        typer.echo(str(resolve_model(name, source, option=None)))
