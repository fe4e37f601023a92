"""``faseg eval`` end to end on synthetic datasets with the tiny model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.datasets import dataset_names
from tests.conftest import TEST_RESOLUTION
from tests.dataset_builders import build, write_label

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def model_args(tiny_model_dir):
    return ["--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)]


@pytest.fixture
def run(model_args):
    def invoke(*args):
        return runner.invoke(app, ["eval", *args, *model_args])

    return invoke


def results(path) -> dict:
    """A results file without its timings (which differ between runs)."""
    data = json.loads(Path(path).read_text())
    data.pop("timing")
    return data


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_voc_summary_on_stdout_table_on_stderr(run, tmp_path):
    build("voc", tmp_path / "data")
    result = run("voc", "data", "-o", "r.json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(Path("r.json").read_text())
    assert result.stdout == f"voc mIoU {data['miou']:.2f} (threshold 0.55, 3 images)\n"
    assert "IoU per class" in result.stderr and "tv monitor" in result.stderr and "Evaluated 3 images" in result.stderr
    assert data["dataset"] == "voc" and data["thresholds"] == [0.55] and data["best_threshold"] == 0.55
    assert (data["class_source"], data["caption_source"], data["images"], data["failed"]) == ("gt", "none", 3, 0)
    assert len(data["iou"]) == 21 and data["settings"]["resolution"] == TEST_RESOLUTION
    assert data["timing"]["processes"] == 1 and data["timing"]["seconds_per_image"] > 0
    as_json = run("voc", "data", "--json")
    printed = json.loads(as_json.stdout)
    printed.pop("timing")
    assert printed == results("r.json")


def test_default_threshold_is_the_datasets_and_can_be_overridden(run, tmp_path):
    build("context", tmp_path / "data")
    assert run("context", "data", "--limit", "1").stdout == run("context", "data", "--limit", "1", "-t", "0.5").stdout
    assert "(threshold 0.5, 1 image)" in run("context", "data", "--limit", "1").stdout
    assert "(threshold 0.7, 1 image)" in run("context", "data", "--limit", "1", "-t", "0.7").stdout


def test_threshold_sweep_equals_separate_runs(run, tmp_path):
    build("voc", tmp_path / "data")
    sweep = run("voc", "data", "--thresholds", "0.45:0.55:0.05", "-o", "sweep.json")
    assert sweep.exit_code == 0, sweep.stderr
    assert [line.split("(")[1] for line in sweep.stdout.splitlines()] == [
        "threshold 0.45, 3 images)",
        "threshold 0.5, 3 images)",
        "threshold 0.55, 3 images)",
    ]
    data = results("sweep.json")
    assert "By threshold" in sweep.stderr
    for entry in data["per_threshold"]:
        alone = run("voc", "data", "-t", str(entry["threshold"]), "-o", "alone.json")
        assert alone.exit_code == 0
        assert results("alone.json")["per_threshold"] == [entry]
    best = max(data["per_threshold"], key=lambda e: e["miou"])
    assert data["best_threshold"] == best["threshold"] and data["miou"] == best["miou"]


def test_predictions_are_scored_exactly(tmp_path):
    built = build("voc", tmp_path / "data")
    gts = [np.array([[0, 0], [15, 15]]), np.array([[0, 12, 12, 255]]), np.array([[15]])]
    preds = [np.array([[0, 15], [15, 15]]), np.array([[12, 12, 0, 12]]), np.array([[15]])]
    for sample_id, gt, pred in zip(built.ids, gts, preds):
        write_label(tmp_path / "data/VOCdevkit/VOC2012/SegmentationClass" / f"{sample_id}.png", gt, palette=True)
        write_label(tmp_path / "pred" / f"{sample_id}.png", pred)
    # background 1/4, dog (12) 1/3, person (15) 3/4; the other classes are absent
    result = runner.invoke(app, ["eval", "voc", "data", "--predictions", "pred", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["miou"] == pytest.approx(100 * (1 / 4 + 1 / 3 + 3 / 4) / 3)
    assert data["pixel_accuracy"] == pytest.approx(100 * 5 / 8) and data["iou"]["dog"] == pytest.approx(100 / 3)
    assert data["iou"]["cat"] is None and data["best_threshold"] is None and data["predictions"].endswith("pred")
    (tmp_path / "pred" / f"{built.ids[2]}.png").unlink()
    # without the third image person is 2/3: mIoU (1/4 + 1/3 + 2/3) / 3
    result = runner.invoke(app, ["eval", "voc", "data", "--predictions", "pred"])
    assert result.exit_code == 1 and result.stdout == "voc mIoU 41.67 (predictions, 2 images)\n"
    assert errors(result.stderr) == [f"error: pred: no mask for 1 of 3 samples (e.g. {built.ids[2]}.png); not scored"]


@pytest.mark.parametrize("name", ["voc", "ade"])
def test_saved_masks_score_the_same_as_the_run(run, tmp_path, name):
    build(name, tmp_path / "data")
    assert run(name, "data", "--save-masks", "masks", "-o", "run.json").exit_code == 0
    mask = next(Path("masks").iterdir())
    assert Image.open(mask).mode == ("P" if name == "voc" else "L")
    scored = runner.invoke(app, ["eval", name, "data", "--predictions", "masks", "-o", "scored.json"])
    assert scored.exit_code == 0, scored.stderr
    [scored_entry], [run_entry] = results("scored.json")["per_threshold"], results("run.json")["per_threshold"]
    assert scored_entry["confusion"] == run_entry["confusion"]


def test_limit_then_resume_equals_one_run(run, tmp_path):
    build("voc", tmp_path / "data")
    assert run("voc", "data", "-o", "full.json", "--thresholds", "0.5,0.6").exit_code == 0
    first = run("voc", "data", "-o", "r.json", "--thresholds", "0.5,0.6", "--limit", "1")
    assert first.exit_code == 0 and "1 image)" in first.stdout
    assert len(json.loads(Path("r.json.partial").read_text())["finished"]) == 1
    resumed = run("voc", "data", "-o", "r.json", "--thresholds", "0.5,0.6", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert results("r.json") == results("full.json") and not Path("r.json.partial").exists()
    mismatch = run("voc", "data", "-o", "r.json", "--limit", "1")
    again = run("voc", "data", "-o", "r.json", "--resume", "--no-flip")
    assert mismatch.exit_code == 0 and again.exit_code == 2 and again.stdout == ""
    assert errors(again.stderr) == [
        "error: cannot resume from r.json.partial: it was made with a different settings; "
        "run without --resume to start over"
    ]


def test_unreadable_image_fails_alone_and_is_retried_on_resume(run, tmp_path):
    built = build("voc", tmp_path / "data")
    assert run("voc", "data", "-o", "full.json").exit_code == 0
    image = tmp_path / "data/VOCdevkit/VOC2012/JPEGImages" / f"{built.ids[1]}.jpg"
    good = image.read_bytes()
    image.write_bytes(good[:50])
    result = run("voc", "data", "-o", "r.json")
    assert result.exit_code == 1 and "(threshold 0.55, 2 images)" in result.stdout
    assert len(errors(result.stderr)) == 1 and built.ids[1] in errors(result.stderr)[0]
    assert results("r.json")["failed"] == 1 and Path("r.json.partial").exists()
    image.write_bytes(good)
    resumed = run("voc", "data", "-o", "r.json", "--resume")
    assert resumed.exit_code == 0 and results("r.json") == results("full.json")


@pytest.mark.parametrize(
    "args,message",
    [
        (["voc", "."], "voc: no PASCAL VOC 2012 val under"),
        (["pascal", "data"], "unknown dataset 'pascal'"),
        (["voc", "data", "-t", "0.5", "--thresholds", "0.4,0.6"], "give one of them"),
        (["voc", "data", "--thresholds", "0.6:0.4:0.1"], "--thresholds 0.6:0.4:0.1"),
        (["voc", "data", "--resume"], "--resume needs --output"),
        (["voc", "data", "--candidates", "lists.json"], "lists.json: cannot read"),
        (["voc", "data", "--vocab", "coco"], "--vocab does not apply to eval"),
        (["voc", "data", "--predictions", "data", "--save-masks", "m"], "--save-masks does not apply to --predictions"),
    ],
)
def test_usage_errors_are_one_line(run, tmp_path, args, message):
    build("voc", tmp_path / "data")
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == errors(result.stderr) and len(errors(result.stderr)) == 1
    assert message in result.stderr


def test_missing_layout_says_what_was_expected():
    result = runner.invoke(app, ["eval", "ade", "."])
    assert result.exit_code == 2 and "expected images/validation/*.jpg" in result.stderr


def test_help_names_every_dataset():
    text = " ".join(runner.invoke(app, ["eval", "--help"]).stdout.split())
    assert all(name in text for name in dataset_names())


def test_two_processes_equal_one(model_args, tmp_path):
    build("voc", tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "faseg_cli",
        "eval",
        "voc",
        "data",
        "--thresholds",
        "0.5,0.6",
        "-o",
        "two.json",
        *model_args,
    ]
    two = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stderr
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each launched process: fp32 sums depend on the thread count
    try:
        one = runner.invoke(app, ["eval", "voc", "data", "--thresholds", "0.5,0.6", "-o", "one.json", *model_args])
    finally:
        torch.set_num_threads(threads)
    assert two.stdout == one.stdout and len(two.stdout.splitlines()) == 2
    assert results("two.json") == results("one.json")
    assert json.loads(Path("two.json").read_text())["timing"]["processes"] == 2


def test_class_lists_and_captions_from_files_and_auto(run, tmp_path):
    """The published per-image files, and candidates generated by (tiny) BLIP + TagCLIP."""
    build("voc", tmp_path / "data")
    from faseg_cli.datasets import get_dataset

    ids = [s.id for s in get_dataset("voc").open(tmp_path / "data").samples()]
    Path("lists.json").write_text(json.dumps({i: "person dining table tv monitor" for i in ids}))
    Path("captions.json").write_text(json.dumps({i: "a room" for i in ids}))
    files = run("voc", "data", "--candidates", "lists.json", "--captions", "captions.json", "--json")
    assert files.exit_code == 0, files.stderr
    data = json.loads(files.stdout)
    assert (data["class_source"], data["caption_source"]) == ("file:lists.json", "file:captions.json")
    auto = run(
        "voc",
        "data",
        "--candidates",
        "auto",
        "--captions",
        "auto",
        "--clip-model",
        "tiny-clip",
        "--caption-model",
        "tiny-blip",
        "--json",
    )
    assert auto.exit_code == 0, auto.stderr
    assert json.loads(auto.stdout)["class_source"] == "auto" and "Loaded BLIP" in auto.stderr
