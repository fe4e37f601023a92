"""``faseg eval`` end to end on synthetic datasets with the tiny model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.evaluation.datasets import dataset_names
from tests.conftest import TEST_RESOLUTION
from tests.dataset_builders import build, write_image, write_label

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def run(model_args):
    """``faseg eval ARGS`` with the tiny model and, unless ``candidates`` says otherwise, ``--candidates gt``.

    Tests of the run's mechanics use the quick ground-truth class lists; ``candidates=None``
    leaves the default (BLIP + TagCLIP, which needs the tiny candidate models).
    """

    def invoke(*args, candidates="gt"):
        source = ["--candidates", candidates] if candidates else []
        return runner.invoke(app, ["eval", *args, *source, *model_args])

    return invoke


TINY_CANDIDATE_MODELS = ("--caption-model", "tiny-blip", "--clip-model", "tiny-clip")


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
    assert result.stdout == f"voc mIoU {data['miou']:.2f} (classes gt, threshold 0.55, 3 images)\n"
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
    assert "(classes gt, threshold 0.5, 1 image)" in run("context", "data", "--limit", "1").stdout
    assert "(classes gt, threshold 0.7, 1 image)" in run("context", "data", "--limit", "1", "-t", "0.7").stdout


def test_threshold_sweep_equals_separate_runs(run, tmp_path):
    build("voc", tmp_path / "data")
    sweep = run("voc", "data", "--thresholds", "0.45:0.55:0.05", "-o", "sweep.json")
    assert sweep.exit_code == 0, sweep.stderr
    assert [line.split("(")[1] for line in sweep.stdout.splitlines()] == [
        "classes gt, threshold 0.45, 3 images)",
        "classes gt, threshold 0.5, 3 images)",
        "classes gt, threshold 0.55, 3 images)",
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
    assert result.exit_code == 1 and "(classes gt, threshold 0.55, 2 images)" in result.stdout
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
    result = run(*args, candidates=None)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == errors(result.stderr) and len(errors(result.stderr)) == 1
    assert message in result.stderr


def test_missing_layout_says_what_was_expected():
    result = runner.invoke(app, ["eval", "ade", "."])
    assert result.exit_code == 2 and "expected images/validation/*.jpg" in result.stderr


def test_help_names_every_dataset():
    text = " ".join(runner.invoke(app, ["eval", "--help"]).stdout.split())
    assert all(name in text for name in dataset_names())


def test_two_processes_equal_one(run, model_args, tmp_path):
    build("voc", tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.update(OMP_NUM_THREADS="1", TMPDIR=str(Path("tmp").absolute()))  # the thread count compared against
    Path("tmp").mkdir(exist_ok=True)
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
        "--candidates",
        "gt",
        "-o",
        "two.json",
        *model_args,
    ]
    two = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stderr
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each launched process: fp32 sums depend on the thread count
    try:
        one = run("voc", "data", "--thresholds", "0.5,0.6", "-o", "one.json")
    finally:
        torch.set_num_threads(threads)
    assert two.stdout == one.stdout and len(two.stdout.splitlines()) == 2
    assert results("two.json") == results("one.json")
    assert json.loads(Path("two.json").read_text())["timing"]["processes"] == 2
    assert list(Path("tmp").glob("faseg-*")) == []  # every torchrun run left its line lock in /tmp


def test_class_lists_and_captions_from_files_and_auto(run, tmp_path):
    """The published per-image files, and candidates generated by (tiny) BLIP + TagCLIP."""
    build("voc", tmp_path / "data")
    from faseg_cli.evaluation.datasets import get_dataset

    ids = [s.id for s in get_dataset("voc").open(tmp_path / "data").samples()]
    Path("lists.json").write_text(json.dumps({i: "person dining table tv monitor" for i in ids}))
    Path("captions.json").write_text(json.dumps({i: "a room" for i in ids}))
    files = run("voc", "data", "--captions", "captions.json", "--json", candidates="lists.json")
    assert files.exit_code == 0, files.stderr
    data = json.loads(files.stdout)
    assert (data["class_source"], data["caption_source"]) == ("file:lists.json", "file:captions.json")
    auto = run("voc", "data", *TINY_CANDIDATE_MODELS, "-o", "auto.json", candidates=None)
    assert auto.exit_code == 0, auto.stderr
    data = json.loads(Path("auto.json").read_text())
    assert auto.stdout == f"voc mIoU {data['miou']:.2f} (classes auto, threshold 0.55, 3 images)\n"
    assert (data["class_source"], data["caption_source"]) == ("auto", "auto")
    assert auto.stderr.count("Loaded BLIP") == 1 and "oracle" not in auto.stderr


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_predictions_go_on_past_bad_labels_and_masks(tmp_path):
    """A label value no class has, an RGB mask: each fails alone, named; the summary and JSON still come."""
    built = build("voc", tmp_path / "data")
    first, second, third = built.ids
    for sample_id, raw in built.raw_labels.items():
        write_label(tmp_path / "pred" / f"{sample_id}.png", raw, palette=True)
    label = Path("data/VOCdevkit/VOC2012/SegmentationClass") / f"{first}.png"
    write_label(label, np.full((6, 8), 50), palette=True)
    Image.new("RGB", (8, 5)).save(f"pred/{second}.png")
    result = runner.invoke(app, ["eval", "voc", "data", "--predictions", "pred", "-o", "r.json"])
    assert result.exit_code == 1 and result.stdout == "voc mIoU 100.00 (predictions, 1 image)\n"
    assert [line.split(":")[1].strip() for line in errors(result.stderr)] == [str(label), f"pred/{second}.png"]
    assert "value 50 is no voc label" in errors(result.stderr)[0] and "RGB image" in errors(result.stderr)[1]
    assert "1 failed" not in result.stderr and "2 failed (not scored)" in result.stderr
    data = results("r.json")
    assert (data["images"], data["failed"], data["miou"]) == (1, 2, 100.0)


def test_predictions_need_no_images_but_a_model_run_does(run, tmp_path):
    built = build("voc", tmp_path / "data")
    for sample_id, raw in built.raw_labels.items():
        write_label(tmp_path / "pred" / f"{sample_id}.png", raw, palette=True)
    (tmp_path / "data/VOCdevkit/VOC2012/JPEGImages" / f"{built.ids[1]}.jpg").unlink()
    scored = runner.invoke(app, ["eval", "voc", "data", "--predictions", "pred"])
    assert scored.exit_code == 0 and scored.stdout == "voc mIoU 100.00 (predictions, 3 images)\n", scored.stderr
    segmented = run("voc", "data")
    assert segmented.exit_code == 2 and errors(segmented.stderr)[0].startswith("error: voc: 1 of 3 images")


def test_sizes_that_differ_are_warned_and_resized(run, tmp_path):
    """A label sized unlike its image (model runs), masks sized unlike their labels (--predictions)."""
    built = build("voc", tmp_path / "data")
    image = Path("data/VOCdevkit/VOC2012/JPEGImages") / f"{built.ids[1]}.jpg"
    write_image(image, (10, 14))  # its label is 5 high, 7 wide
    result = run("voc", "data", "--save-masks", "masks")
    assert result.exit_code == 0 and "(classes gt, threshold 0.55, 3 images)" in result.stdout
    label = Path("data/VOCdevkit/VOC2012/SegmentationClass") / f"{built.ids[1]}.png"
    assert warnings(result.stderr) == [
        f"warning: {built.ids[1]}: label {label} is 7x5 but image {image} is 14x10; "
        "the prediction is resized to the label (nearest)"
    ]
    assert Image.open(f"masks/{built.ids[1]}.png").size == (7, 5)
    write_label(Path("masks") / f"{built.ids[2]}.png", np.zeros((2, 3)))
    scored = runner.invoke(app, ["eval", "voc", "data", "--predictions", "masks"])
    assert scored.exit_code == 0 and "(predictions, 3 images)" in scored.stdout
    assert warnings(scored.stderr) == [
        f"warning: masks: 1 of 3 masks differ in size from their labels (e.g. {built.ids[2]}.png is 3x2, "
        "its label 4x9); resized to the labels with nearest"
    ]


def test_class_list_sources_are_named_and_kept_apart(run, tmp_path):
    """all: every class for every image; gt is called an oracle; a resume never mixes two sources."""
    build("voc", tmp_path / "data")
    every = run("voc", "data", "-o", "all.json", candidates="all")
    assert every.exit_code == 0, every.stderr
    assert every.stdout.endswith("(classes all, threshold 0.55, 3 images)\n")
    assert (results("all.json")["class_source"], results("all.json")["caption_source"]) == ("all", "none")
    oracle = run("voc", "data", "--limit", "1", "-o", "gt.json")
    assert "(classes gt, threshold 0.55, 1 image)" in oracle.stdout and "(an oracle)" in oracle.stderr
    assert json.loads(Path("gt.json.partial").read_text())["fingerprint"]["class_source"] == "gt"
    mixed = run("voc", "data", "-o", "gt.json", "--resume", candidates="all")
    assert mixed.exit_code == 2 and mixed.stdout == ""
    assert errors(mixed.stderr) == [
        "error: cannot resume from gt.json.partial: it was made with a different class_source; "
        "run without --resume to start over"
    ]
    [option] = [p for p in typer.main.get_command(app).commands["eval"].params if p.name == "class_lists"]
    per_method = "FA-Seg's own result; its default), all (every class of the dataset: NACLIP's published protocol; "
    assert per_method + "its default), gt (" in option.help and "an oracle" in option.help
