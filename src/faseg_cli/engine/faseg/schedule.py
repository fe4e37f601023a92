"""The noise schedule and the one-step inversions that bring the latent to the recording timestep (SPEC §2.5).

Pure tensor maths, no model. The published FA-Seg code takes one DDIM inversion step
with the UNet at t = 1 (its pipeline forces ``steps_offset = 1``) from alpha_bar[0]
(``set_alpha_to_one=False``) to alpha_bar[1], then records attention at t = 1 on the
stepped latent.
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
