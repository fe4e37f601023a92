"""Every command checks its inputs before loading a model, and makes output folders only to write a file."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.errors import OutputError
from faseg_cli.files.outputs import check_writable
from tests import imagefiles
from tests.dataset_builders import build

runner = CliRunner()
NO_MODEL = "./no/such/model"

COMMANDS = {
    "segment": ["--classes", "dog", "-m", NO_MODEL, "-o", "out/masks"],
    "attention": ["--classes", "dog", "-m", NO_MODEL, "-o", "out/maps"],
    "candidates": ["--vocab", "voc", "--clip-model", NO_MODEL, "--caption-model", NO_MODEL],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_input_is_reported_before_any_model_loads(command):
    result = runner.invoke(app, [command, "missing.jpg", *COMMANDS[command]])
    assert result.exit_code == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: missing.jpg: no such file"]
    assert "no/such/model" not in result.stderr and not Path("out").exists()


@pytest.mark.parametrize("command", ["segment", "attention"])
def test_failed_model_load_leaves_no_output_folder(command, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    (tmp_path / "broken").mkdir()
    result = runner.invoke(app, [command, "a.png", "--classes", "dog", "-m", "broken", "-o", "out/deep"])
    assert result.exit_code == 1 and "broken is not a complete diffusion model directory" in result.stderr
    assert not Path("out").exists()


def test_eval_with_a_failed_model_load_leaves_no_folders(tmp_path):
    build("voc", tmp_path / "data")
    (tmp_path / "broken").mkdir()
    args = ["eval", "voc", "data", "-m", "broken", "--save-masks", "masks/voc", "-o", "results/r.json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "not a complete diffusion model directory" in result.stderr
    assert not Path("masks").exists() and not Path("results").exists()


def test_writability_is_checked_without_creating_anything(tmp_path):
    check_writable(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a folder"):
        check_writable(tmp_path / "file" / "sub")
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog", "-m", NO_MODEL, "-o", "file/sub"])
    assert result.exit_code == 1 and "is not a folder" in result.stderr and NO_MODEL not in result.stderr
