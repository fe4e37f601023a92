"""Benchmark faseg: time per stage, peak memory and throughput; naive against factorised HARD.

By default it builds the full-size Stable Diffusion 1.5 architecture (UNet, VAE,
text encoder) with random weights from its configuration: nothing is downloaded, and
timings do not depend on weight values. ``--model`` loads real weights instead.

    python benchmarks/bench.py                         # full size, CPU or GPU auto
    python benchmarks/bench.py --device cuda --dtype fp16 --batch-sizes 1,2,4
    python benchmarks/bench.py --quick                 # tiny model, seconds (used by the tests)
    python benchmarks/bench.py --method naclip --images 4   # NACLIP on random CLIP ViT-B/16

Prints a table and, with ``--output``, writes the figures as JSON. The measurements
themselves are in ``measure.py``; this script is the list of stages of each method's run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path

from measure import (
    batch_invariance,
    build_model,
    compare_hard,
    machine,
    naclip_floor,
    naclip_model,
    peak_memory_gib,
    test_images,
    time_batch_sizes,
    time_floor,
    time_naclip,
    timed,
)

from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.engine.timing import StageTimer
from faseg_cli.models.device import select_device, select_dtype


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="real weights: registered name, Hub id or directory (default: random sd15)")
    parser.add_argument("--preset", default="sd15", choices=["sd15", "tiny"], help="random architecture")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument(
        "--images", type=int, default=4, help="timed images per batch size (rounded up to full batches)"
    )
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--floor-images", type=int, default=2, help="images timed for the floor, before and after")
    parser.add_argument("--classes", default="dog,person,car,tv monitor,sofa")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive HARD comparison")
    parser.add_argument("--compare-dtype", help="also segment the first images in this dtype and report agreement")
    parser.add_argument("--quick", action="store_true", help="tiny model, 128 px, 2 images: a smoke test")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    parser.add_argument("--method", default="fa-seg", choices=["fa-seg", "naclip"], help="naclip: see naclip_main")
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.resolution, args.images, args.batch_sizes, args.floor_images = "tiny", 128, 2, "1,2", 1
    return args


def main(argv: list[str] | None = None) -> dict:
    """FA-Seg: the floor, each batch size, the floor again; then the dtype agreement and HARD checks asked for."""
    args = parse_args(argv)
    if args.method == "naclip":
        return naclip_main(args)
    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    model, load_s = timed(build_model, args, device, dtype)
    settings = FasegSettings(resolution=args.resolution)
    classes = args.classes.split(",")
    report = {
        "model": args.model or f"random {args.preset}",
        "resolution": args.resolution,
        "classes": len(classes),
        "load_s": load_s,
        "settings": asdict(settings),
    }
    floor_images = test_images(args.floor_images)
    floors = [time_floor(model, args.resolution, floor_images)]
    with tempfile.TemporaryDirectory() as folder:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        report["runs"], first = time_batch_sizes(model, settings, classes, batch_sizes, args.images, Path(folder))
    floors.append(time_floor(model, args.resolution, floor_images))
    report.update(machine(device, dtype))
    report["floor_s_per_image_before_after"] = floors
    report["floor_s_per_image"] = floor = statistics.mean(floors)
    for run in report["runs"]:
        run["floor_ratio"] = run["s_per_image"] / floor
    print_runs(report)
    if args.compare_dtype:
        other = build_model(args, device, select_dtype(args.compare_dtype, device))
        images = test_images(min(len(first), 2))
        others = Segmenter(other, settings).segment_batch(images, [classes] * len(images))
        report["dtype_agreement"] = {"dtype": args.compare_dtype, **batch_invariance(others, first)}
        print(f"against {args.compare_dtype}: {report['dtype_agreement']}")
    if not args.no_naive:
        report["hard"] = h = compare_hard(model, settings, classes, test_images(1)[0])
        print(
            f"HARD: factorised {h['factorised_s'] * 1e3:.1f} ms, naive {h['naive_s'] * 1e3:.0f} ms "
            f"({h['speedup']:.0f}x), max relative difference {h['max_relative_difference']:.1e}"
        )
    return write(report, args.output)


def naclip_main(args: argparse.Namespace) -> dict:
    """NACLIP: the first image, the timed images, then the floor (the plain CLIP forwards of the same windows)."""
    from faseg_cli.engine.naclip.segmenter import NaclipSegmenter

    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    model, load_s = timed(naclip_model, args, device, dtype)
    classes = args.classes.split(",")
    timer = StageTimer(model.device)
    segmenter = NaclipSegmenter(model, timer=timer)
    images = test_images(args.images)
    timings = time_naclip(segmenter, timer, images, classes)
    floor = naclip_floor(model, segmenter, images[0], 2)
    report = {
        "method": "naclip",
        **machine(device, dtype),
        "model": args.model or ("tiny-clip" if args.preset == "tiny" else "random CLIP ViT-B/16"),
        "classes": len(classes),
        "images": len(images),
        "load_s": load_s,
        **timings,
        "floor_s_per_image": floor,
        "ratio_to_floor": timings["s_per_image"] / floor,
        "peak_memory_gib": peak_memory_gib(model.device),
    }
    stages = " ".join(f"{k} {v * 1e3:.0f}" for k, v in report["stage_median_s_per_image"].items())
    print(
        f"naclip: {report['s_per_image']:.3f} s/image ({report['ratio_to_floor']:.2f}x the plain CLIP forwards, "
        f"{floor:.3f} s), first image {report['first_image_s']:.1f} s (text queries), "
        f"peak {report['peak_memory_gib']:.2f} GiB, load average {report['load_average']} | median ms/image: {stages}",
        flush=True,
    )
    return write(report, args.output)


def print_runs(report: dict) -> None:
    floor, floors = report["floor_s_per_image"], report["floor_s_per_image_before_after"]
    print(f"floor (VAE image + mirror, two plain UNet passes at batch 2): {floor:.3f} s/image {floors}")
    for run in report["runs"]:
        stages = " ".join(f"{k} {v * 1e3:.0f}" for k, v in run["stage_median_s_per_image"].items())
        if "max_score_difference_vs_first" in run:
            stages += f" | vs first batch size: max score difference {run['max_score_difference_vs_first']:.1e}"
        print(
            f"batch {run['batch_size']}: {run['s_per_image']:.3f} s/image ({run['floor_ratio']:.3f}x the floor), "
            f"{run['images_per_s']:.2f} images/s, "
            f"peak {run['peak_memory_gib']:.2f} GiB | median ms/image: {stages}",
            flush=True,
        )


def write(report: dict, output: Path | None) -> dict:
    if output:
        output.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
