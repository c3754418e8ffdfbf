"""A short measurement at start that picks how a real-time SING engine on the CPU runs (no CPU flag decides it).

Two choices, each taken only when the measurement says it is clearly better (:data:`MARGIN`, :data:`THREAD_MARGIN`):

- the precision of new notes' warm-up: bf16 only where an 8-note chord's warm-up (:meth:`SingStreamer._warm_batch`,
  what a cold chord waits for) is clearly faster than in fp32. On CPUs without oneDNN bf16 kernels neither is timed
  (bf16 runs through slow reference kernels there, 10-20x fp32); where it has them it can still lose: on
  an AVX-512 BF16 Xeon 32-note cold chords took p50/p95 32/54 ms in bf16 against 24/30 ms in fp32.
- the torch thread count: 1 or torch's default less one core for the audio callback (:data:`AUDIO_CORES`), timed on
  a 16-voice worker step; a tie goes to 1 thread. On two cores that is 1 without a measurement: there a 16-voice
  step alone is about 25 % faster on 2 threads (5.6 -> 4.2 ms on the 2-core AMD EPYC dev machine), but with the
  audio callback running a 32-voice soak was slower (cold note-on p50 11-12 ms instead of 8.5 ms, bench/RESULTS.md).

Each timing is the median of a few calls after one untimed call (the first call of a shape creates its kernels);
the whole probe takes tens of ms on two CPU cores. GPU engines are not probed (they keep torch's default threads and
warm up in the model's precision).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..device import torch_default_threads
from .model import SING
from .streaming import SingStreamer, StreamWeights

MARGIN = 0.15  # bf16 must be at least this much faster (relative) than fp32 to be chosen
# more threads must be at least this much faster than 1: the probe runs without the audio callback, which competes
# with them for the cores (on the 2-core dev machine a 32-voice soak was slower with 2 threads, bench/RESULTS.md)
THREAD_MARGIN = 0.25
AUDIO_CORES = 1  # cores left to the audio callback when more torch threads are tried (0: try torch's default)
CHORD = 8  # notes in the timed warm-up
VOICES = 16  # voices in the timed worker step
REPS = 3  # timed calls per measurement (after one untimed call)
GIVE_UP = 2.0  # a first bf16 / many-thread call this many times slower than fp32 / 1 thread is not timed further


@dataclass(frozen=True)
class SpeedChoice:
    """What the probe chose and what it measured (median ms per call)."""

    warmup_dtype: torch.dtype | None  # None: warm up in the model's precision
    threads: int  # torch threads for the engine
    warmup_ms: dict[str, float] = field(default_factory=dict)  # 8-note warm-up "fp32", "bf16" (where bf16 runs)
    step_ms: dict[int, float] = field(default_factory=dict)  # 16-voice step per thread count (where compared)
    probe_ms: float = 0.0  # how long the whole probe took

    @property
    def warmup_name(self) -> str:
        return "bf16" if self.warmup_dtype == torch.bfloat16 else "fp32"

    def summary(self) -> str:
        """One line for logs, e.g. "warm-up fp32 (fp32 2.9 ms, bf16 4.1 ms), 1 torch thread (1: 3.0 ms, 2: 3.4 ms)"."""
        warm = ", ".join(f"{k} {v:.1f} ms" for k, v in self.warmup_ms.items())
        text = f"warm-up {self.warmup_name}" + (f" ({warm})" if warm else " (not timed)")
        text += f", {self.threads} torch thread{'s' if self.threads != 1 else ''}"
        if self.step_ms:
            text += " (" + ", ".join(f"{k}: {v:.1f} ms" for k, v in self.step_ms.items()) + ")"
        else:
            text += " (not timed)"
        return text


def clearly_faster(candidate_ms: float | None, base_ms: float, margin: float = MARGIN) -> bool:
    """True when ``candidate_ms`` is at least ``margin`` (relative) below ``base_ms``; a tie keeps the base."""
    return candidate_ms is not None and candidate_ms <= (1.0 - margin) * base_ms


def choose_warmup(fp32_ms: float, bf16_ms: float | None, margin: float = MARGIN) -> torch.dtype | None:
    """bf16 only when it is clearly faster than fp32 (``bf16_ms`` None: bf16 did not run)."""
    return torch.bfloat16 if clearly_faster(bf16_ms, fp32_ms, margin) else None


def choose_threads(step_ms: dict[int, float], margin: float = THREAD_MARGIN) -> int:
    """The thread count of the fastest step; more than 1 thread only when clearly faster than 1."""
    if 1 not in step_ms:
        return 1
    best = min(step_ms, key=step_ms.get)
    return best if clearly_faster(step_ms[best], step_ms[1], margin) else 1


def thread_candidate() -> int:
    """The thread count tried against 1: torch's default less :data:`AUDIO_CORES` (1 or less: nothing to try)."""
    return torch_default_threads() - AUDIO_CORES


def bf16_runs(device: torch.device) -> bool:
    """Whether a bf16 warm-up is worth timing on ``device``: a CPU with oneDNN bf16 kernels (elsewhere bf16 runs
    through slow reference kernels). Whether it is *faster* there is for the measurement to say."""
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _time_ms(label: str, fn: Callable[[], object], reps: int = REPS, give_up_ms: float | None = None) -> float:
    """Median ms of ``reps`` calls of ``fn`` after one untimed call (or that first call's time, if it is over
    ``give_up_ms``). ``label`` names the measurement (tests replace this function to inject times)."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1e3
    if give_up_ms is not None and first > give_up_ms:
        return first
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@torch.no_grad()
def probe_speed(
    model: SING,
    dtype: torch.dtype = torch.float32,
    warmup: bool = True,
    threads: bool = True,
    chord: int = CHORD,
    voices: int = VOICES,
) -> SpeedChoice:
    """Measure and choose the warm-up precision (``warmup``) and torch thread count (``threads``) for a real-time
    engine running ``model`` (in ``dtype``) on the CPU. Leaves torch's thread count as it found it; not cached
    (see :func:`cpu_speed`). A model that is not on the CPU is not probed: model precision, torch's threads."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        return SpeedChoice(None, torch.get_num_threads())
    more = thread_candidate()
    threads = threads and more > 1
    warmup = warmup and bf16_runs(device)  # (where bf16 cannot run there is nothing to choose: fp32, untimed)
    if not (threads or warmup):
        return SpeedChoice(None, 1)
    start = time.perf_counter()
    model.eval()
    s = SingStreamer(model, max_voices=voices, dtype=dtype)
    c = s.config
    before = torch.get_num_threads()
    try:
        step_ms: dict[int, float] = {}
        if threads:
            s.t.fill_(c.context + s.lead)  # voices past their warm-up: a step is one LSTM step and one frame each
            slots = list(range(voices))
            torch.set_num_threads(1)
            step_ms[1] = _time_ms("step 1", lambda: s.step(slots))
            torch.set_num_threads(more)
            step_ms[more] = _time_ms(f"step {more}", lambda: s.step(slots), give_up_ms=GIVE_UP * step_ms[1])
        chosen_threads = choose_threads(step_ms)
        torch.set_num_threads(chosen_threads)
        warmup_ms: dict[str, float] = {}
        chosen_dtype = None
        if warmup:
            static = torch.randn(chord, c.input_dim - c.time_dim, generator=torch.Generator().manual_seed(0)) * 0.5
            limit = torch.full((chord,), 1 << 30, dtype=torch.long)
            warmup_ms["fp32"] = _time_ms("warmup fp32", lambda: s._warm_batch(static, limit))
            s.warmup = StreamWeights(model, torch.bfloat16, cells=False)
            out: list[torch.Tensor] = []
            warmup_ms["bf16"] = _time_ms(
                "warmup bf16",
                lambda: out.append(s._warm_batch(static, limit).first),
                give_up_ms=GIVE_UP * warmup_ms["fp32"],
            )
            chosen_dtype = choose_warmup(warmup_ms["fp32"], warmup_ms["bf16"])
            if chosen_dtype is not None and not (out and bool(torch.isfinite(out[-1]).all())):
                chosen_dtype = None  # bf16 ran but gave no usable first hop
    finally:
        torch.set_num_threads(before)
    probe_ms = (time.perf_counter() - start) * 1e3
    return SpeedChoice(chosen_dtype, chosen_threads, warmup_ms, step_ms, probe_ms)


_cache: dict[tuple, SpeedChoice] = {}


def cpu_speed(model: SING, dtype: torch.dtype = torch.float32, warmup: bool = True) -> SpeedChoice:
    """:func:`probe_speed`, measured once per model size, precision and thread default in this process (a second
    model of the same size, e.g. a fine-tune loaded while the app plays, reuses the first measurement)."""
    device = next(model.parameters()).device
    key = (json.dumps(model.config.to_dict(), sort_keys=True), str(device), str(dtype), warmup, thread_candidate())
    if key not in _cache:
        _cache[key] = probe_speed(model, dtype, warmup=warmup)
    return _cache[key]
