"""Inference forwards of diffusers blocks that hold fewer full-size activations, with bit-identical results.

The VAE encoder's ResNet blocks at full resolution dominate faseg's peak memory on the
CPU: at 512 px, image and mirror, each activation is 2 x 128 x 512 x 512 fp32 (268 MB).
diffusers' ``ResnetBlock2D.forward`` keeps four of them alive at its end (the input,
the second convolution's output, their sum and the sum divided by the output scale)
and allocates a new tensor for each SiLU. ``LeanResnetBlock2D`` runs the same
operations in the same order, with the SiLUs and the residual sum in place (IEEE
addition is commutative, and dividing by 1 is exact), so it holds three: the same
numbers, about 0.27 GB less (``tests/test_lean.py`` checks the bits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.resnet import ResnetBlock2D


class LeanResnetBlock2D(ResnetBlock2D):
    """``ResnetBlock2D`` without a time embedding or resampling, for inference (no gradients)."""

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        hidden = F.silu(self.norm1(input_tensor), inplace=True)
        hidden = self.conv1(hidden)
        hidden = F.silu(self.norm2(hidden), inplace=True)
        hidden = self.conv2(self.dropout(hidden))
        shortcut = input_tensor if self.conv_shortcut is None else self.conv_shortcut(input_tensor)
        hidden.add_(shortcut)
        if self.output_scale_factor != 1:
            hidden.div_(self.output_scale_factor)
        return hidden


def lean_resnets(module: torch.nn.Module) -> int:
    """Give every plain ``ResnetBlock2D`` inside ``module`` (no time embedding, no resampling, SiLU) the lean
    forward, for inference only; returns how many. Other blocks keep diffusers' forward."""
    count = 0
    for block in module.modules():
        if type(block) is ResnetBlock2D and _plain(block):
            block.__class__ = LeanResnetBlock2D
            count += 1
    return count


def _plain(block: ResnetBlock2D) -> bool:
    return (
        block.upsample is None
        and block.downsample is None
        and block.time_emb_proj is None
        and block.time_embedding_norm == "default"
        and isinstance(block.nonlinearity, torch.nn.SiLU)
    )
