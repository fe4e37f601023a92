"""Weights that are not cached: one short Hub lookup, one line when it fails, the real download when it works."""

import socket
import time
from pathlib import Path

import pytest
from huggingface_hub import constants
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.errors import WeightsError
from faseg_cli.models import weights
from faseg_cli.models.registry import CLIP, DIFFUSION, suggest
from faseg_cli.models.weights import resolve_model
from tests import imagefiles
from tests.fake_hub import FakeHub

runner = CliRunner()


@pytest.fixture
def online(monkeypatch):
    """Lift the test suite's offline mode and point huggingface_hub at the URL given."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def point(url: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")

    return point


@pytest.fixture
def fake_hub(tiny_model_dir):
    hub = FakeHub({"someone/tiny": tiny_model_dir})
    yield hub
    hub.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_unreachable_hub_fails_at_once_in_one_line(online, tmp_path):
    online(f"http://127.0.0.1:{closed_port()}")
    began = time.perf_counter()
    with pytest.raises(WeightsError, match="the Hub cannot be reached"):
        resolve_model("diffusion", DIFFUSION)
    seconds = time.perf_counter() - began
    assert seconds < 8, f"{seconds:.1f} s: the Hub's retries (23 s of back-off sleeps) are back"
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog", "-o", "out"])
    assert result.exit_code == 1 and result.stdout == ""
    line = one_error_line(result.stderr)
    assert "not in the cache" in line and "the Hub cannot be reached" in line and "Connection refused" in line
    assert "run `faseg download diffusion` on a machine with network access" in line and "--model" in line
    assert not Path("out").exists()
    result = runner.invoke(app, ["download"])
    assert result.exit_code == 1 and "the Hub cannot be reached" in one_error_line(result.stderr)


def test_a_hub_that_never_answers_costs_one_timeout(online, monkeypatch):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        online(f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setattr(weights, "PROBE_TIMEOUT", 0.5)
        began = time.perf_counter()
        with pytest.raises(WeightsError, match="the Hub cannot be reached") as failure:
            resolve_model("someone/model", DIFFUSION)
        assert time.perf_counter() - began < 4 and "\n" not in str(failure.value)


@pytest.mark.parametrize(
    "typed,meant", [("tiny_random", "tiny-random"), ("difusion", "diffusion"), ("Tiny-Random", "tiny-random")]
)
def test_mistyped_name_fails_without_network_and_suggests(typed, meant, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog", "-m", typed])
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert f"unknown model {typed!r} (did you mean {meant}?)" in line and "Hub id (owner/name)" in line
    assert "did you mean tiny-clip?" in one_error_line(runner.invoke(app, ["download", "tiny_clip"]).stderr)


def test_suggestions_only_for_near_misses():
    assert suggest("xcliu/2_rectified_flow_from_sd_1.5") == DIFFUSION.repo_id
    assert suggest("tinyrandom") == "tiny-random"
    assert suggest("openai/clip-vit-base-patch32") is None and suggest("someone/model") is None
    assert suggest("tiny") is None


def test_hub_id_not_cached_offline_is_one_line(tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog", "-m", "someone/model"])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "someone/model@main is not in the cache" in line and "HF_HUB_OFFLINE is set" in line
    assert "`faseg download someone/model`" in line and "did you mean" not in line
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog", "-m", "xcliu/2_rectified_flow_from_sd_1_5"])
    assert one_error_line(result.stderr).endswith(f"did you mean {DIFFUSION.repo_id}?")
    with pytest.raises(WeightsError, match="pass --clip-model with a local directory"):
        resolve_model("clip", CLIP, "--clip-model")
    with pytest.raises(WeightsError, match="network access: did you mean|network access$"):
        resolve_model("clip", CLIP, None)  # faseg download: no option names a local directory


def test_download_through_the_hub_api(online, fake_hub, monkeypatch):
    online(fake_hub.url)
    result = runner.invoke(app, ["download", "someone/tiny"])
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert (path / "unet" / "config.json").is_file() and (path / "tokenizer" / "vocab.json").is_file()
    assert "Retrying" not in result.stderr and "Warning" not in result.stderr
    fetched = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert runner.invoke(app, ["download", "someone/tiny"]).stdout.strip() == str(path)
    assert len(fake_hub.requests) == fetched


def test_unknown_repository_is_one_request_and_one_line(online, fake_hub):
    online(fake_hub.url)
    result = runner.invoke(app, ["download", "someone/other"])
    assert result.exit_code == 1
    assert f"no model someone/other on the Hub ({fake_hub.url})" in one_error_line(result.stderr)
    asked = [request for request in fake_hub.requests if "someone/other" in request]
    assert len(asked) == 1 and asked[0].startswith("GET /api/models/someone/other/revision/main")
