"""``faseg serve``: load the model once and answer HTTP requests (a web page and a JSON API)."""

import ipaddress
import math
from dataclasses import replace
from typing import List

import typer

from faseg_cli.cli.console import guarded, note
from faseg_cli.cli.help import examples
from faseg_cli.cli.options import CandidateOptions, EngineOptions, candidate_options, engine_options
from faseg_cli.errors import FasegError, UsageError

EXTRA = 'faseg serve needs the serve extra: pip install "faseg[serve]"'

EXAMPLES = examples(
    ("a page and API on http://127.0.0.1:7860/", "faseg serve"),
    ("the tiny test model, another port", "faseg serve --model tiny-random --port 8000"),
    ("vocabulary requests too (BLIP + TagCLIP load once)", "faseg serve --vocab coco"),
    (
        "NACLIP, and a page on another origin may use it",
        "faseg serve --method naclip --allow-origin http://localhost:3000",
    ),
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
    max_megapixels: str = typer.Option(
        "40",
        "--max-megapixels",
        metavar="MP",
        help="Largest accepted image, in megapixels (inf: no limit), checked from its header before decoding.",
    ),
    max_batch: int = typer.Option(4, "--max-batch", min=1, metavar="N", help="Most requests per model pass."),
    max_wait_ms: float = typer.Option(
        20.0, "--max-wait-ms", min=0, metavar="MS", help="How long a model pass waits for more requests to batch."
    ),
    max_queue: int = typer.Option(
        16, "--max-queue", min=1, metavar="N", help="Most requests waiting for the model; past it, 503 + Retry-After."
    ),
    deadline: float = typer.Option(
        120.0, "--deadline", metavar="S", help="Seconds a request may take from arrival to answer (0: none); then 503."
    ),
    read_timeout: float = typer.Option(
        30.0, "--read-timeout", metavar="S", help="Seconds an upload may take to arrive (0: none); then 408."
    ),
    grace: float = typer.Option(
        10.0, "--grace", metavar="S", help="On Ctrl-C or SIGTERM, seconds the running requests get to finish."
    ),
    allow_origin: List[str] = typer.Option(
        [],
        "--allow-origin",
        metavar="ORIGIN",
        help="Also accept POSTs from web pages of this origin (http://host:port; repeatable). Others are refused.",
    ),
    candidates: CandidateOptions = None,
    engine: EngineOptions = None,
) -> None:
    """Serve a segmentation method over HTTP: a page at / and the API POST /segment, GET /health.

    The model (and with --vocab the candidate models) loads once. POST /segment
    takes a multipart form: image (file), classes (dog,person) or vocab (automatic
    candidates), optional caption, threshold and overlay=1; it answers JSON with
    the classes, fractions, seconds, settings and the mask as a base64 palette
    PNG, the same mask (and provenance record) `faseg segment` writes. Requests
    run one model pass at a time, those arriving together in one batch; past
    --max-queue waiting, 503. Binds to 127.0.0.1 unless --host says otherwise, and
    answers only requests addressed to this machine and, from web pages, only its
    own page (see --allow-origin). Ctrl-C or SIGTERM: stops within --grace
    seconds, exit 130 or 143. A busy port: exit 2.
    """
    _check_extra()
    limits = _limits(
        host, max_upload_mb, max_megapixels, max_batch, max_wait_ms, max_queue, deadline, read_timeout, allow_origin
    )
    if not math.isfinite(grace) or grace < 0:
        raise UsageError(f"--grace {grace:g}: expected a number of seconds, 0 or more")
    from faseg_cli.serve.app import create_app, describe_limits
    from faseg_cli.serve.server import bind, run
    from faseg_cli.serve.service import CandidateModels, SegmentService
    from faseg_cli.vocabularies import builtin_names

    if candidates.vocab:
        candidates.vocabulary()
    sock = bind(host, port)
    try:
        segmenter = engine.load(engine.settings())
        device, dtype = engine.resolve()
        vocabularies = builtin_names() + ([candidates.vocab] if candidates.vocab else [])
        chosen = candidates.for_model(engine.model)
        models = CandidateModels(
            vocabularies, chosen.candidate_source, chosen.clip_model, chosen.caption_model, device, dtype
        )
        if candidates.vocab:
            models.generator(candidates.vocab)

        def describe_source(source, vocab):
            candidates_for = replace(candidates, vocab=vocab) if vocab else candidates
            candidates_for.describe(source, vocab is not None, engine.model)

        service = SegmentService(segmenter, models, engine.model, describe_source, random_weights(engine.model))
        app = create_app(service, limits)
    except BaseException:
        sock.close()
        raise
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if _loopback(host):
        note(f"Serving on {url} (bound to {host}: only this machine can connect; Ctrl-C stops)")
    else:
        note(f"Serving on {url} (Ctrl-C stops)")
        note(f"warning: bound to {host}: anyone who can reach this machine can use the server (no authentication)")
    note(describe_limits(limits))
    if service.random_weights:
        note(f"{engine.model} has random weights: its masks are meaningless (a test model)")
    raise typer.Exit(run(app, sock, grace))


def _limits(host, max_upload_mb, max_megapixels, max_batch, max_wait_ms, max_queue, deadline, read_timeout, origins):
    """The server's ``Limits``; a usage error (before any model loads) for a value out of range."""
    from faseg_cli.files.images import parse_megapixels
    from faseg_cli.serve.access import normal_origin
    from faseg_cli.serve.app import Limits

    if not (math.isfinite(max_upload_mb) and max_upload_mb > 0):
        raise UsageError(f"--max-upload-mb {max_upload_mb:g}: expected a positive number of megabytes")
    try:
        max_pixels = parse_megapixels(max_megapixels)
    except ValueError:
        raise UsageError(f"--max-megapixels {max_megapixels}: expected a positive number (or inf)") from None
    for flag, value in (("--deadline", deadline), ("--read-timeout", read_timeout)):
        if not (math.isfinite(value) and value >= 0):
            raise UsageError(f"{flag} {value:g}: expected a number of seconds, 0 (none) or more")
    for origin in origins:
        if normal_origin(origin) is None:
            raise UsageError(f"--allow-origin {origin}: expected scheme://host[:port], e.g. http://example.org:8080")
    return Limits(
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_pixels=max_pixels,
        max_batch=max_batch,
        max_wait=max_wait_ms / 1000,
        max_queue=max_queue,
        deadline=deadline or None,
        read_timeout=read_timeout or None,
        bound_host=host,
        allowed_origins=tuple(origins),
    )


def random_weights(model: str) -> bool:
    """True when ``model`` names a random-weight test model (a registered one built locally)."""
    from faseg_cli.models.registry import lookup

    source = lookup(model)
    return source is not None and source.builder is not None


def _check_extra() -> None:
    """One line, before any model loads, when the serve extra is not installed."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("starlette", "uvicorn", "multipart")):
        raise FasegError(EXTRA)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
