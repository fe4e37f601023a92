"""Load the diffusion components one by one and run their encoders (SPEC §1, §2.2).

The Hub repository names a custom pipeline class that diffusers does not ship, so the
UNet, VAE, text encoder and tokenizer are loaded separately. Only the VAE encoder is
kept: the decoder is dropped before the model moves to the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from faseg_cli.errors import WeightsError
from faseg_cli.quiet import quiet_libraries
from faseg_cli.recording import AttentionRecorder, RecordingAttnProcessor

log = logging.getLogger("faseg")


@dataclass
class DiffusionModel:
    """The parts of a Stable Diffusion 1.x model that FA-Seg uses, with an attention recorder installed."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    recorder: AttentionRecorder
    device: torch.device
    dtype: torch.dtype
    path: Path
    memory_format: torch.memory_format = torch.contiguous_format
    """Channels-last on CPU and CUDA, where it makes the convolutions markedly faster."""

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> DiffusionModel:
        """Load from a directory with ``unet/``, ``vae/``, ``text_encoder/`` and ``tokenizer/``."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        quiet_libraries()
        try:
            unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype)
            vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtype)
            text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", torch_dtype=dtype)
            tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise WeightsError(f"cannot load the model in {path}: {str(exc).splitlines()[0]}") from None
        return cls.from_components(unet, vae, text_encoder, tokenizer, device, dtype, Path(path))

    @classmethod
    def from_components(cls, unet, vae, text_encoder, tokenizer, device, dtype, path: Path) -> DiffusionModel:
        """Assemble from loaded modules: drop the VAE decoder, install the recorder, move to the device."""
        quiet_libraries()
        del vae.decoder, vae.post_quant_conv
        recorder = AttentionRecorder()
        unet.set_attn_processor(RecordingAttnProcessor(recorder))
        memory_format = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
        for module in (unet, vae, text_encoder):
            if next(module.parameters()).dtype != dtype:
                module.to(dtype=dtype)
            module.to(device).eval().requires_grad_(False)
        for module in (unet, vae):
            module.to(memory_format=memory_format)
        return cls(unet, vae, text_encoder, tokenizer, recorder, device, dtype, Path(path), memory_format)

    @property
    def prompt_length(self) -> int:
        return self.tokenizer.model_max_length

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Latents of ``(B, 3, R, R)`` images in [-1, 1]: the posterior mean times the scaling factor.

        The reference samples the posterior with seed 0; the mean is the deterministic choice.
        """
        vae = self.vae
        moments = vae.encoder(pixels.to(self.device, self.dtype, memory_format=self.memory_format))
        if vae.quant_conv is not None:
            moments = vae.quant_conv(moments)
        return moments.chunk(2, dim=1)[0] * vae.config.scaling_factor

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Last hidden states ``(B, L, D)`` of the text encoder for token ids ``(B, L)``."""
        return self.text_encoder(ids.to(self.device))[0]

    def unet_pass(self, latents: torch.Tensor, timestep: int, text: torch.Tensor) -> torch.Tensor:
        """One UNet evaluation (velocity for rectified flow) at ``timestep`` conditioned on ``text``."""
        t = torch.full((latents.shape[0],), timestep, device=self.device)
        return self.unet(latents.to(memory_format=self.memory_format), t, encoder_hidden_states=text).sample
