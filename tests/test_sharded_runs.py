"""Per-image commands under ``torchrun``: each process takes its shard; together they equal one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from faseg_cli.cli import app
from tests import imagefiles

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def photos(tmp_path):
    """Five images (two in a subfolder) and one that cannot be read."""
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for i, (name, width, height) in enumerate(
        [("a.png", 40, 30), ("b.jpg", 32, 48), ("c.png", 64, 20), ("sub/d.png", 24, 24), ("sub/e.jpg", 50, 40)]
    ):
        imagefiles.rgb(tmp_path / "photos" / name, width, height, seed=i)
    (tmp_path / "photos" / "broken.png").write_text("not an image")
    return "photos"


def torchrun(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.update(OMP_NUM_THREADS="1", TMPDIR=str(Path("tmp").absolute()))  # the thread count compared against
    Path("tmp").mkdir(exist_ok=True)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run([*launch, "-m", "faseg_cli", *args], env=env, capture_output=True, text=True, timeout=300)


def one_process(*args):
    """The same command in this process, with one thread as in each launched process (fp32 sums depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return runner.invoke(app, list(args))
    finally:
        torch.set_num_threads(threads)


def files(folder: str) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def summary(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.startswith("Segmented")]


def test_two_processes_write_exactly_the_masks_of_one(model_args, photos):
    two = torchrun("segment", photos, "-r", "-c", "dog,person", "--json", "--overlay", "-o", "two", *model_args)
    one = one_process("segment", photos, "-r", "-c", "dog,person", "--json", "--overlay", "-o", "one", *model_args)
    assert two.returncode == one.exit_code == 1, two.stderr
    assert files("two") == files("one") and len(files("one")) == 10
    records = [json.loads(line) for line in two.stdout.splitlines()]
    expected = [json.loads(line) for line in one.stdout.splitlines()]
    key = lambda record: record["input"]  # noqa: E731
    strip = lambda record: {k: v for k, v in record.items() if k not in ("outputs", "seconds")}  # noqa: E731
    assert sorted(map(strip, records), key=key) == sorted(map(strip, expected), key=key) and len(records) == 5
    assert [line.split(" in ")[0] for line in summary(two.stderr)] == ["Segmented 5 images"]
    assert summary(two.stderr)[0].endswith("; 1 failed") and two.stderr.count("broken.png") == 1
    again = ["segment", photos, "-r", "-c", "dog,person", "--overlay", "-o", "two", "--skip-existing", *model_args]
    resumed = torchrun(*again)
    assert resumed.stdout == "" and "Segmented 0 images in 0.0 s; 5 skipped (already done); 1 failed" in resumed.stderr
    assert list(Path("tmp").glob("faseg-*")) == []  # every torchrun run left its line lock in /tmp


def test_paths_on_stdin_are_refused_under_several_processes(model_args, photos):
    result = torchrun("segment", "-", "-c", "dog", *model_args)
    assert result.returncode != 0 and "cannot be shared by several processes" in result.stderr


def test_candidate_lists_of_two_processes_are_saved_whole(photos):
    models = ["--vocab", "voc", "--clip-model", "tiny-clip", "--caption-model", "tiny-blip"]
    # One process first: it builds the tiny models in the cache, which two processes would race to do.
    one = one_process("candidates", photos, "-r", *models, "--save-classes", "one.json", "--save-captions", "c1.json")
    two = torchrun("candidates", photos, "-r", *models, "--save-classes", "two.json", "--save-captions", "c2.json")
    assert two.returncode == one.exit_code == 1, two.stderr
    assert json.loads(Path("two.json").read_text()) == json.loads(Path("one.json").read_text())
    assert list(json.loads(Path("c2.json").read_text())) == ["a", "b", "c", "d", "e"]
    images = sorted(json.loads(line)["image"] for line in two.stdout.splitlines())
    assert images == sorted(json.loads(line)["image"] for line in one.stdout.splitlines()) and len(images) == 5
    assert two.stderr.count("Wrote 5 class lists to two.json") == 1 and "Proposed 5 images" in two.stderr


def test_two_processes_write_one_coco_file_and_one_yolo_dataset(model_args, photos):
    args = ["segment", photos, "-r", "-c", "dog,person", "--instances", *model_args]
    two = torchrun(*args, "-o", "two", "--coco", "two.json", "--yolo", "yolo-two")
    one = one_process(*args, "-o", "one", "--coco", "one.json", "--yolo", "yolo-one")
    assert two.returncode == one.exit_code == 1, two.stderr
    assert json.loads(Path("two.json").read_text()) == json.loads(Path("one.json").read_text())
    assert len(json.loads(Path("two.json").read_text())["images"]) == 5
    assert files("yolo-two/labels") == files("yolo-one/labels") and len(files("yolo-one/labels")) == 5
    assert two.stderr.count("Wrote COCO annotations of 5 images to two.json") == 1
    resumed = torchrun(*args, "-o", "two", "--coco", "two.json", "--skip-existing")
    assert "5 skipped" in resumed.stderr
    assert json.loads(Path("two.json").read_text()) == json.loads(Path("one.json").read_text())
