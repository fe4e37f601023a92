"""A model of the wrong kind for a method (or an option) is one usage line before anything loads."""

import pytest
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.engine.methods import METHODS
from faseg_cli.errors import UsageError
from faseg_cli.models.registry import MODELS, lookup
from faseg_cli.models.weights import model_kind
from tests import imagefiles

runner = CliRunner()
CLIP_UNDER_FASEG = "tiny-clip is a CLIP model: use it with --method naclip"
DIFFUSION_UNDER_NACLIP = "tiny-random is a Stable Diffusion 1.5-family diffusion model: use it with --method fa-seg"


def test_every_model_has_a_kind_and_every_method_a_registered_one():
    assert all(source.kind.family for source in MODELS.values())
    kinds = {source.kind for source in MODELS.values()}
    assert all(m.model_kinds and set(m.model_kinds) <= kinds for m in METHODS.values())
    assert all(lookup(m.default_model).kind in m.model_kinds for m in METHODS.values())
    assert all(lookup(m.tiny_model).kind in m.model_kinds for m in METHODS.values())


@pytest.mark.parametrize(
    "args, wanted",
    [
        (["segment", "a.png", "--classes", "cat", "--model", "tiny-clip"], CLIP_UNDER_FASEG),
        (
            ["segment", "a.png", "--classes", "cat", "--method", "naclip", "--model", "tiny-random"],
            DIFFUSION_UNDER_NACLIP,
        ),
        (["attention", "a.png", "--classes", "cat", "-m", "tiny-clip"], CLIP_UNDER_FASEG),
        (["eval", "voc", "data", "-m", "tiny-clip"], CLIP_UNDER_FASEG),
        (
            ["segment", "a.png", "--classes", "cat", "-m", "tiny-blip"],
            "tiny-blip is a BLIP captioning model: use it with --caption-model",
        ),
        (
            ["candidates", "a.png", "--vocab", "voc", "--clip-model", "tiny-blip"],
            "use it with --caption-model (--clip-model needs a CLIP model)",
        ),
        (
            ["candidates", "a.png", "--vocab", "voc", "--caption-model", "tiny-clip"],
            "(--caption-model needs a BLIP captioning model)",
        ),
    ],
)
def test_cli_refuses_a_model_of_another_kind_in_one_line(args, wanted, tmp_path):
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"error: {result.stderr[7:].strip()}"] and wanted in result.stderr
    assert not (tmp_path / "cache").exists(), "something was built or downloaded before the check"


def test_api_refuses_a_model_of_another_kind_before_loading(tmp_path):
    from faseg_cli import Segmenter

    with pytest.raises(UsageError, match=DIFFUSION_UNDER_NACLIP):
        Segmenter.load("tiny-random", method="naclip")
    with pytest.raises(UsageError, match=CLIP_UNDER_FASEG):
        Segmenter.load("tiny-clip")
    assert not (tmp_path / "cache").exists()


def test_local_directories_are_recognised_from_their_files(tiny_model_dir, tiny_clip_dir, tmp_path):
    assert model_kind(str(tiny_model_dir)).family == "diffusion" and model_kind(str(tiny_clip_dir)).name == "clip"
    assert model_kind(str(tmp_path)) is None and model_kind("someone/unregistered") is None
    imagefiles.rgb(tmp_path / "a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "cat", "-m", str(tiny_clip_dir)])
    assert result.exit_code == 2 and f"{tiny_clip_dir} is a CLIP model: use it with --method naclip" in result.stderr
    result = runner.invoke(
        app, ["segment", "a.png", "--classes", "cat", "--method", "naclip", "-m", str(tiny_model_dir)]
    )
    assert result.exit_code == 2 and "is a diffusion model: use it with --method fa-seg" in result.stderr
