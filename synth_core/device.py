"""Compute-device selection (CUDA when available, else CPU) and recognising GPU failures for CPU fallback."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


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


_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, before anyone sets it (this module is imported early)


def torch_default_threads() -> int:
    """torch's thread count when this module was first imported: its default unless the process set one before."""
    return _DEFAULT_THREADS


def use_realtime_threads(device: torch.device, threads: int = 1) -> None:
    """A real-time engine on the CPU runs torch on ``threads`` threads: the count the start-up probe measured
    faster (:func:`synth_core.sing.speed_probe.cpu_speed`, a tie goes to 1), else 1. Its hop-sized matmuls gain
    little from more, and the extra threads compete with the audio callback: on the 2-core dev machine torch's
    default (2 threads) gave a 32-voice soak a cold note-on p50 of 11-12 ms instead of 8.5 ms and a worker load of
    47-50 % instead of 36-38 % (bench/RESULTS.md). A GPU engine keeps torch's default."""
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(threads)))


def describe(device: torch.device) -> str:
    """Short human-readable device name for status bars and logs."""
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"
