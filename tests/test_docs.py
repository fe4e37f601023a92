"""Every command answers --help with examples and is documented; every example in the help and the docs runs.

Examples are the ``$ ...`` lines of each help page and the command lines of the
``bash``/``console`` blocks of README.md and docs/*.md that call faseg. Each is checked
in one of two ways:

- run: in a sandbox that holds every file the examples name (photo.jpg, photos/,
  shots/, synthetic datasets under data/ from tests/dataset_builders.py, per-image
  class and caption files, another method's masks), with the weights swapped for the
  tiny random-weight models: the method's tiny model where no model is named
  (``-m tiny-random --resolution 64`` for FA-Seg, with tiny-blip and tiny-clip; ``-m
  tiny-clip`` with ``--method naclip``, ``-m tiny-random-sd21`` with ``--method iseg``), and
  ``--caption-model tiny-blip --clip-model tiny-clip`` for ``faseg candidates``. It
  must exit with 0. The examples of one help page or code block run in order in one
  sandbox, so a later one reads what an earlier one wrote; ``cd`` moves within the
  sandbox, a program piped into faseg (``find ... |``) runs in the shell, a program
  faseg pipes into (``| jq``) is left out, ``> FILE`` writes faseg's stdout there.
- parse only: examples that need the real weights from the network (``faseg download``
  of a registered real model), several processes (``torchrun``, ``accelerate
  launch``) or run until stopped (``faseg serve``; tests/test_serve.py runs it): the
  command line must parse (the options exist, the values convert).

Synopsis lines (``faseg segment INPUT... [options]``) are neither.
"""

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.cli.help import EXAMPLES_TITLE, PROMPT
from faseg_cli.engine.methods import DEFAULT, METHODS
from tests import dataset_builders, imagefiles

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(info.name for info in app.registered_commands)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TINY = {"tiny-random", "tiny-random-sd21", "tiny-blip", "tiny-clip"}
runner = CliRunner()


def help_text(*args: str, columns: int = 80) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def help_examples(name: str, columns: int = 80) -> list[str]:
    """The example command lines of a command's help page."""
    lines = [line.strip() for line in help_text(name, columns=columns).split(EXAMPLES_TITLE, 1)[-1].splitlines()]
    return [line[len(PROMPT) :] for line in lines if line.startswith(PROMPT)]


def documented_errors() -> dict[str, str]:
    """Console examples shown failing: the command line (``$ ...``) and the ``error:`` line after it."""
    errors = {}
    for path in DOCS:
        for block in re.findall(r"```console\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            lines = block.splitlines()
            errors |= {a[2:]: b for a, b in zip(lines, lines[1:]) if a.startswith("$ ") and b.startswith("error: ")}
    return errors


def doc_blocks() -> dict[str, list[str]]:
    """The faseg command lines (and ``cd`` lines) of every bash/console block, by ``file:line``."""
    blocks = {}
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"```(?:bash|console)\n(.*?)```", text, re.S):
            lines = [line.removeprefix("$ ") for line in match.group(1).replace("\\\n", " ").splitlines()]
            lines = [line for line in lines if re.search(r"(^|[|&;]\s*|-m )faseg(_cli)?\s", line) or line[:3] == "cd "]
            if any("faseg" in line for line in lines):
                blocks[f"{path.name}:{text[: match.start()].count(chr(10)) + 1}"] = lines
    return blocks


def synopsis(line: str) -> bool:
    """A line that shows a command's form (``INPUT...``, ``[options]``), not a command."""
    command = line.split(" #")[0]
    return "[" in command or any(re.fullmatch(r"[A-Z][A-Z_]+(\.\.\.)?", word) for word in command.split())


FASEG = re.compile(r"(?:^|\s)faseg(?:_cli)?\s")


def faseg_stage(text: str) -> tuple[str, list[str], str | None]:
    """Split a command at its faseg call: (what comes before it, faseg's arguments, its ``>`` target)."""
    call = FASEG.search(text)
    lexer = shlex.shlex(text[call.end() :], posix=True, punctuation_chars="|>")
    lexer.whitespace_split = True
    args, target = [], None
    for token in lexer:
        if token == "|":
            break
        if token == ">":
            target = next(lexer)
        else:
            args.append(token)
    return text[: call.start()].strip(), args, target


def tiny_substitutes(name: str, args: list[str]) -> list[str]:
    """The options that swap the real weights for the tiny models (see the module docstring)."""
    given = set(args)
    extra = []
    method = METHODS[args[args.index("--method") + 1] if "--method" in given else DEFAULT]
    if name in ("segment", "attention") or (name == "eval" and "--predictions" not in given):
        extra += [] if given & {"-m", "--model"} else ["-m", method.tiny_model]
        extra += [] if "--resolution" in given or "resolution" not in method.options else ["--resolution", "64"]
    if name == "candidates":
        extra += [] if "--caption-model" in given else ["--caption-model", "tiny-blip"]
        extra += [] if "--clip-model" in given else ["--clip-model", "tiny-clip"]
    return extra


def check_example(line: str, cwd: Path) -> Path:
    """Run (or parse) one example line in ``cwd``; returns the working directory after it."""
    for text in re.split(r"&&|;", line):
        if text.split()[:1] == ["cd"]:
            cwd = cwd / text.split()[1]
            continue
        if not FASEG.search(text):
            continue
        before, (name, *args), target = faseg_stage(text)
        producer = before.removesuffix("|") if before.endswith("|") else None
        real_download = name == "download" and not (args and set(args) <= TINY)
        if (before and producer is None) or real_download or name == "serve":
            typer.main.get_command(app).commands[name].make_context(name, args)
            continue
        feed = (
            subprocess.run(["bash", "-c", producer], cwd=cwd, capture_output=True, check=True).stdout
            if producer
            else None
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(cwd)
            result = runner.invoke(app, [name, *args, *tiny_substitutes(name, args)], input=feed)
        assert result.exit_code == 0, f"{line}\n{result.stderr}"
        if target is not None:
            (cwd / target).write_text(result.stdout, encoding="utf-8")
    return cwd


@pytest.fixture
def sandbox(tmp_path, shared_cache):
    """Every file the examples name; the tiny models are built once per session."""
    box = tmp_path / "sandbox"
    for name in ("photo.jpg", "photos/a.jpg", "photos/sub/b.png", "shots/c.png", "docs/example.jpg"):
        (box / name).parent.mkdir(parents=True, exist_ok=True)
        imagefiles.rgb(box / name, 40, 30)
    data = box / "data"
    voc = dataset_builders.build_voc(data)
    dataset_builders.build_context(data)
    dataset_builders.build_coco(data / "coco_stuff164k")
    ade = dataset_builders.build_ade(data / "ade")
    (box / "dataset").symlink_to("data")
    (box / "candidate_classes_voc.json").write_text(str({i: "person dog" for i in voc.ids}).replace("'", '"'))
    (box / "caption_voc_blip1.json").write_text(str({i: "a man and his dog" for i in voc.ids}).replace("'", '"'))
    (box / "other-method").mkdir()
    for sample_id, label in ade.raw_labels.items():
        Image.fromarray(label).save(box / "other-method" / f"{sample_id}.png")
    return box


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_examples_and_docs(name):
    text = help_text(name)
    assert "Usage" in text and EXAMPLES_TITLE in text
    assert 2 <= len(help_examples(name)) <= 4
    assert help_examples(name) == help_examples(name, columns=200), "an example is wrapped in an 80-column terminal"
    assert typer.main.get_command(app).commands[name].help, f"{name} has no docstring"
    assert f"## faseg {name}" in (ROOT / "docs" / "usage.md").read_text()


@pytest.mark.parametrize("args", [[], *[[name] for name in COMMANDS]])
def test_help_labels_are_plain(args):
    """Typer's own labels (``<bool>``, ``<list[str]>``, ``{inputs}...``) are replaced by metavars."""
    text = help_text(*args)
    assert not re.search(r"<(bool|str|int|float|path|list)", text)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "<" not in usage


def test_eval_help_states_each_datasets_threshold():
    from faseg_cli.evaluation.datasets import dataset_names, get_dataset

    text = " ".join(help_text("eval").split())
    stated = re.search(r"dataset's \(context ([\d.]+), coco-object ([\d.]+), the others ([\d.]+)\)", text)
    assert stated, "eval --help no longer states the per-dataset thresholds"
    context, coco, others = map(float, stated.groups())
    expected = {"context": context, "coco-object": coco}
    assert {n: get_dataset(n).threshold for n in dataset_names()} == {
        n: expected.get(n, others) for n in dataset_names()
    }


@pytest.mark.parametrize("name", COMMANDS)
def test_help_examples_run(name, sandbox):
    cwd = sandbox
    for line in help_examples(name):
        cwd = check_example(line, cwd)


@pytest.mark.parametrize("where", sorted(doc_blocks()))
def test_docs_examples_run(where, sandbox):
    lines = doc_blocks()[where]
    errors = documented_errors()
    cwd = sandbox
    for line in lines:
        if line in errors:
            check_documented_error(line, errors[line], cwd)
        elif not synopsis(line):
            cwd = check_example(line, cwd)


def check_documented_error(line: str, error: str, cwd: Path) -> None:
    """A documented failure, run as written: the same one-line error up to its first parenthesis (the cause
    in parentheses depends on the machine: offline or unreachable, the cache path)."""
    _, (name, *args), _ = faseg_stage(line)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = runner.invoke(app, [name, *args])
    assert result.exit_code != 0, line
    assert [row for row in result.stderr.splitlines() if row.startswith(error.split(" (")[0])], result.stderr


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
