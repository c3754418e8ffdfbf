"""Helpers shared by the bench scripts: anchors, machine info, device sync, timing, model sizes.

Run the scripts from the repository root with ``PYTHONPATH=.`` so ``bench.common`` imports.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import torch

from synth_core.device import describe
from synth_core.sing import SING, SINGConfig, load_checkpoint

#: Numbers the measurements are compared with (REFERENCE.md and the SING paper).
ANCHORS = {
    "real_time": 1.0,  # audio seconds per compute second that keeps up with playback
    "sing_paper_audio_s_per_s": 512.0,  # SING paper: ~512 s of audio generated per second on a GPU
    "hop_budget_ms": 256 / 16000 * 1e3,  # one 256-sample hop lasts 16 ms at 16 kHz: real-time budget
    "note_on_target_ms": 10.0,  # note-on to sound under ~10 ms feels immediate (> 20 ms is noticed)
}

#: Model sizes: the paper's reference (63.7M parameters) and the project's default small size.
SIZES: dict[str, dict] = {
    "reference": {},
    "small": {"lstm_hidden": 512, "decoder_channels": 1024},
    # assets/sing_default.pt (checked by its test): its sizes and its decoder, a harmonic bank without atoms
    "shipped": {"lstm_hidden": 256, "decoder_channels": 512, "harmonics": 64, "noise_bands": 32, "atoms": False},
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def anchor(name: str) -> dict[str, float]:
    """``{"anchor_<name>": value}``, to put beside the number it anchors."""
    return {f"anchor_{name}": ANCHORS[name]}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_steal_s() -> float | None:
    """CPU time the hypervisor took from this virtual machine since boot, all CPUs (``/proc/stat``'s steal);
    None where the system does not say. A burst of it stalls every thread at once, jackd's too: a run's
    dropouts read beside the steal during it tell the machine's from ours."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return None


@contextlib.contextmanager
def busy_core(on: bool = True) -> Iterator[None]:
    """Keep one core busy in another process (a pure-Python loop) while the block runs, if ``on``."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def machine_info(device: torch.device) -> dict:
    """Device, CPU model, threads, torch version and the load average (the dev machine is shared)."""
    info = {
        "device": describe(device),
        "cpu_model": cpu_model(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    return info


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock timings are honest (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` (after ``warmup`` untimed calls), synchronising the device around each."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for bf16/fp16 on the device's type; nothing for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def build_models(
    device: torch.device, sizes: list[str], checkpoint: str | None = None, seed: int = 0
) -> Iterator[tuple[str, SING]]:
    """``(name, model)`` for a checkpoint, or random-weight models of the named sizes (speed does not
    depend on the weights). Models are built one at a time so only one is in memory."""
    if checkpoint:
        yield "checkpoint", load_checkpoint(checkpoint, device, with_training=False).model
        return
    for name in sizes:
        if name not in SIZES:
            raise SystemExit(f"unknown size {name!r}; choose from {sorted(SIZES)}")
        torch.manual_seed(seed)
        yield name, SING(SINGConfig(n_instruments=16, **SIZES[name])).to(device)
