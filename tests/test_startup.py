"""`faseg --version` and `--help` stay fast: the command-line module loads none of the heavy libraries."""

import json
import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers")

PROBE = """
import json, sys
from faseg_cli.cli.app import app
loaded = {"import": [m for m in HEAVY if m in sys.modules]}
for args in (["--version"], ["--help"], ["segment", "--help"], ["eval", "--help"], ["attention", "--help"]):
    try:
        app(args, standalone_mode=False)
    except SystemExit:
        pass
    loaded[" ".join(args)] = [m for m in HEAVY if m in sys.modules]
print(json.dumps(loaded))
"""


def test_the_cli_module_and_its_help_import_no_torch_diffusers_or_transformers():
    """`cli/options.py` pulled FA-Seg's settings, which pulled `schedule.py` and so torch: 1.9 s for --version."""
    probe = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}"], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    loaded = json.loads(probe.stdout.splitlines()[-1])
    assert len(loaded) == 6 and all(modules == [] for modules in loaded.values()), loaded
