"""``--method naclip`` on the commands, end to end on the tiny random CLIP."""

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.naclip.model import NaclipModel
from faseg_cli.engine.naclip.settings import NaclipSettings
from faseg_cli.evaluation.datasets import get_dataset
from tests.dataset_builders import build

runner = CliRunner()


@pytest.fixture
def image(photo, tmp_path):
    photo.save(tmp_path / "photo.png")
    return "photo.png"


def test_segment_writes_the_api_mask(image, tiny_clip_dir, photo):
    result = runner.invoke(
        app, ["segment", image, "--classes", "dog,person", "--method", "naclip", "-m", str(tiny_clip_dir), "--scores"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "faseg-out/photo.png\n" and "(NACLIP)" in result.stderr
    expected = Segmenter.load(str(tiny_clip_dir), method="naclip").segment(photo, ["dog", "person"])
    assert np.array_equal(np.asarray(Image.open("faseg-out/photo.png")), expected.labels)
    assert np.load("faseg-out/photo.npz")["scores"].shape == (2, 48, 64)


def test_json_lines_name_the_method(image, tiny_clip_dir):
    args = ["segment", image, "--classes", "dog", "--method", "naclip", "-m", str(tiny_clip_dir), "--json", "--no-pamr"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["method"], record["pamr"], record["classes"]) == ("naclip", False, ["dog"])
    assert "inversion" not in record


def test_eval_uses_the_dataset_config_and_resumes(tiny_clip_dir, tmp_path):
    build("voc", tmp_path / "data")
    args = ["eval", "voc", "data", "--method", "naclip", "-m", str(tiny_clip_dir), "-o", "r.json"]
    first = runner.invoke(app, [*args, "--limit", "1"])
    assert first.exit_code == 0, first.stderr
    changed = runner.invoke(app, [*args, "--resume", "--no-pamr"])
    assert changed.exit_code == 2 and "different settings" in changed.stderr
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(Path("r.json").read_text())
    assert data["method"] == "naclip" and data["thresholds"] == [0.1] and data["images"] == 3
    assert data["model"]["name"] == str(tiny_clip_dir)
    assert data["settings"]["window"] == 0 and data["settings"]["pamr_steps"] == 10
    assert data["class_source"] == "all"  # NACLIP's published protocol: every class of the dataset on every image
    assert data["name_file"] == "cls_voc21.txt"
    assert result.stdout.startswith(
        f"voc mIoU {data['miou']:.2f} (classes all, names cls_voc21.txt, threshold 0.1, 3 images)"
    )


def test_eval_asks_the_published_queries_and_maps_them_by_line(tiny_clip_dir, tmp_path, monkeypatch):
    built = build("voc", tmp_path / "data")
    asked = []
    original = NaclipModel.query_features
    monkeypatch.setattr(NaclipModel, "query_features", lambda self, names: asked.append(names) or original(self, names))
    args = ["eval", "voc", "data", "--method", "naclip", "-m", str(tiny_clip_dir), "--json", "--save-masks", "masks"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["name_file"] == "cls_voc21.txt"
    lines = (resources.files("faseg_cli") / "data" / "naclip" / "cls_voc21.txt").read_text("utf-8").split("\n")
    assert asked[0] == [query for line in lines for query in line.split(", ")]  # background line first, in order
    assert asked[0].count("person") == 1 and "person in jacket" in asked[0] and "ship" in asked[0]
    assert "boat" not in asked[0] and "tv monitor" in asked[0] and "television monitor" in asked[0]

    dataset = get_dataset("voc").open("data")
    classes = list(get_dataset("voc").published_queries().classes)
    assert (classes[3], classes[3].prompts, classes[14].prompts[-1]) == ("boat", ("ship",), "person in jacket")
    segmenter = Segmenter.load(str(tiny_clip_dir), method="naclip", settings=NaclipSettings.for_dataset("voc"))
    for sample in dataset.samples():
        labels = segmenter.segment(sample.image_path, classes).labels
        expected = dataset.metric_to_stored(dataset.prediction_to_metric(labels, classes))
        assert np.array_equal(np.asarray(Image.open(f"masks/{sample.id}.png")), expected)
    assert len(dataset) == len(built.ids)


def test_eval_without_background_is_argmax(tiny_clip_dir, tmp_path):
    build("voc20", tmp_path / "data")
    result = runner.invoke(app, ["eval", "voc20", "data", "--method", "naclip", "-m", str(tiny_clip_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["thresholds"] == [0.0] and data["settings"]["background"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["segment", "--method", "naclip", "--tau", "3"], "--tau does not apply to --method naclip"),
        (["segment", "--method", "naclip", "--no-flip"], "--no-flip does not apply to --method naclip"),
        (["segment", "--no-pamr"], "--no-pamr does not apply to --method fa-seg"),
        (["segment", "--method", "sam"], "--method sam: expected one of fa-seg, naclip"),
        (["attention", "--method", "naclip"], "faseg attention dumps attention maps"),
    ],
)
def test_options_of_the_other_method_are_usage_errors(image, args, message):
    result = runner.invoke(app, [args[0], image, "--classes", "dog", *args[1:]])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_default_model_follows_the_method():
    from faseg_cli.cli.options import EngineOptions

    assert EngineOptions().model == "diffusion" and EngineOptions(method="naclip").model == "clip"
    assert EngineOptions(method="naclip", model="tiny-clip").model == "tiny-clip"
