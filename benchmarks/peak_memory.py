"""Peak resident memory of `faseg segment` and `faseg serve` on one large image (default 40 MP).

Each case runs in its own process with a tiny random-weight model (FA-Seg's
``tiny-random``, or NACLIP's ``tiny-clip`` with ``--method naclip``): the command's peak
is its ``ru_maxrss``; the server's peak is its ``VmHWM`` after one request, and
``VmRSS`` then tells what it kept. The image is a smooth gradient (a small PNG whose
pixels still all have to be decoded). A baseline
(the same on a 0.3 MP image) gives what the model and the libraries take anyway.

    python benchmarks/peak_memory.py --output /tmp/peak.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def gradient(path: Path, width: int, height: int) -> Path:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack(np.broadcast_arrays(x + 0 * y, y + 0 * x, (x + y) / 2), -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


MODELS = {"fa-seg": "tiny-random", "naclip": "tiny-clip"}


def command_peak(method: str, image: Path, overlay: bool, out: Path) -> float:
    """Peak RSS (MiB) of one `faseg segment` process."""
    command = [sys.executable, "-m", "faseg_cli", "segment", str(image), "-c", "cat, dog"]
    command += ["--method", method, "--model", MODELS[method], "-o", str(out)] + ["--overlay"] * overlay
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)}: exit {process.returncode}")
    return usage.ru_maxrss / 1024


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def server_peak(method: str, image: Path, overlay: bool) -> dict:
    """Peak and after-request RSS (MiB) of `faseg serve` answering one request for ``image``."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "faseg_cli", "serve", "--method", method, "--model", MODELS[method]]
    command += ["--port", str(port)]
    # no deadline: NACLIP takes minutes for 40 MP on a small CPU, and this measures memory, not latency
    server = subprocess.Popen([*command, "--max-upload-mb", "500", "--deadline", "0"], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        idle = status_mib(server.pid, "VmRSS")
        data = {"classes": "cat, dog", "overlay": "1" if overlay else ""}
        answer = httpx.post(
            f"{base}/segment", files={"image": (image.name, image.read_bytes())}, data=data, timeout=900
        )
        answer.raise_for_status()
        time.sleep(1)
        return {
            "idle": round(idle),
            "peak": round(status_mib(server.pid, "VmHWM")),
            "after": round(status_mib(server.pid, "VmRSS")),
        }
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=39.9)
    parser.add_argument("--method", choices=sorted(MODELS), default="fa-seg")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("FASEG_CACHE_DIR", str(Path(folder) / "cache"))
        width = round((args.megapixels * 1e6 * 3 / 2) ** 0.5)
        big = gradient(Path(folder) / "big.png", width, round(args.megapixels * 1e6 / width))
        small = gradient(Path(folder) / "small.png", 640, 480)
        with Image.open(big) as opened:
            pixels = opened.width * opened.height
        report = {"method": args.method, "megapixels": round(pixels / 1e6, 2), "load": os.getloadavg()}
        for name, image in (("0.3 MP", small), ("large", big)):
            for overlay in (False, True):
                key = f"{name}{' + overlay' if overlay else ''}"
                report[f"segment {key}"] = round(command_peak(args.method, image, overlay, Path(folder) / "out"))
                report[f"serve {key}"] = server_peak(args.method, image, overlay)
                print(key, report[f"segment {key}"], report[f"serve {key}"], file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
