"""The ``sd21-base`` entry and the tiny SD 2.1-base-shaped model iSeg's tests and quickstart run on."""

import json

import pytest
import torch
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.models.random_diffusion import sd21_words, write_tiny_sd21
from faseg_cli.models.registry import SD21_BASE, TINY_SD21, lookup
from faseg_cli.models.weights import resolve_model
from tests import fake_hub

ISEG_LAYERS = {
    "down_blocks.1.attentions.1.transformer_blocks.0.attn2": 10,
    "down_blocks.2.attentions.0.transformer_blocks.0.attn2": 20,
    "down_blocks.2.attentions.1.transformer_blocks.0.attn2": 20,
    "up_blocks.1.attentions.0.transformer_blocks.0.attn2": 20,
    "up_blocks.1.attentions.2.transformer_blocks.0.attn2": 20,
    "up_blocks.2.attentions.1.transformer_blocks.0.attn2": 10,
    "up_blocks.3.attentions.1.transformer_blocks.0.attn1": 5,
    "mid_block.attentions.0.transformer_blocks.0.attn1": 20,
}
"""Some layers iSeg records (and the mid block) with SD 2.1-base's head counts."""


@pytest.fixture(scope="module")
def tiny_sd21(tmp_path_factory):
    return write_tiny_sd21(tmp_path_factory.mktemp("tiny-sd21"))


def test_sd21_base_is_pinned_with_its_licence():
    assert lookup("stabilityai/stable-diffusion-2-1-base") is SD21_BASE
    assert len(SD21_BASE.revision) == 40 and "openrail++" in SD21_BASE.license
    assert lookup("tiny-random-sd21") is TINY_SD21 and TINY_SD21.builder


def test_tiny_model_has_sd21_base_structure(tiny_sd21):
    from faseg_cli.engine.diffusion.model import DiffusionModel

    model = DiffusionModel.load(tiny_sd21, torch.device("cpu"), torch.float32)
    heads = {name: module.heads for name, module in model.unet.named_modules() if name.endswith(("attn1", "attn2"))}
    assert len(heads) == 32 and {name: heads[name] for name in ISEG_LAYERS} == ISEG_LAYERS
    attn = model.unet.get_submodule("up_blocks.3.attentions.1.transformer_blocks.0.attn1")
    assert attn.to_q.out_features // attn.heads == 4
    assert model.unet.config.use_linear_projection
    assert model.text_encoder.config.hidden_act == "gelu"
    assert model.tokenizer.pad_token == "!"
    ids = model.tokenizer("cat", padding="max_length", max_length=8)["input_ids"]
    assert ids[3:] == [model.tokenizer.convert_tokens_to_ids("!")] * 5


def test_tiny_tokenizer_knows_every_published_class_word_as_one_token(tiny_sd21):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_sd21, subfolder="tokenizer")
    assert [w for w in sd21_words() if len(tokenizer(w, add_special_tokens=False)["input_ids"]) != 1] == []
    assert len(tokenizer("fire hydrant", add_special_tokens=False)["input_ids"]) == 2


def test_tiny_model_is_built_on_first_use(shared_cache):
    path = resolve_model("tiny-random-sd21", SD21_BASE)
    assert json.loads((path / "scheduler" / "scheduler_config.json").read_text())["beta_schedule"] == "scaled_linear"


def test_download_names_the_licence(tiny_sd21, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(fake_hub, "COMMIT", SD21_BASE.revision)  # the fake Hub serves the pinned commit
    hub = fake_hub.FakeHub({SD21_BASE.repo_id: tiny_sd21})
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        result = CliRunner().invoke(app, ["download", "sd21-base"])
    finally:
        hub.close()
    assert result.exit_code == 0, result.stderr
    assert "openrail++" in result.stderr
    assert any(SD21_BASE.revision in r for r in hub.requests)
