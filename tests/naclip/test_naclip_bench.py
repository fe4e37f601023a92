"""``benchmarks/bench.py --method naclip`` runs in its quick mode (tiny CLIP), so it cannot rot."""

import json
import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"


def test_quick_naclip_benchmark_reports_time_memory_and_floor(tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--method", "naclip", "--quick", "--output", str(out)])
    runpy.run_path(str(BENCH), run_name="__main__")
    report = json.loads(out.read_text())
    assert report["method"] == "naclip" and report["model"] == "tiny-clip" and report["images"] == 2
    assert set(report["stage_median_s_per_image"]) == {"preprocess", "clip", "pamr", "labels"}
    assert report["s_per_image"] > 0 and report["floor_s_per_image"] > 0 and report["peak_memory_gib"] > 0
    assert report["ratio_to_floor"] == report["s_per_image"] / report["floor_s_per_image"]
    assert "x the plain CLIP forwards" in capsys.readouterr().out
