"""Choose the compute device and precision (CUDA with fp16 when present, else MPS, else CPU fp32).

Also gives freed CPU memory back to the system between the engine's stages.
"""

from __future__ import annotations

import torch

from faseg_cli.errors import UsageError

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def select_device(spec: str = "auto") -> torch.device:
    """Parse ``auto|cpu|cuda|cuda:N|mps`` and check that the device exists."""
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec}: expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {spec}: MPS is not available")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {spec}: expected auto, cpu, cuda, cuda:N or mps")
    return device


def select_dtype(spec: str, device: torch.device) -> torch.dtype:
    """Parse ``auto|fp16|bf16|fp32``; auto is fp16 on CUDA and MPS, fp32 on CPU."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    if spec not in DTYPES:
        raise UsageError(f"--dtype {spec}: expected auto, fp16, bf16 or fp32")
    if spec == "fp16" and device.type == "cpu":
        raise UsageError("--dtype fp16 is not supported on the CPU: use bf16 or fp32")
    return DTYPES[spec]


def describe(device: torch.device, dtype: torch.dtype) -> str:
    """One human line naming the device and precision."""
    name = {v: k for k, v in DTYPES.items()}[dtype]
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device}), {name}"
    return f"{device.type}, {name}"


def give_back_freed_memory() -> None:
    """Return the C heap's free memory to the system (glibc's ``malloc_trim``; nothing elsewhere).

    On the CPU the C allocator keeps freed tensors under its mmap threshold (which the first
    large free raises to 32 MB) in its heap, where they would count against the next stage's
    peak: the engine calls this between its large stages.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()
