"""Stateful variable-rate windowed-sinc resampler (one per voice), for pitch bend and
model-rate -> device-rate conversion in one step.

Each output sample is a (24-tap by default) Kaiser-windowed sinc interpolation of the input at a
fractional position (1024 tabulated phases). The position advances by ``rate`` input
samples per output sample; the rate may glide linearly across a block (smooth bends).
When the rate exceeds 1 (strong upward bends) a kernel with a lower cutoff is chosen
so the result stays band-limited.

:class:`ResamplerBank` renders every voice that shares a rate in one vectorised pass (a handful of numpy
calls for the whole chord instead of a dozen per voice); its voices keep their samples in rows of one
preallocated buffer and it renders into preallocated scratch, so the audio callback allocates nothing large.
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

    def __init__(self, bank: KernelBank, capacity: int, buf: np.ndarray | None = None):
        self.bank = bank
        self.half = bank.taps // 2
        self.buf = np.zeros(capacity + bank.taps, dtype=np.float32) if buf is None else buf
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
        self.advance(frames, r0, r1)

    def advance(self, frames: int, r0: float, r1: float) -> None:
        """Move past ``frames`` rendered outputs and drop the input no longer needed."""
        self.pos = self.pos + r0 * frames + (r1 - r0) * (frames + 1) / 2
        drop = int(self.pos) - (self.half - 1)
        if drop > 0:
            keep = self.avail - drop
            self.buf[:keep] = self.buf[drop : self.avail]
            self.avail = keep
            self.pos -= drop


class ResamplerBank:
    """``n`` voice resamplers whose buffers are rows of one array, rendered together by :meth:`process_many`."""

    def __init__(self, bank: KernelBank, n: int, capacity: int, max_frames: int):
        self.bank = bank
        self.taps = bank.taps
        self.width = capacity + bank.taps
        self.bufs = np.zeros((n, self.width), dtype=np.float32)
        self.voices = [VoiceResampler(bank, capacity, self.bufs[i]) for i in range(n)]
        self.max_frames = int(max_frames)
        size = n * self.max_frames
        self._tap = np.arange(bank.taps, dtype=np.int64)
        self._k = np.arange(self.max_frames, dtype=np.float64)
        self._k1 = self._k + 1.0
        self._lin = np.empty(self.max_frames, np.float64)
        self._quad = np.empty(self.max_frames, np.float64)
        self._pos = np.empty(size, np.float64)
        self._frac = np.empty(size, np.float64)
        self._idx = np.empty(size, np.int64)
        self._phase = np.empty(size, np.int64)
        self._flat = np.empty(size * bank.taps, np.int64)
        self._win = np.empty(size * bank.taps, np.float32)
        self._ker = np.empty(size * bank.taps, np.float32)
        self._starts = np.empty(n, np.float64)
        self._rows = np.empty(n, np.int64)

    def process_many(self, rows: list[int], out: np.ndarray, r0: float, r1: float) -> None:
        """Render ``out[i]`` (``out`` is [len(rows), F], F <= max_frames) from voice ``rows[i]``, every voice at the
        rate gliding from r0 to r1: the same samples as each voice's :meth:`VoiceResampler.process`."""
        n_v, frames = len(rows), out.shape[1]
        taps, half = self.taps, self.taps // 2
        shape, shape3 = (n_v, frames), (n_v, frames, taps)
        k = self._k[:frames]
        lin, quad = self._lin[:frames], self._quad[:frames]
        np.multiply(k, r0, out=lin)
        np.multiply(k, r1 - r0, out=quad)  # the same operations, in the same order, as VoiceResampler.process
        quad *= self._k1[:frames]
        quad /= 2 * frames
        starts, rws = self._starts[:n_v], self._rows[:n_v]
        for i, row in enumerate(rows):
            starts[i] = self.voices[row].pos
            rws[i] = row
        pos = self._pos[: n_v * frames].reshape(shape)
        np.add(starts[:, None], lin[None, :], out=pos)
        pos += quad
        idx = self._idx[: n_v * frames].reshape(shape)
        np.copyto(idx, pos, casting="unsafe")  # floor: positions are >= 0
        frac = self._frac[: n_v * frames].reshape(shape)
        np.subtract(pos, idx, out=frac)
        frac *= PHASES
        frac += 0.5
        phase = self._phase[: n_v * frames].reshape(shape)
        np.copyto(phase, frac, casting="unsafe")
        # flat index of each window's taps in the shared buffer: row * width + idx - (half - 1) + tap
        idx += (rws * self.width - (half - 1))[:, None]
        flat = self._flat[: n_v * frames * taps].reshape(shape3)
        np.add(idx[:, :, None], self._tap, out=flat)
        win = self._win[: n_v * frames * taps].reshape(shape3)
        np.take(self.bufs.reshape(-1), flat, out=win)
        ker = self._ker[: n_v * frames * taps].reshape(shape3)
        np.take(self.bank.for_rate(max(r0, r1)), phase, axis=0, out=ker)
        np.einsum("vft,vft->vf", win, ker, out=out)
        for row in rows:
            self.voices[row].advance(frames, r0, r1)
