"""faseg's DiffSegmenter against the published code's own output (tests/diffsegmenter/README.md says how it was made).

Every case folder (``case.json``, ``reference.npz``, ``mask.png``, the image) is checked stage by stage: the noise,
the latents, the weighted prompt embeddings, each class token's cross map per resolution, the fused and refined
maps, the scores and the mask (>= 99.9% of pixels; the rest are near-ties); then the mask end to end through the CLI.

The stages after the VAE start from the published latents. The VAE's fp32 output depends on the convolution
kernel (faseg runs it channels-last, the published code contiguous; the layout, not faseg, makes the difference:
``test_the_latents``), by up to 8.4e-4 of the largest value on these tiny random weights, and that much moves
the later stages by up to 1.3e-3 and a near-tie mask by 0.25% of its pixels. From the same latents every stage
agrees to fp32 rounding (2e-5), so the tolerances below are that tight.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app

HERE = Path(__file__).parent
TINY_SD = HERE.parent / "fidelity" / "tiny-sd"
TINY_BLIP = HERE / "tiny-blip"
CASES = sorted({p.parent for p in HERE.rglob("case.json")})


def case_info(folder: Path) -> dict:
    return json.loads((folder / "case.json").read_text())


def dataset_of(case: dict) -> str | None:
    """The eval dataset whose published script made the case (its configuration: prefix, names, -ing token)."""
    script = case.get("published_script", "")
    return {"voc10": "context", "coco": "coco-object"}.get(script.split("/")[1], None) if "/" in script else None


@pytest.fixture(scope="module")
def model():
    from faseg_cli.engine.blip import Captioner
    from faseg_cli.engine.diffusion.model import DiffusionModel

    return DiffusionModel.load(TINY_SD, torch.device("cpu"), torch.float32), Captioner.load(str(TINY_BLIP))


def run(model, folder: Path, published_latents: bool = True):
    """The case through faseg's DiffSegmenter, from the published latents unless told otherwise; ``stages`` keeps
    faseg's own latents and the pixels they came from."""
    from faseg_cli.engine.diffsegmenter.segmenter import DiffSegmenter
    from faseg_cli.engine.diffsegmenter.settings import DiffSegmenterSettings

    case = case_info(folder)
    dataset = dataset_of(case)
    settings = DiffSegmenterSettings.for_dataset(dataset) if dataset else DiffSegmenterSettings()
    segmenter = DiffSegmenter(*model, settings)
    stages = {}
    encode = segmenter.model.encode_images

    def keep(pixels):
        stages["pixels"], stages["z0"] = pixels, encode(pixels)
        return torch.from_numpy(np.load(folder / "reference.npz")["z0"]) if published_latents else stages["z0"]

    segmenter.model.encode_images = keep
    try:
        result = segmenter.segment(folder / case["image"], case["classes"], keep_maps=True)
    finally:
        del segmenter.model.encode_images
    return result, stages


def assert_close_relative(actual, expected, tolerance: float) -> None:
    """Largest difference relative to the largest published value (fp32 rounding in a deep network)."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= tolerance, f"relative error {error:.2e}"


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case(request, model):
    folder = request.param
    return folder, case_info(folder), np.load(folder / "reference.npz"), run(model, folder)


def test_the_prompts_are_the_published_ones(case):
    _, info, _, (result, _) = case
    assert result.class_prompts == [c["prompt"] for c in info["per_class"]]
    assert result.prompt == " | ".join(result.class_prompts)


def test_noise_and_latents(case, model):
    from faseg_cli.engine.diffusion.schedule import seeded_noise

    _, _, ref, (_, stages) = case
    torch.testing.assert_close(seeded_noise(4307), torch.from_numpy(ref["noise"]), rtol=0, atol=0)
    # faseg's channels-last VAE: 4.6e-5 .. 8.4e-4 from the published (contiguous) latents on these cases
    assert_close_relative(stages["z0"], ref["z0"], 2e-3)
    # in the published code's layout, the same weights give the published latents to fp32 rounding (0 .. 4.2e-6 on
    # Intel AMX, 5.6e-6 with oneDNN limited to AVX2)
    vae = copy.deepcopy(model[0].vae).to(memory_format=torch.contiguous_format)
    moments = vae.quant_conv(vae.encoder(stages["pixels"].contiguous()))
    assert_close_relative(moments.chunk(2, dim=1)[0] * vae.config.scaling_factor, ref["z0"], 2e-5)


def test_weighted_prompt_embeddings(case, model):
    from faseg_cli.engine.diffsegmenter.prompts import class_prompt, weighted_embeddings
    from faseg_cli.engine.diffusion.tokens import assemble

    diffusion = model[0]
    _, info, ref, _ = case
    prompts = [
        class_prompt(diffusion.tokenizer, c["blip_prefix"][: -len(c["name"]) - 1], c["name"], c["blip_continuation"])
        for c in info["per_class"]
    ]
    ids = torch.tensor([p.ids for p in prompts])
    np.testing.assert_array_equal(ids.numpy(), ref["token_ids"])
    np.testing.assert_allclose([p.weights for p in prompts], ref["token_weights"], rtol=1e-6)
    empty = diffusion.encode_text(torch.tensor([assemble(diffusion.tokenizer, [])[0]]))[0]
    assert_close_relative(empty, ref["uncond_embeds"], 1e-5)
    weighted = weighted_embeddings(diffusion.encode_text(ids), empty, torch.tensor([p.weights for p in prompts]))
    assert_close_relative(weighted, ref["cond_embeds"], 1e-5)


@pytest.mark.parametrize("r", [8, 16, 32, 64])
def test_cross_attention_per_resolution(case, r):
    _, _, ref, (result, _) = case
    assert_close_relative(result.maps.cross[r][0], ref[f"cross_{r}"], 1e-4)


def test_self_attention_rows(case):
    _, _, ref, (result, _) = case
    rows = ref["self64_rows"]
    step = result.maps.self_[64].shape[1] // rows.shape[1]
    assert_close_relative(result.maps.self_[64][:, ::step], rows, 1e-4)


def test_fused_refined_and_scores(case):
    _, _, ref, (result, _) = case
    assert_close_relative(result.maps.fused[0], ref["fused"], 5e-5)
    assert_close_relative(result.maps.refined[0], ref["refined"], 2e-5)
    assert_close_relative(result.scores, ref["scores"], 1e-4)


def test_mask_from_the_published_latents(case):
    folder, _, _, (result, _) = case
    agreement = (result.labels == np.asarray(Image.open(folder / "mask.png"))).mean()
    assert agreement >= 0.999, f"{agreement:.4%} of pixels agree with the published mask"


def test_mask_end_to_end(case, model, tmp_path):
    """From the image, faseg's own latents included: through the CLI (VOC cases, >= 99.9%: measured 99.979% ..
    100%) or, for another dataset's configuration, through the API (>= 99.5%: ``rocket_tall_context`` measures
    99.765%, its channels-last latents being the furthest from the published ones, 8.4e-4)."""
    folder, info, _, _ = case
    published = np.asarray(Image.open(folder / "mask.png"))
    if dataset_of(info):
        labels, least = run(model, folder, published_latents=False)[0].labels, 0.995
    else:
        args = ["segment", str(folder / info["image"]), "--classes", ",".join(info["classes"]), "-o", str(tmp_path)]
        args += ["--method", "diffsegmenter", "--model", str(TINY_SD), "--caption-model", str(TINY_BLIP)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.stderr
        labels, least = np.asarray(Image.open(result.stdout.strip())), 0.999
    agreement = (labels == published).mean()
    assert agreement >= least, f"{agreement:.4%} of pixels agree with the published mask"
