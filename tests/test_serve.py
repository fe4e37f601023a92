"""``faseg serve``: the HTTP API through an ASGI test client, with the tiny models."""

import asyncio
import base64
import io
import json
import re
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
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION

pytest.importorskip("starlette", reason="the serve extra is installed with the [test] extra")
httpx = pytest.importorskip("httpx", reason="httpx is installed with the [test] extra")

from starlette.testclient import TestClient  # noqa: E402

from faseg_cli.serve.app import create_app  # noqa: E402
from faseg_cli.serve.service import CandidateModels, SegmentService  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


LOCAL = "http://127.0.0.1:7860"


@pytest.fixture
def service(segmenter):
    from faseg_cli.vocabularies import builtin_names

    models = CandidateModels(builtin_names(), "both", "tiny-clip", "tiny-blip", "cpu", None)
    return SegmentService(segmenter, models, "tiny")


@pytest.fixture
def client(service):
    app_ = create_app(service, max_upload_bytes=200_000)
    with TestClient(app_, base_url=LOCAL, raise_server_exceptions=True) as test_client:
        yield test_client


def post(client, data: bytes, name="photo.png", **fields):
    return client.post("/segment", files={"image": (name, data)}, data=fields)


def png(width=40, height=30, seed=0) -> bytes:
    buffer = io.BytesIO()
    imagefiles.rgb(buffer, width, height, seed, fmt="PNG")
    return buffer.getvalue()


def decoded(text: str) -> bytes:
    return base64.b64decode(text)


def test_page_is_self_contained_and_health_answers(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" in page.text and 'id="classes"' in page.text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page.text), "the page must not load anything remote"
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["device"] == "cpu"
    assert health["settings"]["resolution"] == TEST_RESOLUTION and "coco" in health["vocabularies"]


def same_image(data: bytes, path: Path) -> bool:
    """Same pixels, mode and palette (the CLI's files also carry their provenance record)."""
    with Image.open(io.BytesIO(data)) as served, Image.open(path) as written:
        same = served.mode == written.mode and served.getpalette() == written.getpalette()
        return same and np.array_equal(np.asarray(served), np.asarray(written))


def test_same_mask_and_overlay_as_the_cli(client, tiny_model_dir, tmp_path):
    imagefiles.exif_rotated(tmp_path / "photo.jpg")
    model = ["--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)]
    for threshold in ("0.55", "0.3"):
        cli = runner.invoke(
            app, ["segment", "photo.jpg", "-c", "dog, person", "--overlay", "-t", threshold, "-o", threshold, *model]
        )
        assert cli.exit_code == 0, cli.stderr
        answer = post(client, Path("photo.jpg").read_bytes(), "photo.jpg", classes="dog,person", threshold=threshold)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert same_image(decoded(data["mask_png"]), Path(threshold, "photo.png"))
        assert "overlay_jpeg" not in data
        with_overlay = post(
            client, Path("photo.jpg").read_bytes(), classes="dog,person", threshold=threshold, overlay=1
        )
        assert same_image(decoded(with_overlay.json()["overlay_jpeg"]), Path(threshold, "photo.overlay.jpg"))
        assert data["settings"]["threshold"] == float(threshold) and data["settings"]["resolution"] == TEST_RESOLUTION
    assert data["classes"] == ["dog", "person"] and (data["width"], data["height"]) == (20, 40)
    assert sum(data["fractions"].values()) == pytest.approx(1.0) and data["seconds"] > 0
    assert data["colors"] == {"background": "#000000", "dog": "#800000", "person": "#008000"}
    mask = Image.open(io.BytesIO(decoded(data["mask_png"])))
    assert mask.mode == "P" and mask.size == (20, 40)


@pytest.mark.parametrize(
    "data,fields,status,message",
    [
        (b"hello, not an image", {"classes": "dog"}, 400, "not an image"),
        (b"", {"classes": "dog"}, 400, "empty file"),
        (imagefiles.bomb_png(), {"classes": "dog"}, 413, "image too large (900 MP; the limit is 179 MP, Pillow's"),
        (
            imagefiles.bomb_png(8000, 6000),
            {"classes": "dog"},
            413,
            "image too large (8000x6000, 48 MP; the limit is 40",
        ),
        (bytes(300_000), {"classes": "dog"}, 413, "upload too large"),
        (png(), {}, 400, "no classes given"),
        (png(), {"classes": " , "}, 400, "empty class name"),
        (png(), {"classes": "dog,Dog"}, 400, "duplicate class name"),
        (png(), {"classes": " ".join(["tok"] * 100)}, 400, "longer than 75 tokens"),
        (png(), {"classes": "dog", "vocab": "voc"}, 400, "not both"),
        (png(), {"vocab": "/etc/passwd"}, 400, "expected one of"),
        (png(), {"classes": "dog", "threshold": "2"}, 400, "between 0 and 1"),
        (png(), {"classes": "dog", "color": "red"}, 400, "unknown field"),
    ],
)
def test_bad_requests_get_one_line_4xx_and_the_server_goes_on(client, data, fields, status, message):
    answer = post(client, data, **fields)
    assert answer.status_code == status and list(answer.json()) == ["error"]
    assert message in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert post(client, png(), classes="dog").status_code == 200


def test_requests_that_are_not_uploads(client):
    assert client.post("/segment", json={"classes": "dog"}).json()["error"].startswith("send a multipart/form-data")
    assert client.post("/segment", data={"classes": "dog"}).status_code == 400
    no_image = client.post("/segment", files={"classes": (None, "dog")})
    assert no_image.status_code == 400 and "no image" in no_image.json()["error"]
    assert client.get("/segment").status_code == 405 and "error" in client.get("/segment").json()
    assert client.get("/nothing").status_code == 404 and "error" in client.get("/nothing").json()


def test_a_failing_model_pass_fails_its_request_only(client, service, monkeypatch):
    original = service.segmenter.segment_batch

    def flaky(images, classes, captions=None, keep_maps=False):
        if any("boom" in names for names in classes):
            raise RuntimeError("out of memory")
        return original(images, classes, captions, keep_maps)

    monkeypatch.setattr(service.segmenter, "segment_batch", flaky)
    answer = post(client, png(), classes="boom")
    assert answer.status_code == 500 and answer.json() == {"error": "internal error: RuntimeError: out of memory"}
    assert post(client, png(), classes="dog").status_code == 200


def test_concurrent_requests_are_batched(service):
    app_ = create_app(service, max_batch=3, max_wait=0.5)

    async def send_all():
        transport = httpx.ASGITransport(app=app_)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            requests = [
                http.post("/segment", files={"image": ("a.png", png(seed=i))}, data={"classes": "cat", "threshold": t})
                for i, t in enumerate(["0.5", "0.5", "0.6", "0.5"])
            ]
            answers = await asyncio.gather(*requests)
            return answers, (await http.get("/health")).json()

    answers, health = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["settings"]["threshold"] for a in answers] == [0.5, 0.5, 0.6, 0.5]
    assert health["requests"] == 4 and health["largest_batch"] == 3 and health["batches"] == 2


def test_vocabulary_requests_find_candidates(client):
    from faseg_cli.vocabularies import load_vocabulary

    answer = post(client, png(64, 48), vocab="voc", caption="auto")
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["classes"]) <= set(load_vocabulary("voc").classes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_command_serves_on_loopback(tiny_model_dir, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "faseg_cli", "serve", "--model", str(tiny_model_dir), "--port", str(port)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        health = None
        for _ in range(120):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.5)
        assert health is not None and health["status"] == "ok"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/segment", files={"image": ("a.png", png())}, data={"classes": "cat"}, timeout=60
        )
        assert answer.status_code == 200 and answer.json()["classes"] == ["cat"]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert f"Serving on http://127.0.0.1:{port}/ (bound to 127.0.0.1: only this machine can connect" in stderr
    assert "Traceback" not in stderr


def test_serve_warns_off_loopback_and_needs_its_extra(tiny_model_dir, monkeypatch):
    import importlib.util

    from faseg_cli.serve import server

    calls = []
    monkeypatch.setattr(server, "bind", lambda host, port: calls.append((host, port)) or socket.socket())
    monkeypatch.setattr(server, "run", lambda app_, sock, grace: calls.append(grace) or 0)
    model = ["--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)]
    result = runner.invoke(app, ["serve", "--host", "192.0.2.1", "--port", "9", *model])
    assert result.exit_code == 0, result.stderr
    assert calls == [("192.0.2.1", 9), 10.0]
    assert "warning: bound to 192.0.2.1: anyone who can reach this machine" in result.stderr
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "uvicorn" else find_spec(name))
    missing = runner.invoke(app, ["serve", *model])
    assert missing.exit_code == 1
    assert (
        missing.stderr.startswith("error: faseg serve needs the serve extra: ") and "-m pip install" in missing.stderr
    )
    assert calls == [("192.0.2.1", 9), 10.0]


def test_the_cli_does_not_import_the_server_stack():
    code = "import json, sys, faseg_cli.cli.app; print("
    code += "json.dumps([m for m in ('starlette', 'uvicorn') if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and json.loads(out.stdout) == []


def test_masks_decode_to_the_labels(client):
    data = post(client, png(), classes="cat, dog").json()
    labels = np.asarray(Image.open(io.BytesIO(decoded(data["mask_png"]))))
    counts = np.bincount(labels.ravel(), minlength=3) / labels.size
    assert dict(zip(["background", "cat", "dog"], counts.tolist())) == pytest.approx(data["fractions"])


def test_upload_limit_holds_without_a_declared_length(client):
    boundary = "faseg-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode()

    def body():
        yield head
        for _ in range(30):
            yield bytes(10_000)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    answer = client.post("/segment", content=body(), headers=headers)
    assert answer.status_code == 413 and answer.json()["error"].startswith("upload too large")
    assert post(client, png(), classes="dog").status_code == 200


def test_memory_script_runs(tmp_path, monkeypatch):
    import runpy

    script = ROOT / "benchmarks" / "serve_memory.py"
    report = tmp_path / "memory.json"
    monkeypatch.setattr(sys, "argv", [str(script), "--requests", "12", "--warmup", "4", "--output", str(report)])
    runpy.run_path(str(script), run_name="__main__")
    data = json.loads(report.read_text())
    assert data["answered"] == {"200": 11, "400": 1} and data["largest_batch"] > 1
    assert data["rss_mib"][0]["after"] >= 4 and data["rss_mib"][-1]["after"] == 12


def test_coco_answer_decodes_to_the_mask(client):
    from pycocotools.coco import COCO

    answer = post(client, png(), "shot.png", classes="dog,person", coco="1")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    coco = COCO()
    coco.dataset = data["coco"]
    coco.createIndex()
    assert coco.dataset["images"] == [{"id": 1, "file_name": "shot.png", "width": 40, "height": 30}]
    mask = np.asarray(Image.open(io.BytesIO(decoded(data["mask_png"]))))
    labels = np.zeros_like(mask)
    for ann in coco.loadAnns(coco.getAnnIds()):
        labels[coco.annToMask(ann) > 0] = ann["category_id"]
    np.testing.assert_array_equal(labels, mask)
    assert "coco" not in post(client, png(), classes="dog").json()
