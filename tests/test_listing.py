"""``faseg models``, ``faseg vocab``, ``faseg candidates --model``, and the colours of ``segment --json``."""

import json

from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.files.palette import class_colors
from faseg_cli.models.registry import MODELS
from faseg_cli.vocabularies import builtin_names, load_vocabulary
from tests import imagefiles

runner = CliRunner()


def test_models_lists_every_registered_model_with_kind_licence_and_cache_state(shared_cache):
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert list(records) == list(MODELS)
    assert records["diffusion"]["kind"] == "sd15" and "non-commercial" in records["diffusion"]["license"]
    assert (
        records["diffusion"]["used_with"] == ["--method fa-seg", "--method diffsegmenter"]
        and records["diffusion"]["size"] == "4.4 GB"
    )
    assert records["clip"]["used_with"] == ["--method naclip", "--clip-model"] and records["clip"]["license"] == "MIT"
    assert records["tiny-blip"]["used_with"] == ["--caption-model"]
    assert not records["diffusion"]["cached"] and records["diffusion"]["revision"] == MODELS["diffusion"].revision
    runner.invoke(app, ["download", "tiny-clip"])
    records = {r["name"]: r for r in map(json.loads, runner.invoke(app, ["models", "--json"]).stdout.splitlines())}
    assert records["tiny-clip"]["cached"] and records["tiny-clip"]["path"].startswith(str(shared_cache))
    table = runner.invoke(app, ["models"]).stdout.splitlines()
    assert table[0].split() == ["NAME", "KIND", "SIZE", "LICENCE", "REVISION", "CACHED", "USE", "WITH"]
    assert len(table) == 1 + len(MODELS) and table[1].split()[:4] == ["diffusion", "sd15", "4.4", "GB"]


def test_vocab_lists_vocabularies_and_prints_one_as_a_vocabulary_file(tmp_path):
    listing = runner.invoke(app, ["vocab"]).stdout.splitlines()
    assert [line.split()[0] for line in listing[1:]] == builtin_names()
    assert listing[1 + builtin_names().index("voc")].split()[1] == "20"
    result = runner.invoke(app, ["vocab", "voc"])
    assert result.exit_code == 0 and result.stdout.splitlines() == list(load_vocabulary("voc").classes)
    (tmp_path / "mine.txt").write_text("dog: puppy, hound\ncat\n")
    assert runner.invoke(app, ["vocab", "mine.txt"]).stdout == "dog: puppy, hound\ncat\n"
    (record,) = map(json.loads, runner.invoke(app, ["vocab", "mine.txt", "--json"]).stdout.splitlines())
    assert record == {"name": "mine", "classes": ["dog", "cat"], "synonyms": {"puppy": "dog", "hound": "dog"}}
    assert len(runner.invoke(app, ["vocab", "--json"]).stdout.splitlines()) == len(builtin_names())
    result = runner.invoke(app, ["vocab", "nope"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "coco" in result.stderr


def test_candidates_model_tiny_random_brings_the_tiny_candidate_models(tmp_path, shared_cache):
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["candidates", "a.png", "--vocab", "voc", "--model", "tiny-random"])
    assert result.exit_code == 0, result.output
    assert "candidates come from tiny-blip and tiny-clip" in result.stderr
    assert json.loads(result.stdout)["image"] == "a.png"


def test_segment_json_carries_the_colours_the_api_returns(tmp_path, shared_cache):
    imagefiles.rgb(tmp_path / "a.png")
    args = ["segment", "a.png", "--classes", "dog,person", "--json", "-m", "tiny-random", "--resolution", "64"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    colors = json.loads(result.stdout)["colors"]
    assert colors == class_colors(["dog", "person"]) == {"background": "#000000", "dog": "#800000", "person": "#008000"}
