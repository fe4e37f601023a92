"""The benchmark scripts run in their quick modes, so they cannot rot."""

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def test_quick_benchmark_reports_every_stage(tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--quick", "--output", str(out)])
    runpy.run_path(str(BENCH), run_name="__main__")
    report = json.loads(out.read_text())
    assert [run["batch_size"] for run in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert set(run["stage_median_s_per_image"]) == {
            "preprocess",
            "vae",
            "text",
            "inversion",
            "unet",
            "hard",
            "ttf_labels",
            "write",
        }
        assert run["images_per_s"] > 0 and run["peak_memory_gib"] > 0 and run["floor_ratio"] > 0
    assert report["floor_s_per_image"] > 0
    assert report["runs"][1]["max_score_difference_vs_first"] == 0
    assert report["hard"]["max_relative_difference"] < 1e-4
    assert "HARD: factorised" in capsys.readouterr().out


def test_drop_absent_benchmark_runs(tmp_path, monkeypatch):
    script = BENCH.parent / "drop_absent.py"
    out = tmp_path / "drop.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(script), "--preset", "tiny", "--images", "1", "--output", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    report = json.loads(out.read_text())
    assert report["s_per_image"] > 0 and report["floor_s_per_image"] > 0 and report["reference"] == "coco"


@pytest.mark.parametrize("script", ["bench_diffsegmenter.py", "bench_iseg.py"])
def test_quick_per_class_benchmarks_report_each_class_count(script, tmp_path, monkeypatch, capsys):
    path, out = BENCH.parent / script, tmp_path / "bench.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(path), "--quick", "--with-faseg", "--output", str(out)])
    runpy.run_path(str(path), run_name="__main__")
    report = json.loads(out.read_text())
    assert [run["classes"] for run in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert run["s_per_image"] > 0 and run["floor_s"] > 0 and run["peak_memory_gib"] > 0
        assert run["floor_ratio"] == run["s_per_image"] / run["floor_s"]
        assert run["faseg_s_per_image"] > 0 and run["stage_median_s"]["unet"] > 0
    assert "K=2: " in capsys.readouterr().out
