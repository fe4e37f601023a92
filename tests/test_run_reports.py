"""What long runs tell a user: plain progress lines in logs, how far an interrupted eval got and how to resume
it, which samples failed and why."""

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.cli.console import PlainProgress
from faseg_cli.engine.base import SegmenterBase
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION
from tests.dataset_builders import build

runner = CliRunner()


def invoke(model_dir, *args):
    return runner.invoke(app, [*args, "--model", str(model_dir), "--resolution", str(TEST_RESOLUTION)])


def test_segment_prints_plain_progress_lines_when_stderr_is_not_a_terminal(tiny_model_dir, tmp_path):
    """Nothing showed progress in a log file, CI or nohup until the summary."""
    (tmp_path / "photos").mkdir()
    for k in range(10):
        imagefiles.rgb(tmp_path / "photos" / f"im{k}.png", 24, 16, seed=k)
    result = invoke(tiny_model_dir, "segment", "photos", "--classes", "dog", "--no-flip")
    assert result.exit_code == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Segmented 10/10")]
    assert re.fullmatch(r"Segmented 10/10 \(100%\), \d+:\d\d:\d\d elapsed, about 0:00:00 left", line), line
    quiet = invoke(tiny_model_dir, "segment", "photos", "--classes", "dog", "--no-flip", "-q", "-o", "Q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_plain_progress_every_n_items_or_30_seconds():
    now = [0.0]
    printed = []
    bar = PlainProgress(clock=lambda: now[0])
    bar.line = lambda at: printed.append((bar.completed, at)) or ""
    task = bar.add_task("Segmented…", total=1000)
    assert bar.every(1000) == 50 and bar.every(5) == 10
    for _ in range(120):
        now[0] += 0.1
        bar.advance(task)
    now[0] += 31
    bar.advance(task)
    assert [count for count, _ in printed] == [50, 100, 121]


def test_plain_progress_line_of_a_resumed_eval():
    now = [100.0]
    bar = PlainProgress("mIoU {task.fields[miou]}", clock=lambda: now[0])
    task = bar.add_task("Evaluating", total=None, miou="-")
    bar.update(task, total=40, completed=20, miou="-")  # 20 done by an earlier run
    now[0] += 30
    bar.update(task, total=40, completed=30, miou="41.50")
    assert bar.line(now[0]) == "Evaluating 30/40 (75%), mIoU 41.50, 0:00:30 elapsed, about 0:00:30 left"


REAL_SEGMENT_BATCH = SegmenterBase.segment_batch


def interrupt_after(monkeypatch, calls: int) -> None:
    """Ctrl-C during the model pass number ``calls + 1`` (``calls=None``: never)."""
    count = [0]

    def segment_batch(self, *args, **kwargs):
        count[0] += 1
        if calls is not None and count[0] > calls:
            raise KeyboardInterrupt
        return REAL_SEGMENT_BATCH(self, *args, **kwargs)

    monkeypatch.setattr(SegmenterBase, "segment_batch", segment_batch)


def test_eval_interrupted_says_how_to_resume_and_resume_says_how_much_was_done(tiny_model_dir, tmp_path, monkeypatch):
    """Ctrl-C said only "interrupted", and --resume did not say how much was already done."""
    build("voc", tmp_path / "data")
    args = ["eval", "voc", "data", "--candidates", "gt", "-o", "r.json"]
    interrupt_after(monkeypatch, 2)
    stopped = invoke(tiny_model_dir, *args)
    assert stopped.exit_code == 130 and "Traceback" not in stopped.stderr
    assert stopped.stderr.splitlines()[-1] == (
        "error: interrupted (2 of 3 images done); the same command with --resume continues from r.json.partial"
    )
    interrupt_after(monkeypatch, None)
    resumed = invoke(tiny_model_dir, *args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming from r.json.partial: 2 of 3 images already done" in resumed.stderr
    interrupt_after(monkeypatch, 0)
    unsaved = invoke(tiny_model_dir, "eval", "voc", "data", "--candidates", "gt")
    assert unsaved.stderr.splitlines()[-1] == (
        "error: interrupted; nothing was kept: give --output FILE to be able to continue with --resume"
    )


def test_eval_results_list_the_failed_samples_with_their_reason(tiny_model_dir, tmp_path):
    """The results JSON counted failed samples but did not say which ones or why."""
    built = build("voc", tmp_path / "data")
    image = tmp_path / "data/VOCdevkit/VOC2012/JPEGImages" / f"{built.ids[1]}.jpg"
    image.write_bytes(image.read_bytes()[:50])
    result = invoke(tiny_model_dir, "eval", "voc", "data", "--candidates", "gt", "-o", "r.json", "--save-masks", "M")
    assert result.exit_code == 1
    data = json.loads(Path("r.json").read_text())
    assert data["failed"] == 1 and [s["id"] for s in data["failed_samples"]] == [built.ids[1]]
    assert f"{built.ids[1]}.jpg" in data["failed_samples"][0]["reason"]
    Path(f"M/{built.ids[0]}.png").unlink()
    scored = runner.invoke(app, ["eval", "voc", "data", "--predictions", "M", "-o", "p.json"])
    assert scored.exit_code == 1
    failed = json.loads(Path("p.json").read_text())["failed_samples"]
    assert failed == [
        {"id": built.ids[0], "reason": f"no mask M/{built.ids[0]}.png"},
        {"id": built.ids[1], "reason": f"no mask M/{built.ids[1]}.png"},
    ]


def test_nothing_failed_is_an_empty_list(tiny_model_dir, tmp_path):
    build("voc", tmp_path / "data")
    result = invoke(tiny_model_dir, "eval", "voc", "data", "--candidates", "gt", "--json", "--limit", "1")
    assert result.exit_code == 0 and json.loads(result.stdout)["failed_samples"] == []
