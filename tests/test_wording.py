"""Messages that name what they are about: skipped files, the choices of an option, the size limit, the
timestep in effect, where the overlay's legend is, the command that adds the serve extra."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.cli.serve import extra_command
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.errors import InputError
from faseg_cli.files.images import load_image
from faseg_cli.files.inputs import collect_inputs
from faseg_cli.files.overlay import legend_layout
from faseg_cli.serve.service import settings_dict
from tests import dataset_builders, imagefiles

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_skipped_files_are_named_up_to_a_few(tmp_path):
    (tmp_path / "a").mkdir()
    imagefiles.rgb(tmp_path / "a" / "x.png")
    (tmp_path / "a" / "notes.txt").write_text("-")
    (found,) = collect_inputs([str(tmp_path / "a")]).notes
    assert found == f"{tmp_path / 'a'}: skipped 1 file that is not an image: notes.txt"
    for name in "bcdef":
        (tmp_path / "a" / f"{name}.txt").write_text("-")
    (found,) = collect_inputs([str(tmp_path / "a")]).notes
    assert found.endswith("skipped 6 files that are not images: b.txt, c.txt, d.txt and 3 more")


@pytest.mark.parametrize("option, choices", [("--candidates", "auto, all, gt"), ("--captions", "auto, none")])
def test_a_bad_class_or_caption_source_lists_the_choices(option, choices, tmp_path):
    dataset_builders.build_voc(tmp_path / "data")
    result = runner.invoke(app, ["eval", "voc", "data", option, "bogus", "-m", "tiny-random"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {option} bogus: expected {choices} or a file (there is no file bogus)"


@pytest.mark.parametrize("limit", [5000, 9000])
def test_too_large_images_say_their_size_and_the_limit(limit, tmp_path):
    path = imagefiles.rgb(tmp_path / "big.png", 100, 100)
    with pytest.raises(InputError, match=r"image too large \(100x100, [\d.]+ MP; the limit is [\d.]+ MP"):
        load_image(path, max_pixels=limit)


def test_recorded_settings_carry_the_timestep_in_effect(tmp_path, model_args):
    assert settings_dict(FasegSettings())["timestep"] == 1  # /health and the server's answers
    assert settings_dict(FasegSettings(inversion="none"))["timestep"] == 0
    assert settings_dict(FasegSettings(timestep=5))["timestep"] == 5
    dataset_builders.build_voc(tmp_path / "data")
    result = runner.invoke(app, ["eval", "voc", "data", "--candidates", "gt", "--limit", "1", *model_args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["timestep"] == 1


def test_the_readme_puts_the_legend_where_the_overlay_has_it():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "a legend below a landscape image or to the right of a portrait one" in readme
    assert "legend beside it" not in readme
    landscape = legend_layout((300, 200), [40, 40], 12, 4)
    portrait = legend_layout((200, 300), [40, 40], 12, 4)
    assert all(top >= 200 for _, top in landscape.cells) and all(left >= 200 for left, _ in portrait.cells)


def test_the_serve_extra_is_added_by_a_command_that_works_here(tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "pipx_metadata.json").write_text("{}")
    assert extra_command(str(tmp_path)).startswith("pipx inject faseg 'starlette>=")
    assert " -m pip install 'starlette>=" in extra_command(str(tmp_path / "venv"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    result = runner.invoke(app, ["serve", "--model", "tiny-random"])
    assert (
        result.exit_code == 1
        and result.stderr.strip() == f"error: faseg serve needs the serve extra: {extra_command()}"
    )
    assert "faseg[serve]" not in (ROOT / "README.md").read_text() + (ROOT / "docs" / "usage.md").read_text()
