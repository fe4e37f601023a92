"""faseg against the published FA-Seg code's own output on a tiny random-weight model (tests/fidelity/README.md).

Stage by stage (latents, the DDIM-stepped latent, cross- and self-attention per resolution, HARD), then the
mask through the CLI. These fail when the inversion is skipped (54% of pixels agree) or recorded at t=0 (87%).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app

FIXTURE = Path(__file__).parent / "fidelity"
CASE = json.loads((FIXTURE / "cases.json").read_text())
PUBLISHED = np.load(FIXTURE / "rocket.published-stages.npz")


def to_voc_ids(labels: np.ndarray) -> np.ndarray:
    """faseg labels (k = k-th class) as the published code's VOC ids."""
    return np.array([0, *CASE["voc_ids"]], dtype=np.uint8)[labels]


def published_mask() -> np.ndarray:
    return np.asarray(Image.open(FIXTURE / CASE["mask"]))


@pytest.fixture(scope="module")
def run():
    """One segmentation of the case with the default settings, with its latents and maps."""
    from faseg_cli.engine.diffusion.model import DiffusionModel
    from faseg_cli.engine.faseg.segmenter import Segmenter
    from faseg_cli.engine.faseg.settings import FasegSettings

    model = DiffusionModel.load(FIXTURE / "tiny-sd", torch.device("cpu"), torch.float32)
    segmenter = Segmenter(model, FasegSettings(threshold=CASE["threshold"]))
    latents = {}
    invert = segmenter._invert

    def keep(x0, text):
        latents["x0"], latents["x1"] = x0, invert(x0, text)
        return latents["x1"]

    segmenter._invert = keep
    result = segmenter.segment(FIXTURE / CASE["image"], CASE["classes"], CASE["caption"], keep_maps=True)
    return result, latents


def assert_close_relative(actual: np.ndarray, expected: np.ndarray, tolerance: float) -> None:
    """Largest difference relative to the largest published value (fp32 rounding in a deep network)."""
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= tolerance * np.abs(expected).max()


def test_prompt_is_the_published_dual_prompt(run):
    assert run[0].prompt == CASE["published_prompt"]


def test_latents_before_and_after_the_ddim_step(run):
    _, latents = run
    assert_close_relative(latents["x0"].numpy(), PUBLISHED["latents"], 1e-5)
    assert_close_relative(latents["x1"].numpy(), PUBLISHED["latents_after_inversion"], 1e-5)


@pytest.mark.parametrize("r", [8, 16, 32, 64])
def test_cross_attention_per_resolution(run, r):
    assert_close_relative(run[0].maps.cross[r].numpy(), PUBLISHED[f"cross_{r}"], 1e-3)


@pytest.mark.parametrize("r", [8, 16])
def test_self_attention_per_resolution(run, r):
    assert_close_relative(run[0].maps.self_[r].numpy(), PUBLISHED[f"self_{r}"], 1e-3)


def test_refined_maps(run):
    assert_close_relative(run[0].maps.refined.numpy(), PUBLISHED["refined"], 1e-3)


def test_cli_mask_matches_the_published_mask():
    args = ["segment", str(FIXTURE / CASE["image"]), "--classes", ",".join(CASE["classes"])]
    args += ["--caption", CASE["caption"], "--threshold", str(CASE["threshold"]), "--model", str(FIXTURE / "tiny-sd")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    mask = np.asarray(Image.open(result.stdout.strip()))
    agreement = (to_voc_ids(mask) == published_mask()).mean()
    assert agreement >= 0.999, f"{agreement:.4%} of pixels agree with the published mask"
