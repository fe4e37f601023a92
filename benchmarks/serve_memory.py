"""Resident memory of ``faseg serve`` over many requests: it must stay flat.

Serves the tiny random-weight model in this process through the ASGI test client (no
socket) and sends ``--requests`` requests: images of varying sizes, half of them with
the overlay, some in concurrent groups (batched), one in ten a bad request (not an
image, duplicate classes). Reports the resident set size after a warm-up and at the
end; the growth between them is what a long-running server would leak.

    python benchmarks/serve_memory.py                  # 500 requests
    python benchmarks/serve_memory.py --requests 40    # quick (used by the tests)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faseg_cli.engine.diffusion.model import DiffusionModel
from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.engine.faseg.settings import FasegSettings
from faseg_cli.models.random_diffusion import write_random_model
from faseg_cli.serve.app import create_app
from faseg_cli.serve.service import CandidateModels, SegmentService


def rss_mib() -> float:
    """Current resident set size (Linux ``/proc``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status: this script needs Linux")


def image_bytes(rng: np.random.Generator) -> bytes:
    width, height = (int(v) for v in rng.integers(32, 640, 2))
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def request(rng: np.random.Generator, number: int) -> dict:
    if number % 10 == 9:
        if number // 10 % 2:
            return {"files": {"image": ("a.jpg", image_bytes(rng))}, "data": {"classes": "dog,Dog"}}
        return {"files": {"image": ("bad.jpg", b"not an image")}, "data": {"classes": "dog"}}
    data = {"classes": "dog, person, tree", "threshold": f"{rng.uniform(0.3, 0.7):.2f}"}
    if number % 2:
        data["overlay"] = "1"
    return {"files": {"image": ("a.jpg", image_bytes(rng))}, "data": data}


async def send(app, count: int, group: int, on_step) -> list[int]:
    import httpx

    rng = np.random.default_rng(0)
    statuses: list[int] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as client:
        while len(statuses) < count:
            size = min(group if len(statuses) % 3 == 0 else 1, count - len(statuses))
            batch = [client.post("/segment", **request(rng, len(statuses) + i)) for i in range(size)]
            statuses += [answer.status_code for answer in await asyncio.gather(*batch)]
            on_step(len(statuses))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50, help="Requests before the first measurement.")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--output", type=Path, help="Also write the figures as JSON.")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        model = DiffusionModel.load(write_random_model(Path(folder), "tiny"), torch.device("cpu"), torch.float32)
    segmenter = Segmenter(model, FasegSettings(resolution=args.resolution))
    service = SegmentService(segmenter, CandidateModels([], "both", "clip", "blip", "cpu", torch.float32), "tiny")
    app = create_app(service, max_batch=4, max_wait=0.01)
    samples: list[tuple[int, float]] = []
    warmup = min(args.warmup, args.requests)
    every = max(1, args.requests // 10)

    def on_step(done: int) -> None:
        if done >= warmup and (not samples or done - samples[-1][0] >= every or done == args.requests):
            gc.collect()
            samples.append((done, rss_mib()))
            print(f"{done:5d} requests  RSS {samples[-1][1]:8.1f} MiB", file=sys.stderr)

    statuses = asyncio.run(send(app, args.requests, 4, on_step))
    report = {
        "requests": args.requests,
        "answered": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        "batches": app.state.batcher.stats.batches,
        "largest_batch": app.state.batcher.stats.largest,
        "rss_mib": [{"after": done, "rss": round(rss, 1)} for done, rss in samples],
        "growth_mib": round(samples[-1][1] - samples[0][1], 1),
    }
    print(
        f"RSS after {samples[0][0]} requests {samples[0][1]:.1f} MiB, after {samples[-1][0]} "
        f"{samples[-1][1]:.1f} MiB: growth {report['growth_mib']:+.1f} MiB"
    )
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
