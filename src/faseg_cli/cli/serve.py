"""``faseg serve``: load the model once and answer HTTP requests (a web page and a JSON API)."""

import ipaddress

import typer

from faseg_cli.cli.console import guarded, note
from faseg_cli.cli.help import examples
from faseg_cli.cli.options import CandidateOptions, EngineOptions, candidate_options, engine_options
from faseg_cli.errors import FasegError, UsageError

SERVE_PACKAGES = ("starlette", "uvicorn", "python-multipart")

EXAMPLES = examples(
    ("a page and API on http://127.0.0.1:7860/", "faseg serve"),
    ("the tiny test model, another port", "faseg serve --model tiny-random --port 8000"),
    ("vocabulary requests too (BLIP + TagCLIP load once)", "faseg serve --vocab coco"),
)


@guarded
@candidate_options
@engine_options
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="ADDRESS", help="Address to bind; the default lets only this machine in."
    ),
    port: int = typer.Option(7860, "--port", "-p", min=1, max=65535, metavar="PORT", help="Port to listen on."),
    max_upload_mb: float = typer.Option(
        20.0, "--max-upload-mb", metavar="MB", help="Largest accepted upload, in megabytes."
    ),
    max_batch: int = typer.Option(4, "--max-batch", min=1, metavar="N", help="Most requests per model pass."),
    max_wait_ms: float = typer.Option(
        20.0, "--max-wait-ms", min=0, metavar="MS", help="How long a model pass waits for more requests to batch."
    ),
    candidates: CandidateOptions = None,
    engine: EngineOptions = None,
) -> None:
    """Serve FA-Seg over HTTP: a page at / and the API POST /segment, GET /health.

    The model (and with --vocab the candidate models) loads once. POST /segment
    takes a multipart form: image (file), classes (dog,person) or vocab (automatic
    candidates), optional caption, threshold and overlay=1; it answers JSON with
    the classes, fractions, seconds, settings and the mask as a base64 palette
    PNG, the same mask `faseg segment` writes. Requests run one model pass at a
    time, those arriving together in one batch. Binds to 127.0.0.1 unless --host
    says otherwise.
    """
    _check_extra()
    if max_upload_mb <= 0:
        raise UsageError(f"--max-upload-mb {max_upload_mb:g}: must be positive")
    import uvicorn

    from faseg_cli.serve.app import create_app
    from faseg_cli.serve.service import CandidateModels, SegmentService
    from faseg_cli.vocabularies import builtin_names

    if candidates.vocab:
        candidates.vocabulary()
    segmenter = engine.load(engine.settings())
    device, dtype = engine.resolve()
    vocabularies = builtin_names() + ([candidates.vocab] if candidates.vocab else [])
    chosen = candidates.for_model(engine.model)
    models = CandidateModels(
        vocabularies, chosen.candidate_source, chosen.clip_model, chosen.caption_model, device, dtype
    )
    if candidates.vocab:
        models.generator(candidates.vocab)
    service = SegmentService(segmenter, models, engine.model)
    app = create_app(
        service, max_upload_bytes=int(max_upload_mb * 2**20), max_batch=max_batch, max_wait=max_wait_ms / 1000
    )
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if _loopback(host):
        note(f"Serving on {url} (bound to {host}: only this machine can connect; Ctrl-C stops)")
    else:
        note(f"Serving on {url} (Ctrl-C stops)")
        note(f"warning: bound to {host}: anyone who can reach this machine can use the server (no authentication)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_extra() -> None:
    """One line, before any model loads, when the serve extra is not installed."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("starlette", "uvicorn", "multipart")):
        raise FasegError(f"faseg serve needs the serve extra: {extra_command()}")


def extra_command(prefix: str | None = None) -> str:
    """The command that adds the serve extra's packages to this installation (``prefix``: its environment):
    ``pipx inject faseg ...`` in a pipx environment (``pipx install ".[serve]"`` over an existing
    install does nothing), else ``python -m pip install ...`` with this interpreter."""
    import shlex
    import sys
    from importlib import metadata
    from pathlib import Path

    try:
        wanted = [r.split(";")[0].strip() for r in metadata.requires("faseg") or [] if 'extra == "serve"' in r]
    except metadata.PackageNotFoundError:
        wanted = []
    packages = " ".join(shlex.quote(r.replace(" ", "")) for r in wanted or SERVE_PACKAGES)
    if (Path(prefix or sys.prefix) / "pipx_metadata.json").is_file():
        return f"pipx inject faseg {packages}"
    return f"{shlex.quote(sys.executable)} -m pip install {packages}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
