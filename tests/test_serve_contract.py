"""One server contract for every method of the registry: the real ``faseg serve`` subprocess on loopback,
and the app in-process answering exactly what ``faseg segment`` writes (mask, provenance record)."""

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.engine.methods import METHODS
from tests import imagefiles

httpx = pytest.importorskip("httpx", reason="httpx is installed with the [test] extra")
pytest.importorskip("starlette", reason="the serve extra is installed with the [test] extra")

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def tiny_model(method: str) -> str:
    """The method's random-weight test model, from the method table."""
    return METHODS[method].tiny_model


def png(width=48, height=32) -> bytes:
    buffer = io.BytesIO()
    imagefiles.rgb(buffer, width, height, 0, fmt="PNG")
    return buffer.getvalue()


def record_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return json.loads(image.info["faseg"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "faseg_cli", "serve", *options]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_until_up(server: subprocess.Popen, base: str) -> dict:
    for _ in range(240):
        try:
            return httpx.get(f"{base}/health", timeout=2).json()
        except httpx.TransportError:
            if server.poll() is not None:
                pytest.fail(server.stderr.read())
            time.sleep(0.5)
    pytest.fail("the server did not start")


@pytest.mark.parametrize("method", METHODS)
def test_served_mask_and_record_equal_the_commands(method, shared_cache, tmp_path):
    """In-process: the JSON answer's mask and its provenance record are those of `faseg segment`."""
    from starlette.testclient import TestClient

    from faseg_cli.engine.faseg.segmenter import Segmenter
    from faseg_cli.serve.app import create_app
    from faseg_cli.serve.service import CandidateModels, SegmentService

    model = tiny_model(method)
    (tmp_path / "photo.png").write_bytes(png())
    cli = runner.invoke(
        app, ["segment", "photo.png", "-c", "dog, cat", "--method", method, "--model", model, "-o", "out"]
    )
    assert cli.exit_code == 0, cli.stderr
    segmenter = Segmenter.load(model, method=method, device="cpu", dtype="fp32")
    models = CandidateModels([], "both", "tiny-clip", "tiny-blip", "cpu", None)
    service = SegmentService(segmenter, models, model, random_weights=True)
    with TestClient(create_app(service), base_url="http://127.0.0.1:7860") as client:
        health = client.get("/health").json()
        answer = client.post("/segment", files={"image": ("photo.png", png())}, data={"classes": "dog, cat"})
    assert health["method"] == method and health["random_weights"] is True
    assert answer.status_code == 200, answer.text
    served = base64.b64decode(answer.json()["mask_png"])
    written = (tmp_path / "out" / "photo.png").read_bytes()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(served))), np.asarray(Image.open(io.BytesIO(written))))
    assert record_of(served) == record_of(written)
    assert record_of(served)["settings"]["threshold"] == answer.json()["settings"]["threshold"]


@pytest.mark.parametrize("method", METHODS)
def test_serve_subprocess_contract(method, shared_cache, tmp_path):
    """The real command on loopback: answers, vocabulary requests on the tiny companions, the Host and
    Origin checks, one log line per request, a busy port, and Ctrl-C."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    model = tiny_model(method)
    options = ["--method", method, "--model", model, "--port", str(port), "--allow-origin", "http://localhost:3000"]
    server = start(*options)
    try:
        health = wait_until_up(server, base)
        assert health["method"] == method and health["model"] == model and health["random_weights"] is True
        image = {"image": ("a.png", png())}
        answer = httpx.post(f"{base}/segment", files=image, data={"classes": "cat"}, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["classes"] == ["cat"] and record_of(base64.b64decode(answer.json()["mask_png"]))
        vocab = httpx.post(f"{base}/segment", files=image, data={"vocab": "voc"}, timeout=300)
        assert vocab.status_code == 200, vocab.text
        evil = {"Host": "evil.example", "Origin": "http://evil.example"}
        forged = httpx.post(f"{base}/segment", files=image, data={"classes": "cat"}, headers=evil, timeout=60)
        assert forged.status_code == 403 and "Host 'evil.example'" in forged.json()["error"]
        rebound = httpx.get(f"{base}/health", headers={"Host": f"rebind.example:{port}"}, timeout=10)
        assert rebound.status_code == 403
        page = {"Origin": "http://evil.example"}
        cross = httpx.post(f"{base}/segment", files=image, data={"classes": "cat"}, headers=page, timeout=60)
        assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]
        for origin in ("http://localhost:3000", base):
            allowed = httpx.post(
                f"{base}/segment", files=image, data={"classes": "cat"}, headers={"Origin": origin}, timeout=120
            )
            assert allowed.status_code == 200, (origin, allowed.text)
        busy = subprocess.run(
            [sys.executable, "-m", "faseg_cli", "serve", "--method", method, "--model", model, "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert busy.returncode == 2
        assert busy.stderr == f"error: port {port} on 127.0.0.1 is already in use: choose another with --port\n"
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 130, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert "POST /segment 200 " in stderr and "POST /segment 403 " in stderr and "GET /health 200 " in stderr


def concurrent_posts(base: str, count: int, **fields) -> list:
    """``count`` requests sent at once (threads); each an ``httpx.Response`` or the exception it raised."""
    from concurrent.futures import ThreadPoolExecutor

    def send(_):
        try:
            return httpx.post(f"{base}/segment", files={"image": ("a.png", png(320, 240))}, data=fields, timeout=120)
        except httpx.HTTPError as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(send, range(count)))


@pytest.mark.parametrize("stop,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_answers_the_queue_503_and_exits_with_the_shells_code(stop, code, shared_cache):
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start("--model", "tiny-random", "--port", str(port), "--max-batch", "1", "--grace", "30")
    try:
        wait_until_up(server, base)
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(concurrent_posts, base, 6, classes="cat, dog")
            while httpx.get(f"{base}/health", timeout=5).json()["queued"] < 3:
                time.sleep(0.05)
            server.send_signal(stop)
            answers = sent.result()
    finally:
        if server.poll() is None:
            server.send_signal(stop)
        _, stderr = server.communicate(timeout=60)
    statuses = [a.status_code for a in answers if isinstance(a, httpx.Response)]
    assert statuses.count(503) >= 3 and set(statuses) <= {200, 503}, (statuses, stderr)
    refused = [a.json() for a in answers if isinstance(a, httpx.Response) and a.status_code == 503]
    assert all(r == {"error": "the server is shutting down"} for r in refused)
    assert server.returncode == code and "Traceback" not in stderr
    assert f"{signal.Signals(stop).name}: stopping (" in stderr


def test_a_second_signal_exits_at_once(shared_cache):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start("--model", "tiny-random", "--port", str(port), "--max-batch", "1", "--grace", "600")
    try:
        wait_until_up(server, base)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            pool.submit(concurrent_posts, base, 3, classes="cat")
            while not httpx.get(f"{base}/health", timeout=5).json()["queued"]:
                time.sleep(0.05)
            server.send_signal(signal.SIGINT)
            time.sleep(0.3)
            began = time.monotonic()
            server.send_signal(signal.SIGINT)
            _, stderr = server.communicate(timeout=30)
            assert time.monotonic() - began < 10
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
    assert server.returncode == 130 and "Traceback" not in stderr
    assert "error: stopped at once by a second SIGINT" in stderr


def test_load_script_runs_and_shows_the_queue_limit(shared_cache, tmp_path):
    report = tmp_path / "load.json"
    script = ROOT / "benchmarks" / "serve_load.py"
    options = ["--clients", "1", "6", "--requests", "2", "--max-queue", "1", "--resolution", "64"]
    done = subprocess.run(
        [sys.executable, str(script), *options, "--output", str(report)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    levels = json.loads(report.read_text())["levels"]
    assert [level["clients"] for level in levels] == [1, 6]
    assert levels[0]["statuses"] == {"200": 2} and levels[0]["p50_s"] > 0 and levels[0]["server_mib"]["VmRSS"] > 0
    assert levels[1]["statuses"].get("503", 0) > 0 and levels[1]["retry_after_s"] and levels[1]["statuses"]["200"] > 0
