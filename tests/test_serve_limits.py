"""``faseg serve`` under load and abuse: the queue limit, the deadline, clients that leave, slow uploads,
forged Host and Origin headers, shutdown, the pixel limit and the option checks (tiny model, ASGI)."""

import asyncio
import io
import logging
import threading

import pytest
from typer.testing import CliRunner

from faseg_cli.cli import app
from tests import imagefiles

pytest.importorskip("starlette", reason="the serve extra is installed with the [test] extra")
httpx = pytest.importorskip("httpx", reason="httpx is installed with the [test] extra")

from faseg_cli.serve.access import Access  # noqa: E402
from faseg_cli.serve.app import create_app  # noqa: E402
from faseg_cli.serve.service import CandidateModels, SegmentService  # noqa: E402

LOCAL = "http://127.0.0.1:7860"
runner = CliRunner()


def png(width=40, height=30) -> bytes:
    buffer = io.BytesIO()
    imagefiles.rgb(buffer, width, height, 0, fmt="PNG")
    return buffer.getvalue()


class Gate:
    """A service whose model pass waits until ``open`` is called, counting the requests it computes."""

    def __init__(self, service) -> None:
        self.service = service
        self.opened = threading.Event()
        self.computed = 0
        self.running = threading.Event()
        original = service.run

        def run(requests):
            self.running.set()
            self.opened.wait(30)
            self.computed += len(requests)
            return original(requests)

        service.run = run


@pytest.fixture
def service(segmenter):
    return SegmentService(segmenter, CandidateModels([], "both", "tiny-clip", "tiny-blip", "cpu", None), "tiny")


def form(**fields):
    return {"files": {"image": ("a.png", png())}, "data": {"classes": "cat", **fields}}


async def until(condition, seconds=30.0):
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


def test_past_the_queue_limit_503_with_retry_after(service):
    gate = Gate(service)
    app_ = create_app(service, max_batch=1, max_wait=0, max_queue=2)

    async def scenario():
        transport = httpx.ASGITransport(app=app_)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=60) as client:
            first = asyncio.ensure_future(client.post("/segment", **form()))
            await until(gate.running.is_set)
            queued = [asyncio.ensure_future(client.post("/segment", **form())) for _ in range(2)]
            await until(lambda: app_.state.batcher.queued == 2)
            over = await client.post("/segment", **form())
            health = (await client.get("/health")).json()
            gate.opened.set()
            return over, health, [await f for f in [first, *queued]]

    over, health, answered = asyncio.run(scenario())
    assert over.status_code == 503 and int(over.headers["retry-after"]) >= 1
    assert over.json() == {"error": "the server is busy: 2 requests are waiting (--max-queue); try again later"}
    assert health["busy"] == 1 and health["queued"] == 2 and health["max_queue"] == 2
    assert [a.status_code for a in answered] == [200] * 3


def test_requests_of_clients_that_left_or_timed_out_never_reach_the_model(service, caplog):
    gate = Gate(service)
    app_ = create_app(service, max_batch=1, max_wait=0, deadline=1.0)

    async def scenario():
        transport = httpx.ASGITransport(app=app_)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=60) as client:
            first = asyncio.ensure_future(client.post("/segment", **form()))
            await until(gate.running.is_set)
            late = await client.post("/segment", **form())
            gate.opened.set()
            await until(lambda: app_.state.batcher.stats.dropped == 1)
            return await first, late

    with caplog.at_level(logging.DEBUG, logger="faseg"):
        first, late = asyncio.run(scenario())
    assert late.status_code == 503 and "no answer within 1 s (--deadline)" in late.json()["error"]
    assert "retry-after" in late.headers
    # the first one passed its deadline while the model computed it: retrying would not help
    assert first.status_code == 503 and "retry-after" not in first.headers
    assert (
        first.json()["error"]
        == "no answer within 1 s (--deadline): segmenting it took longer; send a smaller image or raise --deadline"
    )
    assert "while the model computed it" in caplog.text
    assert gate.computed == 1 and app_.state.batcher.stats.dropped == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def asgi_post(app_, body: list[bytes], then: dict | None = None, complete: bool = False):
    """Drive the app with a raw ASGI POST whose body arrives in ``body`` chunks (all of it if ``complete``),
    followed by ``then`` (e.g. a disconnect) or nothing ever; returns (status, body) of the answer."""
    boundary = "b0undary"
    sent = []

    async def receive():
        if body:
            chunk = body.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(body) or not complete}
        if then is not None:
            return then
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/segment",
        "scheme": "http",
        "headers": [
            (b"host", b"127.0.0.1:7860"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
        "query_string": b"",
        "server": ("127.0.0.1", 7860),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(app_(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def head(boundary="b0undary") -> bytes:
    return f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode()


def whole_form(boundary="b0undary") -> bytes:
    fields = f'--{boundary}\r\nContent-Disposition: form-data; name="classes"\r\n\r\ncat\r\n'.encode()
    return fields + head(boundary) + png() + f"\r\n--{boundary}--\r\n".encode()


def test_a_request_whose_client_left_is_never_computed(service, caplog):
    gate = Gate(service)
    gate.opened.set()
    with caplog.at_level(logging.DEBUG, logger="faseg"):
        status, _ = asgi_post(create_app(service), [whole_form()], {"type": "http.disconnect"}, complete=True)
    assert status == 499 and gate.computed == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_half_sent_upload_times_out_408(service):
    app_ = create_app(service, read_timeout=0.3)
    status, body = asgi_post(app_, [head(), b"x" * 100])
    assert status == 408 and b"upload too slow: not complete after 0.3 s (--read-timeout)" in body


def test_a_client_leaving_mid_upload_is_logged_at_debug_only(service, caplog):
    app_ = create_app(service)
    with caplog.at_level(logging.DEBUG, logger="faseg"):
        status, _ = asgi_post(app_, [head(), b"x" * 100], then={"type": "http.disconnect"})
    assert status == 499
    assert [r.levelno for r in caplog.records if "segment" in r.getMessage()] == [logging.DEBUG, logging.DEBUG]
    assert not [r for r in caplog.records if "internal error" in r.getMessage() or r.levelno >= logging.WARNING]


def test_forged_host_and_cross_origin_posts_are_refused(service):
    from starlette.testclient import TestClient

    with TestClient(create_app(service, allowed_origins=("https://tools.example",)), base_url=LOCAL) as client:
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 403
        assert client.get("/", headers={"Host": "evil.example:7860"}).json()["error"].startswith("Host 'evil.example'")
        for host in ("localhost:7860", "127.0.0.1", "[::1]:7860", "app.localhost"):
            assert client.get("/health", headers={"Host": host}).status_code == 200, host
        cross = client.post("/segment", headers={"Origin": "http://evil.example"}, **form())
        assert cross.status_code == 403 and cross.json()["error"].startswith("cross-origin request from")
        assert client.post("/segment", headers={"Origin": "null"}, **form()).status_code == 403
        assert client.post("/segment", headers={"Origin": "http://localhost:7860"}, **form()).status_code == 403
        for origin in (LOCAL, "https://tools.example", "HTTPS://TOOLS.EXAMPLE:443"):
            assert client.post("/segment", headers={"Origin": origin}, **form()).status_code == 200, origin
        assert client.post("/segment", **form()).status_code == 200


def test_access_rules():
    local = Access("127.0.0.1")
    assert local.host_problem("192.168.1.5") and local.host_problem(None) and local.host_problem("127.0.0.1.nip.io")
    assert local.host_problem("127.0.0.2:80") is None and local.host_problem("LOCALHOST") is None
    everywhere = Access("0.0.0.0")
    assert everywhere.host_problem("192.168.1.5:7860") is None and everywhere.host_problem("evil.example")
    assert Access("myhost.lan").host_problem("myhost.lan:7860") is None
    with pytest.raises(ValueError):
        Access("127.0.0.1", ["evil.example"])


def test_shutdown_refuses_the_queue_with_503_json(service):
    gate = Gate(service)
    app_ = create_app(service, max_batch=1, max_wait=0)

    async def scenario():
        transport = httpx.ASGITransport(app=app_)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=60) as client:
            first = asyncio.ensure_future(client.post("/segment", **form()))
            await until(gate.running.is_set)
            queued = asyncio.ensure_future(client.post("/segment", **form()))
            await until(lambda: app_.state.batcher.queued == 1)
            assert app_.state.batcher.refuse() == 1
            refused = await queued
            after = await client.post("/segment", **form())
            gate.opened.set()
            return await first, refused, after

    first, refused, after = asyncio.run(scenario())
    assert first.status_code == 200
    for answer in (refused, after):
        assert answer.status_code == 503 and answer.json() == {"error": "the server is shutting down"}


def test_pixel_limit_of_the_commands(model_args, tmp_path, monkeypatch):
    (tmp_path / "huge.png").write_bytes(imagefiles.bomb_png(8000, 6000))
    imagefiles.rgb(tmp_path / "small.png", 40, 30)
    result = runner.invoke(app, ["segment", "huge.png", "small.png", "-c", "cat", "-o", "out", *model_args])
    assert result.exit_code == 1
    assert "error: huge.png: image too large (8000x6000, 48 MP; the limit is 40 MP)\n" in result.stderr
    assert (tmp_path / "out" / "small.png").exists() and "Traceback" not in result.stderr
    monkeypatch.setenv("FASEG_MAX_MEGAPIXELS", "0.001")
    small = runner.invoke(app, ["segment", "small.png", "-c", "cat", "-o", "out2", *model_args])
    assert small.exit_code == 1
    assert "small.png: image too large (40x30, 0.0012 MP; the limit is 0.001 MP)" in small.stderr


@pytest.mark.parametrize(
    "option,message",
    [
        (["--max-upload-mb", "inf"], "--max-upload-mb inf: expected a positive number of megabytes"),
        (["--max-upload-mb", "nan"], "--max-upload-mb nan: expected a positive number of megabytes"),
        (["--max-upload-mb", "-1"], "--max-upload-mb -1: expected a positive number of megabytes"),
        (["--max-megapixels", "0"], "--max-megapixels 0: expected a positive number (or inf)"),
        (["--deadline", "nan"], "--deadline nan: expected a number of seconds, 0 (none) or more"),
        (["--allow-origin", "evil.example"], "--allow-origin evil.example: expected scheme://host[:port]"),
    ],
)
def test_bad_serve_options_are_usage_errors_before_any_model_loads(option, message):
    result = runner.invoke(app, ["serve", "--model", "/no/such/model", *option])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1


def test_tiny_test_models_get_the_tiny_candidate_models():
    from faseg_cli.cli.options import CandidateOptions

    for model in ("tiny-random", "tiny-clip"):
        assert CandidateOptions().for_model(model).model_names() == ("tiny-blip", "tiny-clip")
    assert CandidateOptions().for_model("clip").model_names() == ("blip", "clip")


def test_once_stopping_a_second_signal_exits_at_once_even_after_uvicorn_returned():
    """uvicorn gives the signals back when it returns; the process then still has work before it exits (the
    running batch, the interpreter's shutdown): a second Ctrl-C there must not print a KeyboardInterrupt."""
    import os
    import signal
    import time
    from types import SimpleNamespace

    from faseg_cli.serve.server import bind, exit_at_once, run

    async def lifespan_only(scope, receive, send):
        while scope["type"] == "lifespan":
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return

    lifespan_only.state = SimpleNamespace(batcher=SimpleNamespace(refuse=lambda: 0, busy=False, abandon=lambda: 0))
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def stop_when_serving():
        while signal.getsignal(signal.SIGTERM) is saved[signal.SIGTERM]:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_serving, daemon=True).start()
    try:
        assert run(lifespan_only, bind("127.0.0.1", 0), grace=0) == 143
        assert signal.getsignal(signal.SIGINT) is exit_at_once and signal.getsignal(signal.SIGTERM) is exit_at_once
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
