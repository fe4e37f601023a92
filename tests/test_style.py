"""The code base stays linted and formatted (ruff, configured in pyproject.toml)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is installed with the [test] extra")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    args = [sys.executable, "-m", "ruff", *command, "src", "tests", "benchmarks"]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
