"""Stateful variable-rate windowed-sinc resampler (one per voice), for pitch bend and
model-rate -> device-rate conversion in one step.

Each output sample is a (24-tap by default) Kaiser-windowed sinc interpolation of the input at a
fractional position (1024 tabulated phases). The position advances by ``rate`` input
samples per output sample; the rate may glide linearly across a block (smooth bends).
When the rate exceeds 1 (strong upward bends) a kernel with a lower cutoff is chosen
so the result stays band-limited.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PHASES = 1024
BASE_CUTOFF = 0.9  # fraction of the input Nyquist kept
RATE_STEPS = (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0)


def sinc_table(taps: int, cutoff: float, phases: int = PHASES, beta: float = 7.0) -> np.ndarray:
    """Kernel rows [phases + 1, taps] for fractional offsets 0..1; each row sums to 1."""
    half = taps // 2
    k = np.arange(-(half - 1), half + 1, dtype=np.float64)  # tap offsets relative to floor(pos)
    frac = np.arange(phases + 1, dtype=np.float64)[:, None] / phases
    t = k[None, :] - frac
    u = np.clip(t / half, -1.0, 1.0)
    h = cutoff * np.sinc(cutoff * t) * np.i0(beta * np.sqrt(1.0 - u * u)) / np.i0(beta)
    h /= h.sum(1, keepdims=True)
    return h.astype(np.float32)


class KernelBank:
    """Sinc tables for a few cutoffs, picked by the current rate."""

    def __init__(self, taps: int = 16):
        self.taps = taps
        self.tables = [sinc_table(taps, BASE_CUTOFF / r) for r in RATE_STEPS]

    def for_rate(self, rate: float) -> np.ndarray:
        for r, table in zip(RATE_STEPS, self.tables, strict=True):
            if rate <= r:
                return table
        return self.tables[-1]


class VoiceResampler:
    """Input samples are pushed in; ``process`` renders output at a (gliding) rate.

    ``pos`` is the fractional index in ``buf`` of the next output sample. The buffer keeps
    ``taps/2 - 1`` samples of history left of ``floor(pos)`` (zeros at the note start).
    """

    def __init__(self, bank: KernelBank, capacity: int):
        self.bank = bank
        self.half = bank.taps // 2
        self.buf = np.zeros(capacity + bank.taps, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self.buf[: self.half - 1] = 0.0
        self.avail = self.half - 1
        self.pos = float(self.half - 1)

    def space(self) -> int:
        return len(self.buf) - self.avail

    def needed(self, frames: int, r0: float, r1: float) -> int:
        """Input samples that must be buffered (``avail``) to render ``frames`` outputs."""
        last = self.pos + r0 * (frames - 1) + (r1 - r0) * (frames - 1) * frames / (2 * frames)
        return int(last) + self.half + 1

    def process(self, out: np.ndarray, r0: float, r1: float) -> None:
        """Fill ``out`` (len F); the rate glides from r0 to r1 across the block."""
        frames = len(out)
        k = np.arange(frames, dtype=np.float64)
        pos = self.pos + r0 * k + (r1 - r0) * k * (k + 1) / (2 * frames)
        idx = pos.astype(np.int64)
        phase = ((pos - idx) * PHASES + 0.5).astype(np.int64)
        table = self.bank.for_rate(max(r0, r1))
        windows = sliding_window_view(self.buf[: self.avail], self.bank.taps)[idx - (self.half - 1)]
        np.einsum("ft,ft->f", windows, table[phase], out=out)
        self.pos = self.pos + r0 * frames + (r1 - r0) * (frames + 1) / 2
        drop = int(self.pos) - (self.half - 1)
        if drop > 0:
            keep = self.avail - drop
            self.buf[:keep] = self.buf[drop : self.avail]
            self.avail = keep
            self.pos -= drop
