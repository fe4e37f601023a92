"""Every command answers --help and is documented; the README's commands stay true."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from faseg_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(info.name for info in app.registered_commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_and_docs(name):
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout
    command = typer.main.get_command(app).commands[name]
    assert command.help, f"{name} has no docstring"
    assert f"## faseg {name}" in (ROOT / "docs" / "usage.md").read_text()


def test_readme_quickstart_and_changelog():
    readme = (ROOT / "README.md").read_text()
    assert 'python -m pip install -e ".[test]" && python -m pytest' in readme
    assert "faseg segment docs/example.jpg" in readme and (ROOT / "docs" / "example.jpg").is_file()
    assert 'python -m pip install -e ".[test]" && python -m pytest' in (ROOT / ".ci" / "run").read_text()
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


def test_readme_says_how_to_install_without_cuda_or_pipx():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart") : readme.index("## Usage")]
    cpu_index = "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert f'pipx install . --pip-args="{cpu_index}"' in quickstart
    assert f'python -m pip install -e ".[test]" {cpu_index}' in quickstart
    assert "python3 -m venv .venv && . .venv/bin/activate" in quickstart
    assert f"python -m pip install . {cpu_index}" in quickstart
