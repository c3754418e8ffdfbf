"""Pitch-shift baseline: play the nearest training-split pitch of the same instrument and velocity, resampled.

Resampling by 2^(-semitones/12) shifts the pitch (and shortens/lengthens the note); the result is trimmed or
zero-padded back to the note length (no time-stretch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

import numpy as np
from scipy import signal


def pitch_shift(audio: np.ndarray, semitones: float, n_samples: int | None = None) -> np.ndarray:
    """Shift ``audio`` up by ``semitones`` by resampling; trimmed/padded to ``n_samples`` (default: same length)."""
    n = len(audio) if n_samples is None else n_samples
    x = np.asarray(audio, dtype=np.float32)
    if semitones:
        ratio = Fraction(2.0 ** (-semitones / 12.0)).limit_denominator(1000)  # output length / input length
        x = signal.resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(x))] = x[:n]
    return out


class PitchShiftBaseline:
    """Baseline notes from a set of training notes ``(instrument, pitch, velocity)``, loaded on demand."""

    def __init__(self, train_notes: Iterable[tuple[object, int, int]], load: Callable[[object, int, int], np.ndarray]):
        self._pitches: dict[tuple[object, int], list[int]] = {}
        for instrument, pitch, velocity in train_notes:
            self._pitches.setdefault((instrument, int(velocity)), []).append(int(pitch))
        for v in self._pitches.values():
            v.sort()
        self._load = load

    def source_pitch(self, instrument: object, pitch: int, velocity: int) -> int:
        """Nearest training pitch of that instrument and velocity (the lower one on ties)."""
        pitches = self._pitches.get((instrument, int(velocity)))
        if not pitches:
            raise KeyError(f"no training notes for instrument {instrument!r} at velocity {velocity}")
        return min(pitches, key=lambda p: (abs(p - pitch), p))

    def __call__(self, instrument: object, pitch: int, velocity: int, n_samples: int | None = None) -> np.ndarray:
        src = self.source_pitch(instrument, pitch, velocity)
        audio = self._load(instrument, src, int(velocity))
        return pitch_shift(audio, pitch - src, n_samples)
