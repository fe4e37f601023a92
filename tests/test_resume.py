"""Resume that verifies, a full disk that stops the run, the reserved `background` class, own outputs never
taken as inputs, and what a resume prints: `--json --skip-existing` keeps every line."""

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.errors import UsageError
from faseg_cli.files import outputs
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION

runner = CliRunner()


def invoke(model_dir, *args):
    return runner.invoke(app, [*args, "--model", str(model_dir), "--resolution", str(TEST_RESOLUTION)])


def images(folder: Path, count: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        imagefiles.rgb(folder / f"im{k}.png", 40, 32, seed=k)
    return [str(folder / f"im{k}.png") for k in range(count)]


def lines(stderr: str, word: str) -> list[str]:
    return [line for line in stderr.splitlines() if word in line]


def decodes(path: Path) -> bool:
    if path.suffix == ".npz":
        with np.load(path) as arrays:
            return all(arrays[name] is not None for name in arrays.files)
    with Image.open(path) as image:
        image.load()
    return True


def test_damaged_outputs_are_recomputed_and_replaced_not_kept(tiny_model_dir, tmp_path):
    """A corrupt .npz aborted the run with BadZipFile; a mask or overlay cut in half counted as done."""
    names = images(tmp_path)
    common = ["--classes", "dog", "--overlay", "--scores", "-o", "O"]
    assert invoke(tiny_model_dir, "segment", *names, *common).exit_code == 0
    good = {p.name: p.read_bytes() for p in Path("O").iterdir()}
    Path("O/im0.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    Path("O/im1.png").write_bytes(good["im1.png"][: len(good["im1.png"]) // 2])
    Path("O/im2.overlay.jpg").write_bytes(good["im2.overlay.jpg"][: len(good["im2.overlay.jpg"]) // 2])
    again = invoke(tiny_model_dir, "segment", *names, *common, "--skip-existing")
    assert again.exit_code == 0, again.stderr
    assert "Traceback" not in again.stderr and again.stdout.splitlines() == [f"O/im{k}.png" for k in range(3)]
    [line] = lines(again.stderr, "recomputing")
    assert line.startswith("3 images have outputs damaged (3 damaged, e.g. O/im0.npz (")
    assert all(decodes(p) for p in Path("O").iterdir())
    assert {p.name: p.read_bytes() for p in Path("O").iterdir() if p.suffix == ".png"} == {
        k: v for k, v in good.items() if k.endswith(".png")
    }
    assert sorted(p.name for p in Path("O").iterdir()) == sorted(good)  # no temporary file left


def test_a_damaged_attention_folder_is_recomputed(tiny_model_dir, tmp_path):
    names = images(tmp_path, 1)
    assert invoke(tiny_model_dir, "attention", *names, "--classes", "dog", "-o", "A").exit_code == 0
    grid = Path("A/im0/01-dog.png")
    grid.write_bytes(grid.read_bytes()[:100])
    again = invoke(tiny_model_dir, "attention", *names, "--classes", "dog", "-o", "A", "--skip-existing")
    assert again.exit_code == 0 and again.stdout.splitlines() == ["A/im0"], again.stderr
    assert lines(again.stderr, "recomputing")[0].startswith("1 image has outputs damaged (1 damaged, e.g. A/im0 (")
    assert decodes(grid)


def test_eval_resume_remakes_a_damaged_saved_mask_and_restarts_a_damaged_state(tiny_model_dir, tmp_path):
    from tests.dataset_builders import build

    build("voc", tmp_path / "data")
    args = ["eval", "voc", "data", "--candidates", "gt", "-o", "r.json", "--save-masks", "M"]
    assert invoke(tiny_model_dir, *args, "--limit", "2").exit_code == 0
    first = sorted(Path("M").iterdir())[0]
    first.write_bytes(first.read_bytes()[:60])
    resumed = invoke(tiny_model_dir, *args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming from r.json.partial: 2 of 3 images already done" in resumed.stderr
    assert lines(resumed.stderr, "recomputing")[0].startswith("1 image has saved masks in M damaged (1 damaged")
    assert decodes(first)
    Path("r.json.partial").write_text("{ half a state")
    again = invoke(tiny_model_dir, *args, "--resume")
    assert again.exit_code == 0 and "Traceback" not in again.stderr
    assert "r.json.partial is damaged or not a faseg evaluation state" in again.stderr
    assert "starting from the beginning" in again.stderr and json.loads(Path("r.json").read_text())["images"] == 3


def full_disk_after(monkeypatch, count: int) -> list:
    """Make every write after the first ``count`` fail as a full disk does; returns the paths attempted."""
    attempted = []
    real = outputs.atomic_write

    def write(path, body):
        attempted.append(Path(path))
        if len(attempted) > count:
            body = lambda tmp: (tmp.write_bytes(b"partial"), _raise(errno.ENOSPC))  # noqa: E731
        real(path, body)

    monkeypatch.setattr(outputs, "atomic_write", write)
    return attempted


def _raise(code):
    raise OSError(code, os.strerror(code))


def test_a_full_disk_stops_the_run_and_leaves_no_partial_image(tiny_model_dir, tmp_path, monkeypatch):
    """The run went on computing every image after "No space left on device", and a failed image kept its mask
    without its npz."""
    names = images(tmp_path, 4)
    attempted = full_disk_after(monkeypatch, 5)  # im0 and im1 whole (mask, npz); im2: its npz fails
    result = invoke(tiny_model_dir, "segment", *names, "--classes", "dog", "--scores", "-o", "O")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert lines(result.stderr, "error:") == [
        "error: cannot write O/im2.npz: No space left on device; stopping, as no later output could be written"
    ]
    assert len(attempted) == 6  # im3 was never computed
    assert sorted(p.name for p in Path("O").iterdir()) == ["im0.npz", "im0.png", "im1.npz", "im1.png"]
    assert result.stdout.splitlines() == ["O/im0.png", "O/im1.png"]


def test_a_quota_error_is_a_full_disk_too():
    error = outputs.write_error(Path("x.png"), OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)))
    assert type(error).__name__ == "DiskFull" and error.exit_code == 1
    assert type(outputs.write_error(Path("x.png"), OSError(errno.EACCES, "denied"))).__name__ == "OutputError"


def test_together_removes_what_it_renamed_when_a_later_rename_fails(tmp_path, monkeypatch):
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(outputs.DiskFull):
        with outputs.together():
            outputs.write_mask(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
            outputs.write_mask(tmp_path / "b.png", np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and a kernel that allows the mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_stops_the_run_with_one_line(tiny_model_dir, tmp_path, tiny_disk):
    names = images(tmp_path, 3)
    (tiny_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 96 * 1024))  # about 90 KB left
    out = tiny_disk / "O"
    result = invoke(tiny_model_dir, "segment", *names, "--classes", "dog", "--scores", "--overlay", "-o", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = lines(result.stderr, "error:")
    assert line.endswith("No space left on device; stopping, as no later output could be written")
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    whole = {name.split(".")[0] for name in written}
    assert all({f"{k}.png", f"{k}.npz", f"{k}.overlay.jpg"} <= set(written) for k in whole)
    assert len(written) == 3 * len(whole) and len(whole) < 3


@pytest.mark.parametrize("classes", ["dog,background", "Background", "dog, background "])
def test_a_class_named_background_is_a_usage_error(tiny_model_dir, tmp_path, classes):
    """It made the fractions sum to 0.356 in --json, and the colours were wrong."""
    names = images(tmp_path, 1)
    result = invoke(tiny_model_dir, "segment", *names, "--classes", classes, "--json")
    assert result.exit_code == 2 and result.stdout == "" and not Path("faseg-out").exists()
    assert lines(result.stderr, "error:") == [result.stderr.strip()]
    assert "is reserved: label 0 of every mask is the background" in result.stderr


def test_background_is_refused_by_the_api_and_in_vocabulary_files(segmenter, photo, tmp_path):
    from faseg_cli.vocabularies import load_vocabulary

    with pytest.raises(UsageError, match="reserved"):
        segmenter.segment(photo, ["dog", "background"])
    (tmp_path / "mine.txt").write_text("dog\nbackground\n")
    with pytest.raises(UsageError, match="--vocab .*mine.txt: class name 'background' is reserved"):
        load_vocabulary(str(tmp_path / "mine.txt"))
    fractions = segmenter.segment(photo, ["dog", "cat"]).fractions()
    assert list(fractions) == ["background", "dog", "cat"] and sum(fractions.values()) == pytest.approx(1.0)


def test_the_documented_json_resume_recipe_keeps_every_line(tiny_model_dir, tmp_path):
    """docs/usage.md: rerun `... --json --skip-existing > masks.jsonl`; skipped images printed nothing (5 lines
    became 1)."""
    images(tmp_path / "photos", 3)
    command = ["segment", "photos/", "-r", "--classes", "dog,person", "-o", "masks", "--json", "--skip-existing"]
    first = invoke(tiny_model_dir, *command)
    assert first.exit_code == 0, first.stderr
    Path("masks.jsonl").write_text(first.stdout)
    Path("masks/im1.png").unlink()
    second = invoke(tiny_model_dir, *command)
    assert second.exit_code == 0 and "2 skipped" in second.stderr
    Path("masks.jsonl").write_text(second.stdout)
    records = [json.loads(line) for line in Path("masks.jsonl").read_text().splitlines()]
    assert len(records) == 3 and sorted(r["input"] for r in records) == [f"photos/im{k}.png" for k in range(3)]
    before = {r["input"]: r for r in map(json.loads, first.stdout.splitlines())}
    for record in records:
        skipped = record.pop("skipped", False)
        assert skipped == (record["input"] != "photos/im1.png")
        assert {k: v for k, v in record.items() if k != "seconds"} == {
            k: v for k, v in before[record["input"]].items() if k != "seconds"
        }
        assert sum(record["fractions"].values()) == pytest.approx(1.0)


def test_attention_json_lines_of_skipped_folders(tiny_model_dir, tmp_path):
    names = images(tmp_path, 1)
    command = ["attention", *names, "--classes", "dog", "-o", "A", "--json"]
    first = invoke(tiny_model_dir, *command)
    again = invoke(tiny_model_dir, *command, "--skip-existing")
    assert again.exit_code == 0 and "1 skipped" in again.stderr
    [made], [replayed] = map(json.loads, first.stdout.splitlines()), map(json.loads, again.stdout.splitlines())
    assert replayed.pop("skipped") is True and replayed["fractions"] == made["fractions"]


def test_an_output_folder_inside_the_input_folder_runs_twice(tiny_model_dir, tmp_path):
    """`faseg segment p2 -r --classes cat -o p2/masks` refused the second time "to overwrite input
    p2/masks/astronaut.png"."""
    images(tmp_path / "p2", 2)
    command = ["segment", "p2", "-r", "--classes", "cat", "-o", "p2/masks", "--overlay"]
    first = invoke(tiny_model_dir, *command)
    assert first.exit_code == 0, first.stderr
    second = invoke(tiny_model_dir, *command)
    assert second.exit_code == 0, second.stderr
    assert second.stdout == first.stdout == "p2/masks/im0.png\np2/masks/im1.png\n"
    assert sorted(p.name for p in Path("p2/masks").iterdir()) == [
        "im0.overlay.jpg",
        "im0.png",
        "im1.overlay.jpg",
        "im1.png",
    ]


def test_files_faseg_wrote_are_not_inputs_anywhere_in_a_folder(tiny_model_dir, tmp_path):
    images(tmp_path / "p", 2)
    assert invoke(tiny_model_dir, "segment", "p", "--classes", "cat", "-o", "p", "--overlay").exit_code == 2
    assert invoke(tiny_model_dir, "segment", "p/im0.png", "--classes", "cat", "-o", "elsewhere").exit_code == 0
    shutil.copy("elsewhere/im0.png", "p/mask-copy.png")
    result = invoke(tiny_model_dir, "segment", "p", "--classes", "cat", "-o", "out")
    assert result.exit_code == 0 and result.stdout.splitlines() == ["out/im0.png", "out/im1.png"], result.stderr
    assert "p: skipped 1 file that faseg wrote (its outputs)" in result.stderr
