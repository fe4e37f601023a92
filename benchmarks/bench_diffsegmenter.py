"""Benchmark DiffSegmenter: time per image and its ratio to the method's own floor, for K classes; FA-Seg beside it.

By default it builds the full-size Stable Diffusion 1.5 architecture and the BLIP-large
architecture with random weights (BLIP's vocabulary is the tiny test one: the decoder's
output layer is smaller, the rest is BLIP-large). Random BLIP weights never emit the end
token, so every continuation runs to ``max_length``: the slowest case, the same in the floor.

    python benchmarks/bench_diffsegmenter.py                  # full size, K = 1, 3, 10
    python benchmarks/bench_diffsegmenter.py --counts 1,3 --with-faseg
    python benchmarks/bench_diffsegmenter.py --quick          # tiny models, seconds (used by the tests)

The floor for K classes, measured in the same process on the same image: one VAE encode,
K plain UNet passes (one batch of K, diffusers' own attention, no recording) and K BLIP
continuations. Prints one line per K and, with ``--output``, writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from measure import (
    CLASSES,
    build_model,
    class_count_parser,
    class_count_run,
    finish_report,
    peak_memory_gib,
    test_images,
    time_method,
    timed,
)

from faseg_cli.engine.blip import Captioner
from faseg_cli.engine.diffsegmenter.prompts import blip_prefix
from faseg_cli.engine.diffsegmenter.segmenter import DiffSegmenter
from faseg_cli.engine.diffsegmenter.settings import DiffSegmenterSettings
from faseg_cli.engine.diffusion.tokens import tokenize_prompts
from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.engine.timing import StageTimer
from faseg_cli.models.device import select_device, select_dtype


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = class_count_parser(__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sd15", choices=["sd15", "tiny"], help="random architectures")
    parser.add_argument("--model", help="real diffusion weights instead (registered name, Hub id or directory)")
    parser.add_argument("--resolution", type=int, default=512)
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.resolution, args.counts = "tiny", 128, "1,2"
    return args


def blip_model(preset: str, device: torch.device, dtype: torch.dtype, folder: Path) -> Captioner:
    """tiny-blip, or the BLIP-large architecture (ViT-L/16 at 384 px, 12-layer BERT decoder) with random weights."""
    from faseg_cli.models.random_clip_blip import write_tiny_blip

    tiny = write_tiny_blip(folder / "tiny-blip")
    if preset == "tiny":
        return Captioner.load(str(tiny), device, dtype)
    from transformers import AutoTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = BlipConfig(
        vision_config={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                       "num_attention_heads": 16, "image_size": 384, "patch_size": 16},
        text_config={"vocab_size": len(tokenizer), "encoder_hidden_size": 1024, "bos_token_id": len(tokenizer) - 1,
                     "eos_token_id": tokenizer.sep_token_id, "sep_token_id": tokenizer.sep_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
    )  # fmt: skip
    torch.manual_seed(0)
    net = BlipForConditionalGeneration(config).to(device, dtype)
    processor = BlipImageProcessorPil(size={"height": 384, "width": 384})
    return Captioner(net, tokenizer, processor, device, dtype)


@torch.inference_mode()
def floor_seconds(segmenter: DiffSegmenter, image, classes: list[str]) -> float:
    """One VAE encode, K plain UNet passes (one batch) and K BLIP continuations of the image."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    s, m = segmenter.settings, segmenter.model
    recording = m.unet.attn_processors
    m.unet.set_attn_processor(AttnProcessor2_0())
    text = m.encode_text(tokenize_prompts(m.tokenizer, [f"{s.prefix} {c}" for c in classes]))
    try:
        began = time.perf_counter()
        segmenter.captioner.continue_text(image, [blip_prefix(s.prefix, c) for c in classes], s.max_length)
        pixels = torch.rand(1, 3, s.resolution, s.resolution) * 2 - 1
        noisy = m.noisy_latent(pixels, s.seed, s.timestep)
        m.unet_pass(noisy.expand(len(classes), -1, -1, -1), s.timestep, text)
        if m.device.type == "cuda":
            torch.cuda.synchronize(m.device)
        return time.perf_counter() - began
    finally:
        m.unet.set_attn_processor(recording)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    model, load_s = timed(build_model, args, device, dtype)
    settings = DiffSegmenterSettings(resolution=args.resolution)
    report = {"method": "diffsegmenter", "model": args.model or f"random {args.preset}", "load_s": load_s, "runs": []}
    with tempfile.TemporaryDirectory() as folder:
        captioner = blip_model(args.preset, device, dtype, Path(folder))
        images = test_images(args.images + 1)
        for count in (int(k) for k in args.counts.split(",")):
            classes = list(CLASSES[:count])
            timer = StageTimer(device)
            segmenter = DiffSegmenter(model, captioner, settings, timer)
            seconds = time_method(segmenter, images, classes)
            peak = peak_memory_gib(device)
            floor = statistics.median(floor_seconds(segmenter, images[1], classes) for _ in range(2))
            faseg = None
            if args.with_faseg:
                faseg_s = time_method(Segmenter(model, FasegSettings(resolution=args.resolution)), images, classes)
                faseg = (faseg_s, peak_memory_gib(device))
            report["runs"].append(class_count_run(count, seconds, floor, peak, timer, faseg))
    return finish_report(report, device, dtype, args.output)


if __name__ == "__main__":
    main()
