"""What ``--drop-absent`` costs per image: TagCLIP among the user's classes and a reference vocabulary.

Times ``AbsentClasses.present`` per image (the reference's text embeddings computed
beforehand, as they are once per run and then cached on disk) against a floor measured
in the same process: one plain CLIP forward of the same pixels (the pass TagCLIP cannot
skip). Also reports the one-time cost of the text embeddings: measured whole with
``--preset tiny`` (tiny-clip, seconds, for the tests); for the default, CLIP ViT-B/16's
architecture with random weights (nothing downloaded; timings do not depend on weight
values), measured on ``--text-sample`` names and scaled to the whole list, the others
filled with random embeddings (their values change no cost but the number of CWR crops,
which random weights make arbitrary anyway).

    python benchmarks/drop_absent.py                      # full size, CPU
    python benchmarks/drop_absent.py --preset tiny --images 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from measure import naclip_model, test_images, timed

from faseg_cli.candidates.absent import AbsentClasses
from faseg_cli.candidates.text_embeddings import class_embeddings
from faseg_cli.vocabularies import load_vocabulary
from faseg_cli.word_lists import distractors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=["full", "tiny"])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--classes", default="dog,person,sofa")
    parser.add_argument("--reference", default="coco")
    parser.add_argument("--text-sample", type=int, default=4, help="full size: names whose embeddings are timed")
    parser.add_argument("--output", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    preset = argparse.Namespace(model=None, preset="tiny" if args.preset == "tiny" else "full")
    encoder = naclip_model(preset, torch.device("cpu"), torch.float32).encoder
    absent = AbsentClasses(encoder, load_vocabulary(args.reference))
    classes = args.classes.split(",")
    images = test_images(args.images)
    shared = list(dict.fromkeys([*absent.reference.classes, *distractors()]))
    if args.preset == "tiny":
        _, text_s = timed(absent._head, tuple(classes))
    else:
        _, sample_s = timed(class_embeddings, encoder, shared[: args.text_sample])
        text_s = sample_s / args.text_sample * (len(shared) + len(classes))
        width = encoder.model.config.projection_dim
        absent._shared = dict(zip(shared, F.normalize(torch.randn(len(shared), width), dim=-1)))
    absent.present(images[0], classes)  # warm-up
    times, floors = [], []
    with torch.inference_mode():
        for image in images:
            kept, seconds = timed(absent.present, image, classes)
            times.append(seconds)
            pixels = encoder.pixels(image, absent.max_side)
            floors.append(timed(encoder.dense_features, pixels, lambda layer, probs: None)[1])
    report = {
        "model": "tiny-clip" if args.preset == "tiny" else "random CLIP ViT-B/16",
        "reference": args.reference,
        "classes": classes,
        "images": len(images),
        "text_embeddings_s": round(text_s, 3),
        "text_embeddings": "measured" if args.preset == "tiny" else f"{args.text_sample} names timed, scaled",
        "s_per_image": round(statistics.median(times), 4),
        "floor_s_per_image": round(statistics.median(floors), 4),
        "ratio_to_floor": round(statistics.median(times) / statistics.median(floors), 2),
        "threads": torch.get_num_threads(),
        "load_average": [round(v, 1) for v in os.getloadavg()],
    }
    print(
        f"--drop-absent ({report['model']}, {len(classes)} classes + {args.reference}): "
        f"{report['s_per_image']:.3f} s/image, {report['ratio_to_floor']:.2f}x one CLIP forward "
        f"({report['floor_s_per_image']:.3f} s); text embeddings once: {text_s:.1f} s; "
        f"load average {report['load_average'][0]}",
        file=sys.stderr,
    )
    if args.output:
        args.output.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
