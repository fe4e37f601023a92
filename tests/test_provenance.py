"""Every output records what made it; --skip-existing and eval's --resume keep only true matches."""

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from faseg_cli import __version__
from faseg_cli.classes.source import ClassSource
from faseg_cli.cli import app
from faseg_cli.cli.options import CandidateOptions
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.files.provenance import ResumeCheck, read_request
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION
from tests.dataset_builders import build

runner = CliRunner()


def invoke(model_dir, *args):
    return runner.invoke(app, [*args, "--model", str(model_dir), "--resolution", str(TEST_RESOLUTION)])


def record(path) -> dict:
    return json.loads(Image.open(path).info["faseg"])


def recompute_notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "recomputing" in line]


def images(folder: Path, count: int = 3) -> list[str]:
    for k in range(count):
        imagefiles.rgb(folder / f"im{k}.png", 40, 32)
    return [f"im{k}.png" for k in range(count)]


def test_other_classes_are_recomputed_not_skipped(tiny_model_dir, tmp_path):
    names = images(tmp_path)
    first = invoke(tiny_model_dir, "segment", *names, "--classes", "dog,cat", "-o", "O")
    assert first.exit_code == 0, first.stderr
    made = record("O/im0.png")
    assert made["classes"] == ["dog", "cat"] and made["result"]["classes"] == ["dog", "cat"]
    assert made["faseg"] == __version__ and made["settings"]["threshold"] == 0.55
    assert made["model"] == {"path": str(Path(tiny_model_dir).resolve())} and made["caption"] is None
    assert made["result"]["class_source"] == "given" and made["result"]["caption_source"] == "none"
    again = invoke(tiny_model_dir, "segment", *names, "--classes", "horse", "-o", "O", "--skip-existing")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines() == [f"O/im{k}.png" for k in range(3)] and "skipped" not in again.stderr
    assert recompute_notes(again.stderr) == [
        "3 images have outputs made with other settings (different classes); recomputing them"
    ]
    assert all(record(f"O/im{k}.png")["classes"] == ["horse"] for k in range(3))
    assert np.asarray(Image.open("O/im0.png")).max() <= 1


def test_matching_outputs_are_skipped_and_a_changed_threshold_recomputes(tiny_model_dir, tmp_path):
    names = images(tmp_path)
    common = ["--classes", "dog", "--overlay", "--scores", "-o", "O"]
    assert invoke(tiny_model_dir, "segment", *names, *common).exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in Path("O").iterdir()}
    same = invoke(tiny_model_dir, "segment", *names, *common, "--skip-existing")
    assert same.exit_code == 0 and same.stdout == "" and "3 skipped" in same.stderr
    assert recompute_notes(same.stderr) == [] and {p: p.stat().st_mtime_ns for p in stamps} == stamps
    for path in ("O/im1.png", "O/im1.overlay.jpg", "O/im1.npz"):
        assert read_request(Path(path))["classes"] == ["dog"]
    changed = invoke(tiny_model_dir, "segment", *names, *common, "--skip-existing", "-t", "0.3")
    assert changed.exit_code == 0 and "skipped" not in changed.stderr
    assert recompute_notes(changed.stderr) == [
        "3 images have outputs made with other settings (different threshold); recomputing them"
    ]
    assert all(read_request(p)["settings"]["threshold"] == 0.3 for p in stamps)


def test_outputs_without_a_record_are_recomputed(tiny_model_dir, tmp_path):
    names = images(tmp_path, 2)
    assert invoke(tiny_model_dir, "segment", *names, "--classes", "dog", "-o", "O").exit_code == 0
    Image.open("O/im1.png").save("O/im1.png")  # as an older faseg wrote it: no text chunk
    assert read_request(Path("O/im1.png")) is None
    again = invoke(tiny_model_dir, "segment", *names, "--classes", "dog", "-o", "O", "--skip-existing")
    assert again.exit_code == 0 and again.stdout.splitlines() == ["O/im1.png"] and "1 skipped" in again.stderr
    assert recompute_notes(again.stderr) == [
        "1 image has outputs made with other settings (1 without a faseg record, e.g. from an older faseg); "
        "recomputing them"
    ]
    assert record("O/im1.png")["classes"] == ["dog"]


def test_attention_folders_resume_by_their_record(tiny_model_dir, tmp_path):
    names = images(tmp_path, 2)
    assert invoke(tiny_model_dir, "attention", *names, "--classes", "dog", "-o", "A").exit_code == 0
    assert read_request(Path("A/im0"))["classes"] == ["dog"] and record("A/im0/01-dog.png")["classes"] == ["dog"]
    same = invoke(tiny_model_dir, "attention", *names, "--classes", "dog", "-o", "A", "--skip-existing")
    assert same.exit_code == 0 and same.stdout == "" and "2 skipped" in same.stderr
    other = invoke(tiny_model_dir, "attention", *names, "--classes", "cat", "-o", "A", "--skip-existing", "--no-flip")
    assert other.exit_code == 0 and other.stdout.splitlines() == ["A/im0", "A/im1"]
    assert recompute_notes(other.stderr) == [
        "2 images have outputs made with other settings (different classes, flip); recomputing them"
    ]
    with np.load("A/im0/attention.npz") as arrays:
        assert json.loads(str(arrays["provenance"]))["result"]["classes"] == ["cat"]
        assert arrays["cross_2"].shape[0] == 1
    assert sorted(p.name for p in Path("A/im0").iterdir()) == ["01-cat.png", "attention.npz"]


def test_generated_classes_are_recorded_by_what_generates_them(tmp_path):
    """With --vocab the class list is known only after the candidate models run: the record names them."""
    source = ClassSource(caption="auto")
    CandidateOptions(vocab="voc", clip_model="tiny-clip", caption_model="tiny-blip").describe(source, generate=True)
    made = source.request("x.jpg")
    assert made["classes"]["vocabulary"]["name"] == "voc" and made["classes"]["candidate_source"] == "both"
    assert made["classes"]["clip_model"] == {"repo": "faseg/tiny-clip", "revision": "v1"}
    assert made["classes"]["caption_model"] is None  # BLIP's own captions feed the matching
    assert made["caption"] == {"auto": {"repo": "faseg/tiny-blip", "revision": "v1"}}
    other = ClassSource(caption="auto")
    CandidateOptions(vocab="coco", clip_model="tiny-clip", caption_model="tiny-blip").describe(other, generate=True)
    assert other.request("x.jpg")["classes"] != made["classes"]
    vocab = tmp_path / "mine.txt"
    vocab.write_text("dog\ncat\n")
    mine = ClassSource()
    CandidateOptions(vocab=str(vocab)).describe(mine, generate=True)
    before = mine.request("x.jpg")
    vocab.write_text("dog\ncat: kitten\n")
    edited = ClassSource()
    CandidateOptions(vocab=str(vocab)).describe(edited, generate=True)
    assert edited.request("x.jpg")["classes"]["vocabulary"] != before["classes"]["vocabulary"]


def test_resume_check_needs_every_output_with_the_request(tmp_path):
    from faseg_cli.files.outputs import write_mask
    from faseg_cli.files.provenance import record as make_record
    from faseg_cli.files.provenance import request

    made = request(FasegSettings(), "tiny-random", classes=["dog"], caption=None)
    write_mask(tmp_path / "a.png", np.zeros((2, 2), np.uint8), make_record(made, classes=["dog"]))
    check = ResumeCheck()
    assert check.keep({tmp_path / "a.png": made})
    assert not check.keep({tmp_path / "a.png": made, tmp_path / "b.png": made})
    assert not check.keep({tmp_path / "a.png": None})
    newer = request(FasegSettings(tau=3), "diffusion", classes=["dog"], caption=None)
    assert not check.keep({tmp_path / "a.png": newer})
    message = check.message("masks")
    assert message == "1 image has masks made with other settings (different model, tau); recomputing them"
    assert check.missing == 1


def test_eval_resume_remakes_saved_masks_that_are_missing_or_made_differently(tiny_model_dir, tmp_path):
    """With the ground-truth class lists (``--candidates gt``), so that only the model runs."""
    build("voc", tmp_path / "data")
    full = invoke(tiny_model_dir, "eval", "voc", "data", "--candidates", "gt", "-o", "full.json", "--save-masks", "all")
    assert full.exit_code == 0, full.stderr
    ids = sorted(p.stem for p in Path("all").iterdir())
    made = record(f"all/{ids[0]}.png")
    assert made["dataset"] == {"name": "voc", "split": made["dataset"]["split"]} and made["classes"] == "gt"
    assert made["result"]["class_source"] == "gt" and made["settings"]["threshold"] == 0.55
    first = invoke(
        tiny_model_dir, "eval", "voc", "data", "--candidates", "gt", "-o", "r.json", "--save-masks", "M", "--limit", "2"
    )
    assert first.exit_code == 0, first.stderr
    other = invoke(
        tiny_model_dir, "eval", "voc", "data", "--candidates", "gt", "--save-masks", "M", "--limit", "1", "-t", "0.3"
    )
    assert other.exit_code == 0 and record(f"M/{ids[0]}.png")["settings"]["threshold"] == 0.3
    Path(f"M/{ids[1]}.png").unlink()
    resumed = invoke(
        tiny_model_dir, "eval", "voc", "data", "--candidates", "gt", "-o", "r.json", "--save-masks", "M", "--resume"
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert recompute_notes(resumed.stderr) == [
        "2 images have saved masks in M missing or made with other settings (different threshold; 1 missing); "
        "recomputing them (each is scored once)"
    ]
    [done], [want] = (
        json.loads(Path("r.json").read_text())["per_threshold"],
        json.loads(Path("full.json").read_text())["per_threshold"],
    )
    assert done["confusion"] == want["confusion"]
    for sample in ids:
        assert np.array_equal(np.asarray(Image.open(f"M/{sample}.png")), np.asarray(Image.open(f"all/{sample}.png")))
        assert record(f"M/{sample}.png")["settings"]["threshold"] == 0.55
