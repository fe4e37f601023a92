"""Every command-line mistake is one ``error:`` line plus at most one hint line, exit code 2, on every command."""

import pytest
import typer
from typer.testing import CliRunner

from faseg_cli.cli import app

runner = CliRunner()
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)


def value_options(name: str) -> list[str]:
    """The options of a command that take a value."""
    params = GROUP.commands[name].params
    return [p.opts[0] for p in params if p.param_type_name == "option" and not p.is_flag and p.opts[0][:2] == "--"]


def assert_one_line(result, *wanted: str) -> None:
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), result.stderr
    assert not any(box in result.stderr for box in "╭│╰─"), result.stderr
    assert result.stdout == ""
    for text in wanted:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("name", COMMANDS)
def test_unknown_option(name):
    result = runner.invoke(app, [name, "--no-such-option"])
    assert_one_line(result, "no such option: --no-such-option")
    assert result.stderr.splitlines()[1] == f"see 'faseg {name} --help'"


@pytest.mark.parametrize("name", [n for n in COMMANDS if value_options(n)])
def test_option_without_its_value(name):
    option = value_options(name)[0]
    assert_one_line(runner.invoke(app, [name, "x", option]), option, "requires an argument")


@pytest.mark.parametrize("name", [n for n in COMMANDS if any(p.required for p in GROUP.commands[n].params)])
def test_missing_argument(name):
    assert_one_line(runner.invoke(app, [name]), "missing argument")


@pytest.mark.parametrize(
    "args, wanted",
    [
        (["segmnt", "a.jpg"], "no command 'segmnt' (did you mean segment?)"),
        (["--no-such-option"], "no such option"),
        (["segment", "a.jpg", "--classes", "cat", "-b", "0"], "'--batch-size'"),
        (["segment", "a.jpg", "--classes", "cat", "--resolution", "big"], "'--resolution'"),
        (["segment", "a.jpg", "--classes", "cat", "--method", "bogus"], "--method bogus: expected one of fa-seg"),
    ],
)
def test_bad_command_or_value(args, wanted):
    assert_one_line(runner.invoke(app, args), wanted)


def test_no_arguments_still_shows_the_help():
    result = runner.invoke(app, [])
    assert "Usage: faseg" in result.output and "error:" not in result.output
