"""Compute-device selection: CUDA when available, else CPU, with a CPU fallback on GPU failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import torch

log = logging.getLogger(__name__)
T = TypeVar("T")


def select_device(preference: str | None = None) -> torch.device:
    """``None``/"auto": CUDA if usable, else CPU. An explicit device that is not usable
    (e.g. "cuda" on a machine without a GPU) falls back to CPU with a warning."""
    if preference in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(preference)
    if dev.type == "cuda" and not torch.cuda.is_available():
        log.warning("CUDA requested but not available; using the CPU")
        return torch.device("cpu")
    return dev


def is_gpu_failure(exc: BaseException) -> bool:
    """True for errors that mean the GPU itself failed (out of memory, driver, launch)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and any(k in msg for k in ("CUDA", "cuDNN", "CUBLAS", "NCCL", "out of memory"))


def with_cpu_fallback(run: Callable[[torch.device], T], device: torch.device) -> tuple[T, torch.device]:
    """Call ``run(device)``; if it fails on the GPU, warn and call ``run(cpu)`` instead.

    Returns the result and the device that produced it.
    """
    if device.type == "cpu":
        return run(device), device
    try:
        return run(device), device
    except Exception as exc:
        if not is_gpu_failure(exc):
            raise
        log.warning("GPU failed (%s); falling back to the CPU", str(exc).splitlines()[0])
        torch.cuda.empty_cache()
        cpu = torch.device("cpu")
        return run(cpu), cpu


def describe(device: torch.device) -> str:
    """Short human-readable device name for status bars and logs."""
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"
