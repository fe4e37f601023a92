"""``faseg models`` and ``faseg vocab``: what faseg knows by name, listed on stdout (JSON lines with --json)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from faseg_cli.cli.console import guarded
from faseg_cli.cli.help import examples

MODELS_EXAMPLES = examples(
    ("the registered models: kind, size, licence, revision, whether cached, what uses them", "faseg models"),
    ("the same as JSON lines, e.g. the names of the cached ones", "faseg models --json | jq -r 'select(.cached).name'"),
)
VOCAB_EXAMPLES = examples(
    ("the built-in vocabularies and their first classes", "faseg vocab"),
    (
        "the classes of one, in the vocabulary file format (edit and pass back with --vocab FILE)",
        "faseg vocab voc > my-voc.txt",
    ),
    ("one vocabulary as JSON", "faseg vocab coco --json"),
)
JSON_HELP = "One JSON object per line instead of a table."


def model_record(source) -> dict:
    """What ``faseg models --json`` says about one registered model (looks at the cache, fetches nothing)."""
    from faseg_cli.engine.methods import model_uses
    from faseg_cli.models.weights import cached_path

    path = cached_path(source)
    return {
        "name": source.name,
        "repo": source.repo_id,
        "kind": source.kind.name,
        "size": source.size,
        "license": source.license,
        "revision": source.revision,
        "cached": path is not None,
        "path": str(path) if path else None,
        "used_with": [where for kind, where in model_uses() if source.kind.fits(kind)],
        "built_locally": source.builder is not None,
        "description": source.description,
    }


def table(rows: list[list[str]]) -> list[str]:
    """Rows as lines of left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


@guarded
def models_command(json_lines: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the registered models: kind, size, licence, pinned revision, cached or not, and what uses them.

    Any command that needs a model fetches it on first use (`faseg download` does it
    ahead of time); tiny-* models are built locally in seconds, with random weights.
    """
    from faseg_cli.models.registry import MODELS

    records = [model_record(source) for source in MODELS.values()]
    if json_lines:
        for record in records:
            typer.echo(json.dumps(record))
        return
    rows = [["NAME", "KIND", "SIZE", "LICENCE", "REVISION", "CACHED", "USE WITH"]]
    for r in records:
        revision = "built locally" if r["built_locally"] else r["revision"][:10]
        cached = "yes" if r["cached"] else "no"
        rows.append(
            [r["name"], r["kind"], r["size"] or "?", r["license"] or "?", revision, cached, ", ".join(r["used_with"])]
        )
    for line in table(rows):
        typer.echo(line)


@guarded
def vocab_command(
    name: Optional[str] = typer.Argument(
        None, metavar="[NAME|FILE]", help="A built-in vocabulary or a vocabulary file: list its classes."
    ),
    json_lines: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the built-in vocabularies (for --vocab), or the classes of one.

    With NAME, one class per line in the vocabulary file format (`class: synonym,
    synonym`), so the output saved to a file, edited, is a vocabulary for --vocab FILE.
    """
    from faseg_cli.vocabularies import builtin_names, load_vocabulary

    vocabularies = [load_vocabulary(name)] if name else [load_vocabulary(n) for n in builtin_names()]
    if json_lines:
        for vocab in vocabularies:
            record = {"name": vocab.name, "classes": list(vocab.classes), "synonyms": dict(vocab.synonyms)}
            typer.echo(json.dumps(record, ensure_ascii=False))
    elif name:
        (vocab,) = vocabularies
        aliases = {cls: [a for a, c in vocab.synonyms.items() if c == cls] for cls in vocab.classes}
        for cls in vocab.classes:
            typer.echo(f"{cls}: {', '.join(aliases[cls])}" if aliases[cls] else cls)
    else:
        rows = [["NAME", "CLASSES", "FIRST CLASSES"]]
        for vocab in vocabularies:
            first = ", ".join(vocab.classes[:6]) + (", ..." if len(vocab.classes) > 6 else "")
            rows.append([vocab.name, str(len(vocab.classes)), first])
        for line in table(rows):
            typer.echo(line)
