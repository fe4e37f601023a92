"""Measurement helpers for the benchmarks: models, test images, timed runs, floors, peak memory.

``bench.py`` strings these into one benchmark per method; everything here measures and
returns figures, nothing prints.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faseg_cli.engine.diffusion.model import DiffusionModel
from faseg_cli.engine.diffusion.tokens import tokenize_prompts
from faseg_cli.engine.faseg.refine import hard_refine, naive_propagate, propagate
from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.timing import StageTimer
from faseg_cli.files.images import model_input
from faseg_cli.files.outputs import write_mask
from faseg_cli.models.device import describe
from faseg_cli.models.random_diffusion import random_components

BATCH_STAGES = ("preprocess", "vae", "text", "inversion", "unet")
IMAGE_STAGES = ("hard", "ttf_labels", "write")
NACLIP_STAGES = ("preprocess", "clip", "pamr", "labels")


def machine(device: torch.device, dtype: torch.dtype) -> dict:
    """Where the figures were taken: device and precision, CPU, threads, torch version, and the load
    average (read it after the timed work: it then says how busy the machine was meanwhile)."""
    return {
        "device": describe(device, dtype),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
    }


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    """``fn(*args, **kwargs)`` and the seconds it took."""
    began = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - began


def reset_peak_memory(device: torch.device) -> None:
    """Start a new high-water mark (CUDA allocator, or the process RSS on Linux)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_gib(device: torch.device) -> float:
    """Peak since the last reset: GPU memory allocated by torch, else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def build_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> DiffusionModel:
    if args.model:
        from faseg_cli.models.registry import DIFFUSION
        from faseg_cli.models.weights import resolve_model

        return DiffusionModel.load(resolve_model(args.model, DIFFUSION), device, dtype)
    unet, vae, text, tokenizer = random_components(args.preset)
    return DiffusionModel.from_components(unet, vae, text, tokenizer, device, dtype, Path(f"random-{args.preset}"))


def test_images(count: int) -> list[Image.Image]:
    """Deterministic photos of VOC-like sizes."""
    rng = np.random.RandomState(0)
    sizes = [(500, 375), (375, 500), (500, 333), (480, 360)]
    return [
        Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8)) for w, h in (sizes[i % 4] for i in range(count))
    ]


def time_batch_size(model, settings, classes, images, batch_size, folder, results: list) -> dict:
    """Time ``images`` in batches of ``batch_size``; their results are appended to ``results``."""
    timer = StageTimer(model.device)
    segmenter = Segmenter(model, settings, timer)
    segmenter.segment_batch(images[:batch_size], [classes] * batch_size)
    timer.seconds.clear()
    reset_peak_memory(model.device)
    began = time.perf_counter()
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        for i, result in enumerate(segmenter.segment_batch(batch, [classes] * len(batch))):
            results.append(result)
            with timer("write"):
                write_mask(folder / f"{start + i}.png", result.labels)
    total = time.perf_counter() - began
    per_image = {s: statistics.median(t / batch_size for t in timer.seconds[s]) for s in BATCH_STAGES}
    per_image.update({s: statistics.median(timer.seconds[s]) for s in IMAGE_STAGES})
    return {
        "batch_size": batch_size,
        "images": len(images),
        "stage_median_s_per_image": per_image,
        "s_per_image": total / len(images),
        "images_per_s": len(images) / total,
        "peak_memory_gib": peak_memory_gib(model.device),
    }


@torch.inference_mode()
def time_floor(model: DiffusionModel, resolution: int, images: list[Image.Image]) -> float:
    """Median seconds per image of the work no faithful run can skip (SPEC §5).

    VAE-encode the image and its mirror, then two UNet passes at batch 2 with diffusers'
    own attention processor: no recording, no refinement, no I/O.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    recording = model.unet.attn_processors
    model.unet.set_attn_processor(AttnProcessor2_0())
    text = model.encode_text(tokenize_prompts(model.tokenizer, ["a photo of a dog"] * 2))
    seconds = []
    try:
        for image in images:
            timer = StageTimer(model.device)
            with timer("floor"):
                pixels = torch.from_numpy(model_input(image, resolution))
                latents = model.encode_images(torch.stack([pixels, pixels.flip(-1)]))
                for _ in range(2):
                    model.unet_pass(latents, 1, text)
            seconds.append(timer.seconds["floor"][0])
    finally:
        model.unet.set_attn_processor(recording)
    return statistics.median(seconds)


def batch_invariance(reference: list, results: list) -> dict:
    """How far results differ from those of the first batch size on the same images (0 when batch-invariant)."""
    pairs = list(zip(reference, results))
    if not pairs:
        return {}
    return {
        "max_score_difference_vs_first": max(float(np.abs(a.scores - b.scores).max()) for a, b in pairs),
        "label_agreement_vs_first": float(np.mean([(a.labels == b.labels).mean() for a, b in pairs])),
    }


def compare_hard(model, settings, classes, image) -> dict:
    """Time the factorised and the naive HARD on one image's recorded maps and check they agree.

    Agreement is measured on ``lift(S_r)^tau F`` before min-max normalisation, relative to
    its largest value: min-max amplifies rounding where a map is nearly constant.
    """
    maps = Segmenter(model, settings).segment(image, classes, keep_maps=True).maps
    weights = settings.level_weights(settings.self_weights)
    seconds, products = {}, {}
    for name, fn in (("factorised", propagate), ("naive", naive_propagate)):
        kept = products.setdefault(name, [])

        def keep(*args, fn=fn, kept=kept):
            kept.append(fn(*args))
            return kept[-1]

        timer = StageTimer(model.device)
        with timer(name):
            hard_refine(maps.self_, maps.fused, weights, settings.tau, propagate_fn=keep)
        seconds[name] = timer.seconds[name][0]
    difference = max(
        float((n - f).abs().max() / n.abs().max()) for n, f in zip(products["naive"], products["factorised"])
    )
    return {
        "factorised_s": seconds["factorised"],
        "naive_s": seconds["naive"],
        "speedup": seconds["naive"] / seconds["factorised"],
        "max_relative_difference": difference,
    }


def naclip_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    """NACLIP's CLIP: ``--model`` weights, else ViT-B/16's architecture with random weights (tiny-clip if tiny)."""
    from faseg_cli.engine.naclip.model import NaclipModel

    if args.model or args.preset == "tiny":
        return NaclipModel.load(args.model or "tiny-clip", device, dtype)
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    from faseg_cli.engine.clip import ClipEncoder
    from faseg_cli.models.random_diffusion import tiny_vocabulary

    config = CLIPConfig(
        text_config={"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8, "num_hidden_layers": 12},
        vision_config={"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "patch_size": 16},
        projection_dim=512,
    )
    torch.manual_seed(0)
    vocab, merges = tiny_vocabulary()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges], model_max_length=77)
    encoder = ClipEncoder(CLIPModel(config), tokenizer, [0.5] * 3, [0.5] * 3, device, "random")
    return NaclipModel(encoder, Path("random-clip-vit-b-16"), dtype)


def naclip_floor(model, segmenter, image: Image.Image, repeats: int) -> float:
    """Seconds per image of the plain CLIP vision forwards of the image's sliding windows (same batches)."""
    from faseg_cli.engine.naclip.maths import normalise, rescaled_size, resize_bilinear, window_boxes
    from faseg_cli.engine.naclip.model import WINDOW_BATCH

    s = segmenter.settings
    pixels = resize_bilinear(torch.from_numpy(np.array(image)), rescaled_size(*image.size, s.short_side, s.long_side))
    crops = normalise(pixels, s.pixel_mean, s.pixel_std)
    if s.window:
        crops = torch.cat(
            [crops[..., y1:y2, x1:x2] for y1, y2, x1, x2 in window_boxes(*crops.shape[-2:], s.window, s.stride)]
        )
    vision = model.encoder.model.vision_model
    crops = crops.to(model.device, model.dtype)
    seconds = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            began = time.perf_counter()
            for i in range(0, len(crops), WINDOW_BATCH):
                vision(pixel_values=crops[i : i + WINDOW_BATCH], interpolate_pos_encoding=True)
            seconds.append(time.perf_counter() - began)
    return statistics.median(seconds[1:])


def time_batch_sizes(model, settings, classes, batch_sizes: list[int], count: int, folder: Path) -> tuple[list, list]:
    """One timed run per batch size (``count`` images rounded up to full batches), each compared with the first.

    Returns the runs' figures and the first run's results."""
    runs, first = [], []
    for batch_size in batch_sizes:
        results = []
        images = test_images(-(-count // batch_size) * batch_size)
        runs.append(time_batch_size(model, settings, classes, images, batch_size, folder, results))
        runs[-1].update(batch_invariance(first, results))
        first = first or results
    return runs, first


def time_naclip(segmenter, timer: StageTimer, images: list[Image.Image], classes: list[str]) -> dict:
    """The first image (which computes the text queries), then seconds per image and the median of each stage.

    Peak memory is reset before the timed images; read it with ``peak_memory_gib`` when done."""
    _, first_s = timed(segmenter.segment, images[0], classes)
    timer.seconds.clear()
    reset_peak_memory(segmenter.model.device)
    began = time.perf_counter()
    for image in images:
        segmenter.segment(image, classes)
    return {
        "first_image_s": first_s,
        "s_per_image": (time.perf_counter() - began) / len(images),
        "stage_median_s_per_image": {s: statistics.median(timer.seconds[s]) for s in NACLIP_STAGES},
    }


def time_method(segmenter, images, classes) -> float:
    """Seconds per image of ``segmenter`` on ``images[1:]`` (after one warm-up image), peak memory reset after it."""
    segmenter.segment(images[0], classes)
    reset_peak_memory(segmenter.model.device)
    began = time.perf_counter()
    for image in images[1:]:
        segmenter.segment(image, classes)
    return (time.perf_counter() - began) / (len(images) - 1)


CLASSES = ("dog", "person", "car", "cat", "sofa", "chair", "bottle", "bird", "horse", "train")
"""The classes of the per-class benchmarks (DiffSegmenter, iSeg): the first K."""


def class_count_parser(description: str) -> argparse.ArgumentParser:
    """The options of a per-class benchmark; each adds its ``--preset`` (and what else it needs)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--counts", default="1,3,10", help="numbers of classes K")
    parser.add_argument("--images", type=int, default=1, help="timed images per K (after one warm-up image)")
    parser.add_argument("--with-faseg", action="store_true", help="also time FA-Seg on the same model and classes")
    parser.add_argument("--quick", action="store_true", help="tiny models: a smoke test")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    return parser


def class_count_run(count: int, seconds: float, floor: float, peak: float, timer, faseg: tuple | None) -> dict:
    """One K of a per-class benchmark (DiffSegmenter, iSeg): the figures, printed as one line.

    ``faseg`` is FA-Seg's (seconds per image, peak GiB) on the same model and classes, if timed."""
    run = {
        "classes": count,
        "s_per_image": seconds,
        "floor_s": floor,
        "floor_ratio": seconds / floor,
        "peak_memory_gib": peak,
        "stage_median_s": {k: statistics.median(v) for k, v in timer.seconds.items()},
    }
    if faseg:
        run["faseg_s_per_image"], run["faseg_peak_memory_gib"] = faseg
    stages = " ".join(f"{k} {v:.2f}" for k, v in run["stage_median_s"].items())
    faseg_note = f", FA-Seg {faseg[0]:.2f} s" if faseg else ""
    print(
        f"K={count}: {seconds:.2f} s/image ({run['floor_ratio']:.3f}x the floor, {floor:.2f} s){faseg_note}, "
        f"peak {peak:.2f} GiB | median s: {stages}",
        flush=True,
    )
    return run


def finish_report(report: dict, device: torch.device, dtype: torch.dtype, output: Path | None) -> dict:
    """Add the machine's facts, print the load average and write ``report`` as JSON to ``output`` if given."""
    import json

    report.update(machine(device, dtype))
    print(f"load average {report['load_average']}")
    if output:
        output.write_text(json.dumps(report, indent=2))
    return report
