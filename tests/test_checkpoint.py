"""One copy of the weights: checkpoint.load_lean against diffusers' own loader, and its fallbacks."""

import json

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from faseg_cli.engine.diffusion.model import VAE_UNUSED, DiffusionModel
from faseg_cli.models.checkpoint import load_lean, weight_files


@pytest.mark.parametrize(
    ("cls", "folder", "drop"), [(UNet2DConditionModel, "unet", ()), (AutoencoderKL, "vae", VAE_UNUSED)]
)
def test_lean_load_equals_diffusers(tiny_model_dir, cls, folder, drop):
    lean = load_lean(cls, tiny_model_dir / folder, torch.float32, torch.channels_last, drop).state_dict()
    reference = cls.from_pretrained(tiny_model_dir, subfolder=folder).state_dict()
    assert set(lean) == {name for name in reference if name.split(".")[0] not in drop}
    assert all(torch.equal(lean[name], reference[name]) for name in lean)
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in lean.values() if t.dim() == 4)


def test_lean_load_casts_each_tensor(tiny_model_dir):
    unet = load_lean(UNet2DConditionModel, tiny_model_dir / "unet", torch.bfloat16, torch.contiguous_format)
    assert {p.dtype for p in unet.parameters()} == {torch.bfloat16}


def test_the_vae_decoder_is_never_loaded(tiny_model_dir):
    model = DiffusionModel.load(tiny_model_dir, torch.device("cpu"), torch.float32)
    assert not any(hasattr(model.vae, name) for name in VAE_UNUSED)


def test_bin_weights_fall_back_to_diffusers(tiny_model_dir, tmp_path):
    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    unet.save_pretrained(tmp_path / "unet", safe_serialization=False)
    assert weight_files(tmp_path / "unet") is None
    assert load_lean(UNet2DConditionModel, tmp_path / "unet", torch.float32, torch.channels_last) is None


def test_renamed_keys_fall_back_to_diffusers(tiny_model_dir, tmp_path):
    """Old checkpoints name some weights differently; diffusers converts them, so they are not read here."""
    folder = tmp_path / "unet"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_model_dir / "unet" / "config.json").read_text())
    source = (tiny_model_dir / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    length = int.from_bytes(source[:8], "little")
    header = json.loads(source[8 : 8 + length])
    renamed = next(name for name in header if name.endswith("to_q.weight"))
    header[renamed.replace("to_q", "query")] = header.pop(renamed)
    text = json.dumps(header, separators=(",", ":")).encode().ljust(length)
    assert len(text) == length
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(source[:8] + text + source[8 + length :])
    assert load_lean(UNet2DConditionModel, folder, torch.float32, torch.channels_last) is None


def test_sharded_weights_are_listed_from_their_index(tmp_path):
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "part-2.safetensors", "b": "part-1.safetensors", "c": "part-2.safetensors"}})
    )
    assert weight_files(tmp_path) == [tmp_path / "part-1.safetensors", tmp_path / "part-2.safetensors"]
