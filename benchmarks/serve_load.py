"""Load test of `faseg serve` on loopback: throughput, latency and memory at 1, 4, 16 and 64 clients.

Starts `faseg serve` with the tiny random-weight model on a free port of 127.0.0.1
(nothing else is ever contacted) with its default limits (queue of 16), then, per
level of concurrency, lets that many clients send requests back to back, each
``--requests`` requests or until ``--seconds`` have passed, whichever comes first.
Per level it reports the answered statuses (503: past the queue limit, with the
``Retry-After`` the server gave), the throughput of successful requests, the p50
and p99 latency of those, and the server's resident memory (now and peak).
Bounded: at most ``levels x clients x requests`` requests and ``--seconds`` per level.

    python benchmarks/serve_load.py --output /tmp/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

LOOPBACK = "127.0.0.1"


def image_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def memory(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[key].split()[0]) / 1024) for key in ("VmRSS", "VmHWM")}


async def level(base: str, clients: int, requests: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    retry_after: set[str] = set()
    end = time.monotonic() + seconds
    data = image_bytes(clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http) -> None:
        for _ in range(requests):
            if time.monotonic() > end:
                return
            began = time.monotonic()
            try:
                answer = await http.post(f"{base}/segment", files={"image": ("a.jpg", data)}, data={"classes": "cat"})
                status = str(answer.status_code)
                if answer.status_code == 503:
                    retry_after.add(answer.headers.get("retry-after", "none"))
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                latencies.append(time.monotonic() - began)

    began = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=300) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.monotonic() - began
    ok = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "clients": clients,
        "statuses": dict(sorted(statuses.items())),
        "retry_after_s": sorted(retry_after),
        "wall_s": round(wall, 1),
        "throughput_per_s": round(len(latencies) / wall, 2),
        "p50_s": round(float(np.percentile(ok, 50)), 2),
        "p99_s": round(float(np.percentile(ok, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--requests", type=int, default=4, help="Requests per client and level, at most.")
    parser.add_argument("--seconds", type=float, default=120, help="Time per level, at most.")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--max-queue", type=int, default=16, help="The server's --max-queue.")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    import httpx

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    base = f"http://{LOOPBACK}:{port}"
    command = [sys.executable, "-m", "faseg_cli", "serve", "--model", "tiny-random", "--host", LOOPBACK]
    command += ["--port", str(port), "--resolution", str(args.resolution), "--max-queue", str(args.max_queue)]
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    report = {"load_average": os.getloadavg(), "resolution": args.resolution, "levels": []}
    try:
        for _ in range(600):
            try:
                report["server"] = {k: v for k, v in httpx.get(f"{base}/health", timeout=2).json().items()}
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.5)
        report["idle_mib"] = memory(server.pid)
        for clients in args.clients:
            found = asyncio.run(level(base, clients, args.requests, args.seconds))
            found["server_mib"] = memory(server.pid)
            report["levels"].append(found)
            print(json.dumps(found), file=sys.stderr, flush=True)
        report["load_average_after"] = os.getloadavg()
        report["server"] = httpx.get(f"{base}/health", timeout=10).json()
    finally:
        server.terminate()
        server.wait(60)
    keep = ("max_batch", "max_queue", "batches", "largest_batch", "busy", "dropped")
    report["server"] = {k: report.get("server", {}).get(k) for k in keep}
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
