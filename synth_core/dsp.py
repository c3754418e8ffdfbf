"""Small signal helpers shared by the engine, training and tests."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def hz_to_midi(hz: float) -> float:
    return 69.0 + 12.0 * np.log2(hz / 440.0)


def peak_db(x: np.ndarray) -> float:
    """Peak level in dBFS (-inf for silence or no samples)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited polyphase resampling along the last axis (float32 out)."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(int(sr_out), int(sr_in)).limit_denominator(1000)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def estimate_f0(x: np.ndarray, sr: int, fmin: float = 25.0, fmax: float = 4200.0) -> float:
    """Fundamental frequency of a (mostly) periodic signal by normalised autocorrelation.

    Searches past the autocorrelation's main lobe and picks the first lag within 10% of the best
    one, which avoids the usual octave-down errors; refines it by parabolic interpolation
    (within ~10 cents up to 2 kHz at 16 kHz).
    Returns 0.0 for silence.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    if not np.any(x):
        return 0.0
    n = len(x)
    spec = np.fft.rfft(x * np.hanning(n), 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:n]
    ac /= ac[0]
    lo, hi = max(1, int(sr / fmax)), min(n - 2, int(sr / fmin))
    # skip the main lobe around lag 0 (up to the first negative value): noise ripple on it is no period
    negative = np.flatnonzero(ac[lo:hi] < 0)
    if len(negative):
        lo += int(negative[0])
    seg = ac[lo:hi]
    best = seg.max()
    peaks = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:]) & (seg[1:-1] > 0.9 * best)) + 1
    k = lo + (peaks[0] if len(peaks) else int(seg.argmax()))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    denom = a - 2 * b + c
    shift = float(np.clip(0.5 * (a - c) / denom, -1.0, 1.0)) if denom else 0.0
    return float(sr / (k + shift))


def band_energy_ratio(x: np.ndarray, sr: int, hz: float, cents: float = 50.0) -> float:
    """Fraction of the spectrum's energy within ``cents`` of ``hz`` and its harmonics (up to 8)."""
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    mask = np.zeros_like(spec, dtype=bool)
    resolution = 3.0 * sr / len(x)  # Hann main lobe: never narrower than a few bins
    for h in range(1, 9):
        f = hz * h
        width = max(f * (2 ** (cents / 1200) - 1), resolution)
        mask |= np.abs(freqs - f) < width
    total = spec.sum()
    return float(spec[mask].sum() / total) if total > 0 else 0.0


#: A note whose harmonics (within 50 cents) hold less of the analysed energy than this has no reliable pitch.
MIN_HARMONIC_RATIO = 0.5


def estimate_note_pitch(x: np.ndarray, sr: int, window: float = 0.5) -> tuple[int | None, float, float]:
    """(MIDI pitch or None, f0 in Hz, harmonic energy ratio) of a recorded note.

    Analyses ``window`` seconds from just after the loudest 50 ms (past the attack transient). The pitch is
    None when the note is silent or when less than :data:`MIN_HARMONIC_RATIO` of the window's energy lies on
    the estimated f0's harmonics (noise, drums, inharmonic bells: the estimate would be a guess).
    """
    x = np.asarray(x, dtype=np.float64)
    hop = max(1, int(0.05 * sr))
    n_hops = len(x) // hop
    if n_hops == 0 or not np.any(x):
        return None, 0.0, 0.0
    energy = np.square(x[: n_hops * hop]).reshape(n_hops, hop).sum(1)
    start = (int(energy.argmax()) + 1) * hop
    length = int(window * sr)
    start = max(0, min(start, len(x) - length))
    seg = x[start : start + length]
    f0 = estimate_f0(seg, sr)
    if f0 <= 0:
        return None, 0.0, 0.0
    ratio = band_energy_ratio(seg, sr, f0)
    pitch = int(round(hz_to_midi(f0)))
    if ratio < MIN_HARMONIC_RATIO or not 0 <= pitch <= 127:
        return None, f0, ratio
    return pitch, f0, ratio
