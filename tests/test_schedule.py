"""The noise schedule read from a model's scheduler config, and the inversion steps (SPEC §2.5)."""

import json
import logging

import pytest
import torch

from faseg_cli.engine.diffusion.model import read_schedule
from faseg_cli.engine.diffusion.schedule import REFERENCE_SCHEDULE, alphas_cumprod, ddim_step
from faseg_cli.errors import WeightsError


def write_config(tmp_path, **fields):
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps({"_class_name": "DDIMScheduler", "steps_offset": 0, **fields}))
    return path


def test_reference_alphas_match_diffusers_ddim_scheduler():
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    assert torch.equal(alphas_cumprod(**REFERENCE_SCHEDULE), scheduler.alphas_cumprod)


def test_published_step_coefficients():
    """abar[0] -> abar[1]: about 0.99957 x0 + 0.01214 eps (SPEC §2.5)."""
    x0, eps = torch.ones(1), torch.zeros(1)
    alphas = alphas_cumprod(**REFERENCE_SCHEDULE)
    assert ddim_step(x0, eps, alphas, 1).item() == pytest.approx(0.99957, abs=1e-5)
    assert ddim_step(eps, x0, alphas, 1).item() == pytest.approx(0.01214, abs=1e-5)
    assert torch.equal(ddim_step(x0, torch.randn(1), alphas, 0), x0)


def test_config_is_read_and_extra_fields_are_ignored(tmp_path, caplog):
    path = write_config(tmp_path, **REFERENCE_SCHEDULE, set_alpha_to_one=False, clip_sample=False)
    with caplog.at_level(logging.WARNING, logger="faseg"):
        assert read_schedule(path) == REFERENCE_SCHEDULE
    assert not caplog.records


def test_missing_config_falls_back_to_the_reference(tmp_path):
    assert read_schedule(tmp_path / "absent.json") == REFERENCE_SCHEDULE


def test_a_different_schedule_is_used_with_one_warning(tmp_path, caplog):
    path = write_config(tmp_path, **{**REFERENCE_SCHEDULE, "beta_end": 0.02})
    with caplog.at_level(logging.WARNING, logger="faseg"):
        assert read_schedule(path)["beta_end"] == 0.02
    assert len(caplog.records) == 1 and "differs" in caplog.records[0].getMessage()


@pytest.mark.parametrize("content", ["{not json", json.dumps({**REFERENCE_SCHEDULE, "beta_schedule": "cosine"})])
def test_unusable_config_is_a_weights_error(tmp_path, content):
    path = tmp_path / "scheduler_config.json"
    path.write_text(content)
    with pytest.raises(WeightsError):
        read_schedule(path)
