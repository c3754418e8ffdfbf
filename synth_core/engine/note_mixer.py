"""Planned notes (:mod:`.plan`) mixed into output windows: the real-time mixer's samples, computed note by note.

Each note's source audio is resampled to the output rate with its channel's rate chunk by chunk (the same
windowed-sinc kernels, positions and glides as :class:`~synth_core.engine.resampler.VoiceResampler`, for the whole
note at once: positions in numpy, windows gathered and weighted by torch), given its gain and release envelopes and
added into the window; then the master gain and the soft limiter, as :class:`~synth_core.engine.mixer.Mixer`
applies them per chunk. A note whose channel was never bent resamples the same way at every occurrence, so its
resampled audio is reused.
"""

from __future__ import annotations

import numpy as np
import torch

from .mixer import soft_limit
from .plan import Plan, PlannedNote
from .resampler import PHASES, RATE_STEPS, KernelBank
from .voice import release_curve

CHUNK = 1 << 16  # output samples resampled at once (bounds the gathered windows to a few MB)


def positions(spans: list[tuple[int, float, float]], half: int) -> np.ndarray:
    """Input positions (float64, ``x[0]`` at ``half - 1``) of each output sample of a reset
    :class:`~synth_core.engine.resampler.VoiceResampler` rendering ``spans`` (``frames, r0, r1``) one after the
    other: the same formulas as its ``process`` and ``advance``."""
    pos = float(half - 1)
    parts = []
    for f, r0, r1 in spans:
        k = np.arange(f, dtype=np.float64)
        parts.append(pos + k * r0 + (k * (r1 - r0)) * (k + 1) / (2 * f))
        pos = pos + r0 * f + (r1 - r0) * (f + 1) / 2
    return np.concatenate(parts) if parts else np.zeros(0)


def envelope(note: PlannedNote, first: int, count: int, curves: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The note's gain and release envelopes over its samples ``first``..``first + count`` (float32), as
    :class:`~synth_core.engine.mixer.Mixer` applies them; ``curves`` caches the release curves by length."""
    env = np.full(count, np.float32(note.gain), np.float32)
    rel = note.releases
    for i, (frame, length, level) in enumerate(rel):
        a = frame - note.start
        b = rel[i + 1][0] - note.start if i + 1 < len(rel) else first + count
        lo, hi = max(a, first), min(b, first + count)
        if hi > lo:
            curve = None if curves is None else curves.get(length)
            if curve is None:
                curve = release_curve(np.arange(length + 1, dtype=np.float64) / length).astype(np.float32)
                if curves is not None:
                    curves[length] = curve
            part = curve[min(lo - a, length) : min(hi - a, length)]
            seg = env[lo - first : hi - first]
            seg[: len(part)] = np.float32(level * note.gain) * part
            seg[len(part) :] = 0.0  # the release has ended
    return env


class NoteMixer:
    """Resamples a :class:`Plan`'s notes and mixes them into windows of output."""

    def __init__(self, plan: Plan, taps: int):
        self.plan = plan
        self.half = taps // 2
        self.taps = taps
        self._curves: dict[int, np.ndarray] = {}  # release curves by length
        self._kernels = torch.from_numpy(np.concatenate(KernelBank(taps).tables))  # [tables * (PHASES + 1), taps]

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
        half, taps = self.half, self.taps
        pos = positions(spans, half)
        out = np.empty(len(pos), np.float32)
        if not len(pos):
            return out
        idx = pos.astype(np.int64)  # x index of a window's first tap: idx - 2 (half - 1)
        phase = ((pos - idx) * PHASES + 0.5).astype(np.int64)
        table = np.array([_table_index(max(r0, r1)) for _, r0, r1 in spans], np.int64)
        if len(set(table.tolist())) == 1:
            rows = phase + int(table[0]) * (PHASES + 1)
        else:
            rows = phase + np.repeat(table, [f for f, _, _ in spans]) * (PHASES + 1)
        lead = 2 * (half - 1)
        xp = np.zeros(int(idx[-1]) + taps + 1, np.float32)
        n = min(len(audio), len(xp) - lead)
        xp[lead : lead + n] = audio[:n]
        windows = torch.from_numpy(xp).unfold(0, taps, 1)
        kernels = self._kernels
        res = torch.from_numpy(out)
        for a in range(0, len(pos), CHUNK):
            b = min(a + CHUNK, len(pos))
            w = windows[torch.from_numpy(idx[a:b])]
            k = kernels[torch.from_numpy(rows[a:b])]
            torch.sum(w * k, dim=1, out=res[a:b])
        return out

    def add(self, mix: np.ndarray, window_start: int, note: PlannedNote, out_audio: np.ndarray) -> None:
        """Add the part of the note inside ``mix`` (output samples ``window_start``..) with its envelope."""
        a = max(note.start, window_start)
        b = min(note.end, window_start + len(mix))
        if b <= a:
            return
        first = a - note.start
        part = out_audio[first : first + b - a]
        if note.releases or note.gain != 1.0:
            part = part * envelope(note, first, b - a, self._curves)
        mix[a - window_start : b - window_start] += part

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
