"""Planned notes (:mod:`.plan`) mixed into output windows: the real-time mixer's samples, computed note by note.

Each note's source audio is resampled to the output rate with its channel's rate chunk by chunk (the same
windowed-sinc kernels, positions and glides as :class:`~synth_core.engine.resampler.VoiceResampler`, in one
compiled loop over the whole note), given its gain and release envelopes, and added into the window; then the
master gain and the soft limiter, as :class:`~synth_core.engine.mixer.Mixer` applies them per chunk. A note whose
channel was never bent resamples the same way at every occurrence, so its resampled audio is reused.
"""

from __future__ import annotations

import numba
import numpy as np

from .mixer import soft_limit
from .plan import Plan, PlannedNote
from .resampler import PHASES, RATE_STEPS, KernelBank
from .voice import _DECAY, _DECAY_END


@numba.njit(cache=True, nogil=True)
def _resample(x, frames, r0s, r1s, tables, table_of, half, out):  # pragma: no cover - compiled
    """``out`` = the note ``x`` resampled span by span (``frames[s]`` outputs gliding from ``r0s[s]`` to
    ``r1s[s]``), starting from a reset resampler: ``half - 1`` zeros of history, position ``half - 1``."""
    taps = tables.shape[2]
    n = x.shape[0]
    pos = float(half - 1)
    o = 0
    for s in range(frames.shape[0]):
        f = frames[s]
        r0 = r0s[s]
        dr = r1s[s] - r0s[s]
        table = tables[table_of[s]]
        for k in range(f):
            p = pos + k * r0 + (k * dr) * (k + 1) / (2 * f)
            idx = int(p)
            phase = int((p - idx) * PHASES + 0.5)
            first = idx - 2 * (half - 1)  # index in x of the window's first tap (x[0] sits at half - 1)
            acc = np.float32(0.0)
            for t in range(taps):
                j = first + t
                if 0 <= j < n:
                    acc += x[j] * table[phase, t]
            out[o + k] = acc
        pos = pos + r0 * f + dr * (f + 1) / 2
        o += f


@numba.njit(cache=True, nogil=True)
def _add_enveloped(mix, at, audio, first, count, gain, rel_at, rel_len, rel_level):  # pragma: no cover - compiled
    """``mix[at:at+count] += audio[first:first+count] * envelope``; the envelope is ``gain`` until the first release
    (absolute sample ``rel_at[i]`` relative to the note's start), then ``gain * level * curve``."""
    r = -1
    for k in range(count):
        j = first + k  # sample of the note
        while r + 1 < rel_at.shape[0] and j >= rel_at[r + 1]:
            r += 1
        if r < 0:
            g = np.float32(gain)
        else:
            x = (j - rel_at[r]) / rel_len[r]
            if x >= 1.0:
                g = np.float32(0.0)
            else:
                c = (np.exp(-_DECAY * x) - _DECAY_END) / (1.0 - _DECAY_END)
                g = np.float32(rel_level[r] * gain) * np.float32(c)
        mix[at + k] += audio[j] * g


class NoteMixer:
    """Resamples a :class:`Plan`'s notes and mixes them into windows of output."""

    def __init__(self, plan: Plan, taps: int):
        self.plan = plan
        self.half = taps // 2
        self.tables = np.stack(KernelBank(taps).tables)

    def source_samples(self, note: PlannedNote) -> int:
        """Source samples the note's resampling reads (at least one)."""
        last = self.half - 1.0
        for f, r0, r1 in self.plan.spans(note):
            last += r0 * f + (r1 - r0) * (f + 1) / 2
        return max(1, int(last) + 2)

    def resample(self, note: PlannedNote, audio: np.ndarray) -> np.ndarray:
        """The note at the output rate: ``note.end - note.start`` samples, as its voice's resampler renders them."""
        return self._resample(audio, self.plan.spans(note))

    def resample_for(self, note: PlannedNote, audio: np.ndarray, length: int) -> np.ndarray:
        """The first ``length`` output samples of an unbent note (the same for every occurrence of its key)."""
        base = self.plan.base_rate
        return self._resample(audio, [(int(length), base, base)])

    def unbent(self, note: PlannedNote) -> bool:
        """The note's channel was never bent: it resamples at the base rate throughout."""
        return note.channel not in self.plan.rates

    def _resample(self, audio: np.ndarray, spans: list[tuple[int, float, float]]) -> np.ndarray:
        frames = np.array([s[0] for s in spans], np.int64)
        r0 = np.array([s[1] for s in spans], np.float64)
        r1 = np.array([s[2] for s in spans], np.float64)
        table_of = np.array([_table_index(max(a, b)) for a, b in zip(r0, r1, strict=True)], np.int64)
        out = np.empty(int(frames.sum()), np.float32)
        _resample(np.ascontiguousarray(audio, np.float32), frames, r0, r1, self.tables, table_of, self.half, out)
        return out

    def add(self, mix: np.ndarray, window_start: int, note: PlannedNote, out_audio: np.ndarray) -> None:
        """Add the part of the note inside ``mix`` (output samples ``window_start``..) with its envelope."""
        a = max(note.start, window_start)
        b = min(note.end, window_start + len(mix))
        if b <= a:
            return
        rel = note.releases
        rel_at = np.array([f - note.start for f, _, _ in rel], np.int64)
        rel_len = np.array([n for _, n, _ in rel], np.float64)
        rel_level = np.array([lv for _, _, lv in rel], np.float64)
        _add_enveloped(mix, a - window_start, out_audio, a - note.start, b - a, note.gain, rel_at, rel_len, rel_level)

    def finish(self, mix: np.ndarray, window_start: int) -> None:
        """Master gain (as it changed over time) and the soft limiter, in place."""
        master = self.plan.master
        end = window_start + len(mix)
        for i, (frame, gain) in enumerate(master):
            stop = master[i + 1][0] if i + 1 < len(master) else end
            a, b = max(frame, window_start), min(stop, end)
            if b > a and gain != 1.0:
                mix[a - window_start : b - window_start] *= np.float32(gain)
        soft_limit(mix, self.plan.limiter_threshold)


def _table_index(rate: float) -> int:
    for i, r in enumerate(RATE_STEPS):
        if rate <= r:
            return i
    return len(RATE_STEPS) - 1
