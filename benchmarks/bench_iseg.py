"""Benchmark iSeg: time per image and its ratio to its floor, for K classes; FA-Seg on the same model beside it.

By default it builds the full-size Stable Diffusion 2.1-base architecture (UNet with linear projections and
5/10/20/20 heads, VAE, 23-layer OpenCLIP-H text encoder) with random weights: nothing is downloaded, and timings
do not depend on weight values.

    python benchmarks/bench_iseg.py                      # full size, K = 1, 3, 10
    python benchmarks/bench_iseg.py --with-faseg         # FA-Seg's time on the same model and classes too
    python benchmarks/bench_iseg.py --quick              # tiny model, seconds (used by the tests)

The floor, measured in the same process on the same image: one VAE encode and one plain UNet pass (diffusers' own
attention, no recording) on the iSeg prompt. Prints one line per K and, with ``--output``, writes the figures as
JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from measure import (
    CLASSES,
    class_count_parser,
    class_count_run,
    finish_report,
    peak_memory_gib,
    test_images,
    time_method,
    timed,
)

from faseg_cli.engine.diffusion.model import DiffusionModel
from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.engine.iseg.prompts import ClassName, build_prompt
from faseg_cli.engine.iseg.segmenter import IsegSegmenter
from faseg_cli.engine.iseg.settings import IsegSettings
from faseg_cli.engine.timing import StageTimer
from faseg_cli.models.device import select_device, select_dtype
from faseg_cli.models.random_diffusion import random_components


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = class_count_parser(__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sd21", choices=["sd21", "tiny-sd21"], help="random architecture")
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.counts = "tiny-sd21", "1,2"
    return args


@torch.inference_mode()
def floor_seconds(segmenter: IsegSegmenter, classes: list[str]) -> float:
    """One VAE encode and one plain UNet pass on the iSeg prompt of ``classes``."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    s, m = segmenter.settings, segmenter.model
    recording = m.unet.attn_processors
    m.unet.set_attn_processor(AttnProcessor2_0())
    prompt = build_prompt(m.tokenizer, [ClassName(c) for c in classes], s.context)
    text = m.encode_text(torch.tensor([prompt.ids]))
    try:
        began = time.perf_counter()
        noisy = m.noisy_latent(torch.rand(1, 3, s.resolution, s.resolution) * 2 - 1, s.seed, s.timestep)
        m.unet_pass(noisy, s.timestep, text)
        if m.device.type == "cuda":
            torch.cuda.synchronize(m.device)
        return time.perf_counter() - began
    finally:
        m.unet.set_attn_processor(recording)


def build_model(preset: str, device: torch.device, dtype: torch.dtype) -> DiffusionModel:
    unet, vae, text, tokenizer = random_components(preset)
    return DiffusionModel.from_components(unet, vae, text, tokenizer, device, dtype, Path(f"random-{preset}"))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    model, load_s = timed(build_model, args.preset, device, dtype)
    report = {"method": "iseg", "model": f"random {args.preset}", "load_s": load_s, "runs": []}
    images = test_images(args.images + 1)
    for count in (int(k) for k in args.counts.split(",")):
        classes = list(CLASSES[:count])
        timer = StageTimer(device)
        segmenter = IsegSegmenter(model, IsegSettings(), timer)
        seconds = time_method(segmenter, images, classes)
        peak = peak_memory_gib(device)
        floor = statistics.median(floor_seconds(segmenter, classes) for _ in range(2))
        faseg = None
        if args.with_faseg:
            faseg_s = time_method(Segmenter(model, FasegSettings()), images, classes)
            faseg = (faseg_s, peak_memory_gib(device))
        report["runs"].append(class_count_run(count, seconds, floor, peak, timer, faseg))
    return finish_report(report, device, dtype, args.output)


if __name__ == "__main__":
    main()
