"""Model registry, weight selection, cache and offline behaviour."""

import pytest

from faseg_cli.errors import WeightsError
from faseg_cli.models.registry import DIFFUSION, MODELS, TINY_RANDOM, lookup
from faseg_cli.models.weights import cache_dir, missing_files, model_revision, resolve_model, select_files


def test_registry_pins_the_diffusion_revision():
    assert DIFFUSION.revision == "934962eb1054b67883fabb3e0860b851baf31142"
    assert lookup("XCLiu/2_rectified_flow_from_sd_1_5") is DIFFUSION and lookup("diffusion") is DIFFUSION
    assert set(MODELS) >= {"diffusion", "tiny-random"}


def test_select_files_skips_safety_checker_and_prefers_safetensors():
    repo = [
        "model_index.json",
        "README.md",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.non_ema.bin",
        "vae/config.json",
        "vae/diffusion_pytorch_model.bin",
        "text_encoder/config.json",
        "text_encoder/pytorch_model.bin",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "scheduler/scheduler_config.json",
        "safety_checker/config.json",
        "safety_checker/pytorch_model.bin",
        "feature_extractor/preprocessor_config.json",
    ]
    assert select_files(repo, DIFFUSION) == sorted(
        [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.bin",
            "text_encoder/config.json",
            "text_encoder/pytorch_model.bin",
            "tokenizer/vocab.json",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "scheduler/scheduler_config.json",
        ]
    )


def test_cache_dir_follows_environment(tmp_path):
    assert cache_dir() == tmp_path / "cache"


def test_offline_without_cache_is_one_clear_error():
    with pytest.raises(WeightsError) as info:
        resolve_model("diffusion", DIFFUSION)
    message = str(info.value)
    assert "not in the cache" in message and "faseg download diffusion" in message and "\n" not in message


def test_local_directories(tiny_model_dir, tmp_path):
    assert resolve_model(str(tiny_model_dir), DIFFUSION) == tiny_model_dir
    (tmp_path / "partial" / "unet").mkdir(parents=True)
    with pytest.raises(WeightsError, match="missing unet/config.json"):
        resolve_model(str(tmp_path / "partial"), DIFFUSION)
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_model("./no/such/dir", DIFFUSION)


def test_generated_model_is_built_once_into_the_cache():
    path = resolve_model("tiny-random", DIFFUSION)
    assert path.is_relative_to(cache_dir()) and not missing_files(path, TINY_RANDOM.components)
    assert resolve_model("tiny-random", DIFFUSION) == path


def test_model_revision_for_reports(tmp_path):
    snapshot = tmp_path / "hub" / "models--a--b" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    assert model_revision("a/b", snapshot) == "0123abc"
    assert model_revision(str(tmp_path), tmp_path) is None
    assert model_revision("tiny-random", tmp_path / "generated" / "tiny-random-v1") == "v1"
