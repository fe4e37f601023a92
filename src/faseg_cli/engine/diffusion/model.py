"""Load a Stable Diffusion-family model component by component and run its encoders and UNet (SPEC §1, §2.2).

Any SD-family layout works (the rectified-flow model, SD 1.5, SD 2.1-base): the UNet,
VAE, text encoder and tokenizer are loaded separately, never through a pipeline class
(the rectified-flow repository names one that diffusers does not ship). Only the VAE
encoder is kept: the decoder is never read (see ``models/checkpoint.py``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faseg_cli.engine.diffusion.recording import AttentionRecorder, install
from faseg_cli.engine.diffusion.schedule import REFERENCE_SCHEDULE, add_noise, alphas_cumprod, seeded_noise
from faseg_cli.errors import WeightsError
from faseg_cli.models.checkpoint import load_lean
from faseg_cli.models.quiet import quiet_libraries

log = logging.getLogger("faseg")

VAE_UNUSED = ("decoder", "post_quant_conv")
"""Only the VAE encoder is used: the decoder is never loaded."""


@dataclass
class DiffusionModel:
    """The parts of a Stable Diffusion model the methods use, with an attention recorder installed."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    recorder: AttentionRecorder
    device: torch.device
    dtype: torch.dtype
    path: Path
    memory_format: torch.memory_format = torch.contiguous_format
    """See ``preferred_layout()``."""
    alphas: torch.Tensor = field(default_factory=lambda: alphas_cumprod(**REFERENCE_SCHEDULE))
    """``alpha_bar[t]`` of the model's noise schedule (float32, CPU), for the DDIM inversion step."""

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> DiffusionModel:
        """Load from a directory with ``unet/``, ``vae/``, ``text_encoder/`` and ``tokenizer/``."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        quiet_libraries()
        path, layout = Path(path), preferred_layout(device)
        try:
            unet = _load_diffusers(UNet2DConditionModel, path, "unet", dtype, layout)
            vae = _load_diffusers(AutoencoderKL, path, "vae", dtype, layout, VAE_UNUSED)
            text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", torch_dtype=dtype)
            tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise WeightsError(f"cannot load the model in {path}: {str(exc).splitlines()[0]}") from None
        schedule = read_schedule(path / "scheduler" / "scheduler_config.json")
        return cls.from_components(unet, vae, text_encoder, tokenizer, device, dtype, path, schedule)

    @classmethod
    def from_components(
        cls, unet, vae, text_encoder, tokenizer, device, dtype, path: Path, schedule: dict | None = None
    ) -> DiffusionModel:
        """Assemble from loaded modules: drop the VAE decoder, give the encoder's ResNet blocks their lean
        forward (``models.lean``: fewer activations, the same bits), install the recorder, move to the device.

        ``schedule`` holds the noise-schedule fields of a scheduler config (default: the reference's).
        """
        from faseg_cli.models.lean import lean_resnets

        quiet_libraries()
        for name in VAE_UNUSED:
            if hasattr(vae, name):
                delattr(vae, name)
        lean_resnets(vae.encoder)
        recorder = AttentionRecorder()
        install(unet, recorder)
        layout = preferred_layout(device)
        for module in (unet, vae, text_encoder):
            if next(module.parameters()).dtype != dtype:
                module.to(dtype=dtype)
            module.to(device).eval().requires_grad_(False)
        for module in (unet, vae):
            module.to(memory_format=layout)
        alphas = alphas_cumprod(**(schedule or REFERENCE_SCHEDULE))
        return cls(unet, vae, text_encoder, tokenizer, recorder, device, dtype, Path(path), layout, alphas)

    @property
    def prompt_length(self) -> int:
        return self.tokenizer.model_max_length

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Latents of ``(B, 3, R, R)`` images in [-1, 1]: the posterior mean times the scaling factor.

        The published codes sample the posterior; the mean is faseg's deterministic choice.
        """
        vae = self.vae
        moments = vae.encoder(pixels.to(self.device, self.dtype, memory_format=self.memory_format))
        if vae.quant_conv is not None:
            moments = vae.quant_conv(moments)
        return moments.chunk(2, dim=1)[0] * vae.config.scaling_factor

    def noisy_latent(self, pixels: torch.Tensor, seed: int, timestep: int) -> torch.Tensor:
        """DiffSegmenter's and iSeg's UNet input: the latent of ``pixels`` with the noise of ``seed`` added at
        ``timestep`` (``schedule.add_noise``, ``schedule.seeded_noise``)."""
        latent = self.encode_images(pixels)
        noise = seeded_noise(seed, tuple(latent.shape)).to(self.device, self.dtype)
        return add_noise(latent, noise, self.alphas, timestep)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Last hidden states ``(B, L, D)`` of the text encoder for token ids ``(B, L)``."""
        return self.text_encoder(ids.to(self.device))[0]

    def unet_pass(self, latents: torch.Tensor, timestep: int, text: torch.Tensor) -> torch.Tensor:
        """One UNet evaluation (velocity for rectified flow) at ``timestep`` conditioned on ``text``."""
        t = torch.full((latents.shape[0],), timestep, device=self.device)
        return self.unet(latents.to(memory_format=self.memory_format), t, encoder_hidden_states=text).sample


def stretched_pixels(picture, resolution: int) -> torch.Tensor:
    """``(1, 3, R, R)`` in [-1, 1]: an RGB picture resized to ``resolution`` square (aspect not kept) as the
    DiffSegmenter and iSeg codes do it: ``ToTensor``, then ``F.interpolate`` bilinear (align_corners False)."""
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return F.interpolate(pixels, size=(resolution,) * 2, mode="bilinear", align_corners=False) * 2 - 1


def _load_diffusers(cls, path: Path, subfolder: str, dtype, layout, drop: tuple[str, ...] = ()):
    """One copy of the weights where possible (``checkpoint.load_lean``), else diffusers' own loader."""
    module = load_lean(cls, path / subfolder, dtype, layout, drop)
    return module if module is not None else cls.from_pretrained(path, subfolder=subfolder, torch_dtype=dtype)


def preferred_layout(device: torch.device) -> torch.memory_format:
    """Channels-last on CPU and CUDA, where it makes the convolutions markedly faster."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def read_schedule(config_path: Path) -> dict:
    """The noise-schedule fields of a diffusers scheduler config, or the reference's when there is none.

    A schedule that differs from the reference is used, with one warning: the published
    numbers were produced with the reference's.
    """
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.debug("%s not found: using the reference noise schedule", config_path)
        return dict(REFERENCE_SCHEDULE)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {config_path}: {exc}") from None
    schedule = {key: config.get(key, default) for key, default in REFERENCE_SCHEDULE.items()}
    if schedule != REFERENCE_SCHEDULE:
        log.warning(
            "%s: noise schedule %s differs from the published code's %s", config_path, schedule, REFERENCE_SCHEDULE
        )
    try:
        alphas_cumprod(**schedule)
    except ValueError as exc:
        raise WeightsError(f"{config_path}: {exc}") from None
    return schedule
