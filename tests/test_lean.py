"""The lean ResNet forward of the VAE encoder (``models.lean``) gives diffusers' results bit for bit."""

import copy

import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D

from faseg_cli.models.lean import LeanResnetBlock2D, lean_resnets
from faseg_cli.models.random_diffusion import random_components


@torch.inference_mode()
def test_the_tiny_vae_encoder_is_bit_identical_with_lean_blocks():
    _, vae, _, _ = random_components("tiny")
    encoder = vae.encoder.eval().to(memory_format=torch.channels_last)
    lean = copy.deepcopy(encoder)
    assert lean_resnets(lean) == 6 and all(type(b) is not ResnetBlock2D for b in lean.modules())
    pixels = torch.randn(2, 3, 128, 128).to(memory_format=torch.channels_last)
    assert torch.equal(lean(pixels), encoder(pixels))


@pytest.mark.parametrize("scale", [1.0, 2.0])
@torch.inference_mode()
def test_a_block_with_a_shortcut_and_an_output_scale(scale):
    torch.manual_seed(0)
    block = ResnetBlock2D(in_channels=8, out_channels=16, temb_channels=None, groups=4, output_scale_factor=scale)
    lean = copy.deepcopy(block.eval())
    assert lean_resnets(lean) == 1 and type(lean) is LeanResnetBlock2D
    x = torch.randn(2, 8, 12, 12)
    assert torch.equal(lean(x, None), block(x, None))


def test_blocks_with_a_time_embedding_or_resampling_keep_their_forward():
    timed = ResnetBlock2D(in_channels=8, out_channels=8, temb_channels=32, groups=4)
    down = ResnetBlock2D(in_channels=8, out_channels=8, temb_channels=None, groups=4, down=True)
    assert lean_resnets(timed) == lean_resnets(down) == 0 and type(timed) is type(down) is ResnetBlock2D
