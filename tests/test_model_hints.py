"""Every hint of a missing-weights error works as written: the option it names for a local directory is the
one that command accepts, and its `faseg download ...` fetches the model in the right layout."""

import re

import pytest
from typer.testing import CliRunner

from faseg_cli.cli import app
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION
from tests.fake_hub import FakeHub
from tests.test_model_lookup import online  # noqa: F401 - a fixture

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_blip_dir(tmp_path_factory):
    from faseg_cli.models.random_clip_blip import write_tiny_blip

    return write_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


def hint(args):
    """The error line of a run whose model is not cached: (its download command, the option it names)."""
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    (line,) = [row for row in result.stderr.splitlines() if row.startswith("error: ")]
    download = re.search(r"run `faseg ([^`]+)`", line)
    local = re.search(r"pass (--[\w-]+) with a local directory", line)
    return download.group(1).split(), local.group(1) if local else None


@pytest.mark.parametrize(
    "args, local_dir, option",
    [
        (["segment", "a.png", "--classes", "cat", "--resolution", str(TEST_RESOLUTION)], "tiny_model_dir", "--model"),
        (["segment", "a.png", "--classes", "cat", "--method", "naclip"], "tiny_clip_dir", "--model"),
        (["attention", "a.png", "--classes", "cat", "--resolution", str(TEST_RESOLUTION)], "tiny_model_dir", "--model"),
        (["candidates", "a.png", "--vocab", "voc", "--caption-model", "tiny-blip"], "tiny_clip_dir", "--clip-model"),
        (["candidates", "a.png", "--vocab", "voc", "--clip-model", "tiny-clip"], "tiny_blip_dir", "--caption-model"),
    ],
)
def test_the_local_directory_hint_names_the_option_that_works(args, local_dir, option, request, shared_cache, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    download, named = hint(args)
    assert named == option
    assert download[0] == "download" and runner.invoke(app, ["download", "--help"]).exit_code == 0
    result = runner.invoke(app, [*args, named, str(request.getfixturevalue(local_dir))])
    assert result.exit_code == 0, result.output


def test_the_download_hint_of_an_unregistered_clip_fetches_a_clip(online, tiny_clip_dir, tmp_path):  # noqa: F811
    imagefiles.rgb(tmp_path / "a.png")
    args = ["segment", "a.png", "--classes", "cat", "--method", "naclip", "-m", "someone/clip"]
    download, named = hint(args)
    assert download == ["download", "--kind", "clip", "someone/clip"] and named == "--model"
    hub = FakeHub({"someone/clip": tiny_clip_dir})
    try:
        online(hub.url)
        assert runner.invoke(app, ["download", "someone/clip"]).exit_code == 1  # as a diffusion model: incomplete
        result = runner.invoke(app, download)
        assert result.exit_code == 0, result.output
        assert runner.invoke(app, args).exit_code == 0
    finally:
        hub.close()
