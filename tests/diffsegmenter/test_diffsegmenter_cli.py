"""DiffSegmenter through the commands and the Python API, on tiny random models: results independent of batching."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from faseg_cli.cli import app
from tests.dataset_builders import build

runner = CliRunner()
FIDELITY = Path(__file__).parent
TINY_SD = FIDELITY.parent / "fidelity" / "tiny-sd"
TINY_BLIP = FIDELITY / "tiny-blip"


def test_quickstart_and_seed(shared_cache, photo):
    photo.save("photo.jpg")
    args = ["segment", "photo.jpg", "--classes", "dog,person", "--method", "diffsegmenter", "--model", "tiny-random"]
    args += ["--resolution", "128", "--json", "-o", "out"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["method"] == "diffsegmenter" and record["seed"] == 4307
    assert record["prompt"].startswith("a photograph of dog++") and " | a photograph of person++" in record["prompt"]
    assert "DiffSegmenter, captions by tiny-blip" in first.stderr
    again = runner.invoke(app, args)
    other = runner.invoke(app, [*args, "--seed", "1"])
    assert json.loads(again.stdout)["fractions"] == record["fractions"]
    assert json.loads(other.stdout)["seed"] == 1 and json.loads(other.stdout)["fractions"] != record["fractions"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tau", "3"], "--tau does not apply to --method diffsegmenter"),
        (["--no-flip"], "--no-flip does not apply to --method diffsegmenter"),
        (["--resolution", "100"], "--resolution 100"),
    ],
)
def test_options_of_other_methods_are_usage_errors(photo, args, message):
    photo.save("photo.jpg")
    result = runner.invoke(app, ["segment", "photo.jpg", "--classes", "dog", "--method", "diffsegmenter", *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_seed_does_not_apply_to_fa_seg(photo):
    photo.save("photo.jpg")
    result = runner.invoke(app, ["segment", "photo.jpg", "--classes", "dog", "--seed", "3"])
    assert result.exit_code == 2 and "--seed does not apply to --method fa-seg" in result.stderr


def test_attention_writes_each_class_prompt_and_maps(shared_cache, photo):
    photo.save("photo.jpg")
    args = ["attention", "photo.jpg", "--classes", "dog,cat", "--method", "diffsegmenter", "--model", "tiny-random"]
    result = runner.invoke(app, [*args, "--resolution", "128", "-o", "att"])
    assert result.exit_code == 0, result.stderr
    arrays = np.load("att/photo/attention.npz")
    assert arrays["cross_2"].shape == (1, 2, 2, 2) and arrays["self_16"].shape == (2, 256, 256)
    assert arrays["fused"].shape == arrays["refined"].shape == (1, 2, 16, 16)
    assert arrays["scores"].shape == (2, 48, 64) and arrays["prompts"][1].startswith("a photograph of cat++")
    assert sorted(p.name for p in Path("att/photo").glob("*.png")) == ["01-dog.png", "02-cat.png"]


def test_eval_names_the_best_threshold(shared_cache, tmp_path):
    build("voc", tmp_path / "data")
    args = ["eval", "voc", "data", "--method", "diffsegmenter", "--model", "tiny-random", "--resolution", "128"]
    result = runner.invoke(app, [*args, "--candidates", "gt", "--thresholds", "0.3:0.74:0.22", "-o", "r.json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(Path("r.json").read_text())
    assert [e["threshold"] for e in data["per_threshold"]] == [0.3, 0.52, 0.74]
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and sum("best threshold" in line for line in lines) == 1
    assert f"best threshold {data['best_threshold']:g}" in result.stdout


@torch.inference_mode()
def test_results_do_not_depend_on_batching():
    from faseg_cli.engine.blip import Captioner
    from faseg_cli.engine.diffsegmenter.segmenter import DiffSegmenter
    from faseg_cli.engine.diffsegmenter.settings import DiffSegmenterSettings
    from faseg_cli.engine.diffusion.model import DiffusionModel

    model = DiffusionModel.load(TINY_SD, torch.device("cpu"), torch.float32)
    captioner = Captioner.load(str(TINY_BLIP))
    settings = DiffSegmenterSettings(resolution=256)
    image = FIDELITY / "chelsea_voc" / "image.jpg"
    classes = [["cat", "dog", "person"], ["dog"]]
    together = DiffSegmenter(model, captioner, settings).segment_batch([image, image], classes)
    apart = DiffSegmenter(model, captioner, settings.with_(classes_per_pass=1))
    for names, joint in zip(classes, together):
        alone = apart.segment(image, names)
        np.testing.assert_allclose(alone.scores, joint.scores, atol=1e-4)
        assert (alone.labels == joint.labels).mean() >= 0.999
    np.testing.assert_allclose(together[1].scores[0], together[0].scores[1], atol=1e-4)
