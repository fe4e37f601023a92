"""The noise schedule and the ways a latent reaches the recorded timestep (SPEC §2.5, §6.1).

Pure tensor maths, no model. FA-Seg's published code takes one DDIM inversion step
with the UNet at t = 1 (its pipeline forces ``steps_offset = 1``) from alpha_bar[0]
(``set_alpha_to_one=False``) to alpha_bar[1], then records attention at t = 1 on the
stepped latent. DiffSegmenter and iSeg add seeded Gaussian noise at t (``add_noise``,
noise from ``seeded_noise``: a CPU generator, so the same seed gives the same latent
on every device).
"""

from __future__ import annotations

import torch

REFERENCE_SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
}
"""The schedule the published code hard-codes; SD 1.5-family models ship the same in their scheduler config."""


def alphas_cumprod(
    beta_start: float, beta_end: float, beta_schedule: str, num_train_timesteps: int, **_ignored
) -> torch.Tensor:
    """``alpha_bar[t]`` for t = 0..T-1 in float32, computed as diffusers' DDIM scheduler does."""
    if beta_schedule == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
    elif beta_schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    else:
        raise ValueError(f"beta schedule {beta_schedule!r} is not supported (scaled_linear or linear)")
    return torch.cumprod(1.0 - betas, dim=0)


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, alphas: torch.Tensor, t: int) -> torch.Tensor:
    """One DDIM inversion step from alpha_bar[0] to alpha_bar[t], given the noise prediction ``eps`` (fp32 maths)."""
    a0, at = alphas[0], alphas[t]
    x, e = x0.float(), eps.float()
    x_t = at.sqrt() * (x - (1 - a0).sqrt() * e) / a0.sqrt() + (1 - at).sqrt() * e
    return x_t.to(x0.dtype)


def euler_step(x0: torch.Tensor, velocity: torch.Tensor, t: int) -> torch.Tensor:
    """Rectified-flow Euler step ``x_t = x_0 - (t / 1000) v(x_0, 0)``."""
    return (x0.float() - (t / 1000) * velocity.float()).to(x0.dtype)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, alphas: torch.Tensor, t: int) -> torch.Tensor:
    """``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``, as diffusers' ``DDIMScheduler.add_noise`` (fp32 maths)."""
    at = alphas[t]
    return (at.sqrt() * x0.float() + (1 - at).sqrt() * noise.float()).to(x0.dtype)


def seeded_noise(seed: int, shape: tuple[int, ...] = (1, 4, 64, 64)) -> torch.Tensor:
    """``torch.randn(shape)`` from a CPU generator seeded with ``seed`` (float32, CPU): device-independent."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
