"""The command-line contract: stdout carries results only, one-line errors, exit codes."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faseg_cli import __version__
from faseg_cli.cli import app
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION

runner = CliRunner()


@pytest.fixture
def run(tiny_model_dir):
    def invoke(*args, input=None, model=True):
        extra = ["--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)] if model else []
        return runner.invoke(app, [*args, *extra], input=input)

    return invoke


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"faseg {__version__}\n"
    assert runner.invoke(app, ["--help"]).exit_code == 0


def test_segment_writes_masks_and_prints_their_paths(run, tmp_path):
    imagefiles.rgb(tmp_path / "a.jpg", 40, 30)
    imagefiles.exif_rotated(tmp_path / "rot.jpg")
    result = run("segment", "a.jpg", "rot.jpg", "--classes", "dog, person", "--overlay", "--scores")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["faseg-out/a.png", "faseg-out/rot.png"]
    assert "Segmented 2 images" in result.stderr
    mask = Image.open("faseg-out/a.png")
    assert mask.mode == "P" and mask.size == (40, 30) and np.asarray(mask).max() <= 2
    assert Image.open("faseg-out/rot.png").size == (20, 40)
    scores = np.load("faseg-out/a.npz")
    assert scores["scores"].shape == (2, TEST_RESOLUTION, TEST_RESOLUTION) and scores["classes"].tolist() == [
        "dog",
        "person",
    ]
    width, height = Image.open("faseg-out/a.overlay.jpg").size
    assert width == 40 * 7 and height > 30 * 7  # enlarged to 256+ px, legend below


def test_json_lines_and_stdin(run, tmp_path):
    for name in ("p.png", "q.png"):
        imagefiles.rgb(tmp_path / name)
    result = run("segment", "-", "--classes", "cat", "--json", "-o", "out", "-b", "2", input="p.png\nq.png\n")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["input"] for r in records] == ["p.png", "q.png"]
    assert records[0]["outputs"] == {"mask": "out/p.png"} and records[0]["classes"] == ["cat"]
    assert sum(records[0]["fractions"].values()) == pytest.approx(1.0) and records[0]["seconds"] > 0
    assert (records[0]["method"], records[0]["inversion"], records[0]["timestep"]) == ("fa-seg", "ddim", 1)


def test_batch_size_does_not_change_masks_or_scores(run, tmp_path):
    imagefiles.rgb(tmp_path / "a.jpg", 40, 30)
    imagefiles.rgb(tmp_path / "b.png", 30, 50)
    for size in ("1", "2"):
        result = run("segment", "a.jpg", "b.png", "--classes", "dog,cat", "--scores", "-b", size, "-o", f"o{size}")
        assert result.exit_code == 0, result.stderr
    for name in ("a", "b"):
        assert np.array_equal(np.asarray(Image.open(f"o1/{name}.png")), np.asarray(Image.open(f"o2/{name}.png")))
        with np.load(f"o1/{name}.npz") as one, np.load(f"o2/{name}.npz") as two:
            assert np.array_equal(one["scores"], two["scores"])


def test_bad_inputs_fail_alone_with_one_line_each(run, tmp_path):
    imagefiles.rgb(tmp_path / "good.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    imagefiles.truncated_jpeg(tmp_path / "cut.jpg")
    result = run("segment", "good.png", "empty.jpg", "text.jpg", "cut.jpg", "missing.png", "--classes", "dog")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["faseg-out/good.png"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and all(
        any(n in e for n in ("empty.jpg", "text.jpg", "cut.jpg", "missing.png")) for e in errors
    )
    assert "Traceback" not in result.stderr and "4 failed" in result.stderr


@pytest.mark.parametrize(
    "classes,message",
    [("dog,,cat", "empty class name"), ("dog,Dog", "duplicate class name"), (None, "no classes given")],
)
def test_class_list_usage_errors(run, tmp_path, classes, message):
    imagefiles.rgb(tmp_path / "a.png")
    result = run("segment", "a.png", *(["--classes", classes] if classes else []))
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_bad_option_values_are_usage_errors(run, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    for args in (
        ["--threshold", "1.5"],
        ["--cross-weights", "1,2"],
        ["--device", "tpu"],
        ["--dtype", "fp16", "--device", "cpu"],
    ):
        result = run("segment", "a.png", "--classes", "dog", *args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1


def test_skip_existing_resumes(run, tmp_path):
    for name in ("a.png", "b.png"):
        imagefiles.rgb(tmp_path / name)
    assert run("segment", "a.png", "--classes", "dog").exit_code == 0
    before = (tmp_path / "faseg-out" / "a.png").stat().st_mtime_ns
    result = run("segment", "a.png", "b.png", "--classes", "dog", "--skip-existing")
    assert result.exit_code == 0 and result.stdout.splitlines() == ["faseg-out/b.png"]
    assert "1 skipped" in result.stderr and (tmp_path / "faseg-out" / "a.png").stat().st_mtime_ns == before


def test_output_dir_that_cannot_be_written(run, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    (tmp_path / "blocker").write_text("a file")
    result = run("segment", "a.png", "--classes", "dog", "-o", "blocker/out")
    assert result.exit_code == 1 and "cannot write to output directory" in result.stderr


def test_never_overwrites_inputs(run, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    result = run("segment", ".", "--classes", "dog", "-o", ".")
    assert result.exit_code == 2 and "refusing to overwrite input" in result.stderr
    assert Image.open(tmp_path / "a.png").mode == "RGB"


def test_offline_without_weights_is_one_line(tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and "faseg download" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    result = runner.invoke(app, ["download"])
    assert result.exit_code == 1 and "HF_HUB_OFFLINE" in result.stderr


def test_no_images_at_all(run, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("segment", "empty", "--classes", "dog")
    assert result.exit_code == 2 and "no images to process" in result.stderr


def test_ctrl_c_exits_130_and_leaves_no_partial_file(run, tmp_path, monkeypatch):
    from faseg_cli.files import outputs

    imagefiles.rgb(tmp_path / "a.png")

    def interrupted(path, labels, record=None):
        outputs.atomic_write(
            path, lambda tmp: (tmp.write_bytes(b"partial"), (_ for _ in ()).throw(KeyboardInterrupt()))
        )

    monkeypatch.setattr(outputs, "write_mask", interrupted)
    result = run("segment", "a.png", "--classes", "dog")
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert list((tmp_path / "faseg-out").iterdir()) == []


def test_attention_never_replaces_a_folder_it_did_not_write(run, tmp_path):
    imagefiles.rgb(tmp_path / "ex.jpg")
    (tmp_path / "ex").mkdir()
    (tmp_path / "ex" / "notes.txt").write_text("keep me")
    result = run("attention", "ex.jpg", "--classes", "dog", "-o", ".")
    assert result.exit_code == 1 and "refusing to replace" in result.stderr
    assert (tmp_path / "ex" / "notes.txt").read_text() == "keep me"


def test_bad_per_image_class_lists(run, tmp_path):
    for name in ("a.png", "b.png"):
        imagefiles.rgb(tmp_path / name)
    (tmp_path / "bad.jsonl").write_text('{"image": 5, "candidates": ["dog"]}\n')
    result = run("segment", "a.png", "--classes-from", "bad.jsonl")
    assert result.exit_code == 2 and "expected an object with 'image'" in result.stderr
    lines = ['{"image": "a.png", "candidates": ["dog", "dog"]}', '{"image": "b.png", "candidates": ["cat"]}']
    (tmp_path / "lists.jsonl").write_text("\n".join(lines) + "\n")
    result = run("segment", "a.png", "b.png", "--classes-from", "lists.jsonl")
    assert result.exit_code == 1 and result.stdout.splitlines() == ["faseg-out/b.png"]
    assert "a.png" in result.stderr and "duplicate class name" in result.stderr


def test_options_checked_before_any_model_loads(run, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    result = run("segment", "a.png", "--vocab", "voc", "--candidate-source", "magic")
    assert result.exit_code == 2 and "candidate source 'magic'" in result.stderr and "Using" not in result.stderr
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog", "--device", "cuda:x"])
    assert result.exit_code == 2 and "cuda:x" in result.stderr


def test_nul_separated_stdin(run, tmp_path):
    for name in ("p.png", "q r.png"):
        imagefiles.rgb(tmp_path / name)
    result = run("segment", "-", "-0", "--classes", "cat", input="p.png\0q r.png\0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["faseg-out/p.png", "faseg-out/q r.png"]
    result = run("segment", "-", "--classes", "cat", input="p.png\0q r.png\0")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error:") and "--null" in result.stderr and "Traceback" not in result.stderr


def test_closed_stdout_pipe_ends_the_run_quietly(tiny_model_dir, tmp_path):
    """As `faseg segment ... | head -1` once head has exited: the reader of stdout is gone."""
    import os
    import subprocess
    import sys

    for name in ("a.png", "b.png", "c.png"):
        imagefiles.rgb(tmp_path / name)
    read_end, write_end = os.pipe()
    os.close(read_end)
    command = ["segment", "a.png", "b.png", "c.png", "--classes", "dog", "--model", str(tiny_model_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "faseg_cli", *command, "--resolution", str(TEST_RESOLUTION)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )
    os.close(write_end)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr and "error" not in done.stderr
    assert "Segmented" not in done.stderr
    assert sorted(os.listdir(tmp_path / "faseg-out")) == ["a.png"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_keeps_only_warnings_and_errors(run, tmp_path, where):
    imagefiles.rgb(tmp_path / "a.png")
    args = ["segment", "a.png", "missing.png", "--classes", "dog"]
    result = run(*(["-q", *args] if where == "before" else [*args, "-q"]))
    assert result.exit_code == 1 and result.stdout.splitlines() == ["faseg-out/a.png"]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: missing.png")


@pytest.mark.parametrize("name", sorted(info.name for info in app.registered_commands))
def test_every_command_accepts_quiet_after_its_name(name):
    result = runner.invoke(app, [name, "--help"])
    assert "--quiet" in result.stdout and "-q" in result.stdout


def test_tiny_model_brings_tiny_candidate_models(tmp_path, shared_cache):
    imagefiles.rgb(tmp_path / "a.png")
    args = ["segment", "a.png", "--vocab", "voc", "--caption", "auto", "-m", "tiny-random", "--resolution", "64"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "candidates come from tiny-blip and tiny-clip" in result.stderr
    assert "Loaded CLIP" in result.stderr and "Loaded BLIP" in result.stderr
    result = runner.invoke(app, [*args, "--clip-model", "clip"])
    assert result.exit_code == 1 and "from tiny-blip (random" in result.stderr
    assert "pass --clip-model with a local directory" in result.stderr.splitlines()[-1]
