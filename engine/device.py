"""Device and precision choice: CUDA, MPS or CPU; bf16 where the hardware has it, exact fp32 on request."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(name: str = "auto") -> torch.device:
    """'auto' prefers CUDA, then Apple MPS, then CPU; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    choices = "use auto, cpu, cuda, cuda:N (N counting GPUs from 0) or mps"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}: {choices}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}: {choices}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available (is this a CPU-only torch build?)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ValueError(f"device {name!r} requested but this machine has {count} CUDA GPU{'s' if count != 1 else ''}"
                         f" (cuda:0{f'..cuda:{count - 1}' if count > 1 else ''})")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but Apple's Metal backend is not available")
    return dev


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 / AMX on x86, Apple silicon, ARMv8.6 BF16)."""
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16", " bf16"))


def pick_precision(device: torch.device, precision: str = "auto") -> torch.dtype:
    """Compute dtype: 'auto' = bf16 on CPUs with bf16 and on CUDA with bf16, fp16 on older GPUs/MPS, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical core count (hyper-threads share FPUs, so more threads than cores slows convolutions)."""
    cores, phys = set(), "0"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    cores.add((phys, value.strip()))
    except OSError:
        pass
    if cores:
        return len(cores)
    return max(1, (os.cpu_count() or 2) // 2)


def env_threads() -> int:
    """$CSTUDIO_THREADS as a thread count; 0 when unset or empty (callers then fall back further)."""
    value = os.environ.get("CSTUDIO_THREADS", "").strip()
    try:
        return max(0, int(value or "0"))
    except ValueError:
        raise ValueError(f"$CSTUDIO_THREADS must be a whole number of threads, got {value!r}") from None


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: `threads`, else $CSTUDIO_THREADS, else the physical cores."""
    n = threads or env_threads() or physical_cores()
    torch.set_num_threads(n)
    return n


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (GPUs run asynchronously; timings must wait for them)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextmanager
def exact_fp32(device: torch.device) -> Iterator[None]:
    """Inside, fp32 on CUDA is fp32: cuDNN runs fp32 convolutions in TF32 (a 10-bit mantissa) by
    default on Ampere and later GPUs, which moves a UNet's output by ~1e-3 and breaks parity with
    the reference code. Other devices are exact already. The previous flags are restored on exit.
    """
    if device.type != "cuda":
        yield
        return
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm
