"""iSeg end to end on tiny-random-sd21 against the published code's runs (tests/iseg/fixtures/README.md), and
``--method iseg`` through the commands."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.engine.iseg.settings import for_dataset
from faseg_cli.models.random_diffusion import write_tiny_sd21

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_CASES = ["voc_rocket", "coco_chelsea"]
WEIGHTS = {
    "text_encoder/model.safetensors": "9853285fd18f828ae76377ef4682bc03ceb8f36cc212e50bba4b2cd35a7fbfcf",
    "unet/diffusion_pytorch_model.safetensors": "11a74f1b5cae917634a8901f40c11e14488ffec78f5aa8fb670e2f830fe1ec8c",
    "vae/diffusion_pytorch_model.safetensors": "c30cdbdac12eaf927cf52e52844bed477bc7882b0093892db23bfe5ab18e5ead",
}
"""SHA-256 of the tiny model's weight files the published runs used."""
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_sd21(tmp_path_factory):
    path = write_tiny_sd21(tmp_path_factory.mktemp("tiny-sd21"))
    changed = [f for f, digest in WEIGHTS.items() if hashlib.sha256((path / f).read_bytes()).hexdigest() != digest]
    assert changed == [], f"the builder now writes other weights ({changed}): the fixtures need to be made again"
    return path


@pytest.fixture(scope="module")
def model(tiny_sd21):
    from faseg_cli.engine.diffusion.model import DiffusionModel

    return DiffusionModel.load(tiny_sd21, torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module", params=MODEL_CASES)
def run(request, model):
    """One segmentation of the case with its published configuration, and the published stages and mask."""
    from faseg_cli.engine.iseg.segmenter import IsegSegmenter

    folder = FIXTURES / request.param
    meta = json.loads((folder / "case.json").read_text())
    segmenter = IsegSegmenter(model, for_dataset(meta["configuration"]))
    result = segmenter.segment(folder / meta["image"]["file"], meta["classes"], keep_maps=True)
    lut = np.zeros(256, np.uint8)
    lut[meta["label_values"]] = np.arange(1, len(meta["classes"]) + 1)
    published = lut[np.asarray(Image.open(folder / "mask.png"))]
    return segmenter, result, meta, np.load(folder / "stages.npz"), published


def test_prompt_and_class_tokens_are_the_published_ones(run):
    segmenter, result, meta, stages, _ = run
    assert result.prompt == meta["prompt"]
    prompt_ids = segmenter.model.tokenizer(result.prompt, padding="max_length", max_length=77, truncation=True)
    assert prompt_ids["input_ids"] == stages["input_ids"].tolist()


def test_text_embedding_with_gamma(run):
    from faseg_cli.engine.iseg import maths

    segmenter, _, meta, stages, _ = run
    model = segmenter.model
    encoded = model.encode_text(torch.from_numpy(stages["input_ids"]).long()[None])
    positions = [p for tokens in meta["token_positions"] for p in tokens]
    embedding = maths.emphasise(encoded, positions, segmenter.settings.gamma)[0]
    assert np.abs(embedding.numpy() - stages["text_embedding"]).max() <= 1e-5 * np.abs(stages["text_embedding"]).max()


def test_mask_agrees_with_the_published_run(run):
    """Not 100%: fp32 rounding differences upstream (channels-last VAE, other attention kernels) can flip a DFC-KL
    cluster, which moves a region, and COCO-Object's threshold cuts through flat scores (docs/algorithm.md);
    measured 99.998% on voc_rocket, 99.27% on coco_chelsea."""
    _, result, _, _, published = run
    assert result.labels.shape == published.shape
    assert (result.labels == published).mean() >= 0.99


def test_attention_maps_of_each_step(run):
    _, result, meta, _, _ = run
    maps, k = result.maps, len(meta["classes"])
    assert maps.cross[16].shape == (1, k, 16, 16) and maps.cross[32].shape == (1, k, 32, 32)
    assert maps.fused.shape == maps.refined.shape == maps.steps["clustered (DFC-KL)"].shape == (1, k, 64, 64)
    assert result.scores.shape == (k, meta["image"]["height"], meta["image"]["width"])


def test_segment_attention_and_eval_commands(tmp_path, shared_cache):
    image = FIXTURES / "context_chelsea" / "image.jpg"
    common = ["--method", "iseg", "--model", "tiny-random-sd21"]
    out = str(tmp_path / "out")
    result = runner.invoke(app, ["segment", str(image), "--classes", "dog,person", *common, "-o", out])
    assert result.exit_code == 0, result.stderr
    mask = np.asarray(Image.open(tmp_path / "out" / "image.png"))
    assert mask.shape == (300, 451)
    result = runner.invoke(app, ["attention", str(image), "--classes", "cat", *common, "-o", str(tmp_path / "att")])
    assert result.exit_code == 0, result.stderr
    arrays = np.load(tmp_path / "att" / "image" / "attention.npz")
    assert {"cross_16", "cross_32", "fused", "clustered", "refined", "scores", "labels"} <= set(arrays.files)
    bad = runner.invoke(app, ["segment", str(image), "--classes", "dog", *common, "--tau", "3"])
    assert bad.exit_code != 0 and "--tau does not apply to --method iseg" in bad.stderr


def test_serve_segments_with_iseg(model):
    pytest.importorskip("starlette", reason="the serve extra is installed with the [test] extra")
    from starlette.testclient import TestClient

    from faseg_cli.engine.iseg.segmenter import IsegSegmenter
    from faseg_cli.serve.app import create_app
    from faseg_cli.serve.service import CandidateModels, SegmentService
    from faseg_cli.vocabularies import builtin_names

    service = SegmentService(
        IsegSegmenter(model), CandidateModels(builtin_names(), "both", "tiny-clip", "tiny-blip", "cpu", None), "tiny"
    )
    image = (FIXTURES / "context_chelsea" / "image.jpg").read_bytes()
    with TestClient(create_app(service, max_upload_bytes=200_000), base_url="http://127.0.0.1") as client:
        answer = client.post("/segment", files={"image": ("cat.jpg", image)}, data={"classes": "cat,table"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["classes"] == ["cat", "table"]
