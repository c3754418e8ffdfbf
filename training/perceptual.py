"""What a listener hears of a generated note against its real one: ViSQOL, decay, level and the noise floor.

- ViSQOL v3 in audio mode (``visqol-python``: full reference, MOS-LQO from 1 to about 4.75; its model ships in the
  wheel): both signals upsampled to 48 kHz, the first ``VISQOL_SECONDS`` compared.
- Envelope correlation: Pearson correlation of the frame-energy envelopes in dB, held part and release, over the
  frames where the target sounds (within ``ENVELOPE_RANGE_DB`` of its loudest frame).
- Between-harmonics energy: the share of the held part's power that lies off the note's harmonics, in dB, minus
  the target's (0 dB: as clean as the target; SING's broadband floor shows as a positive figure).
- Band levels: each band's share of the held part's power (4-6 and 6-8 kHz at 16 kHz), in dB, minus the
  target's (< 0: duller than the target).
- The two anchors of the ViSQOL scale the issue compares with: the real note plus white noise at 20 dB SNR, and the
  real note low-passed at 3.5 kHz.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from synth_core.dsp import midi_to_hz

VISQOL_RATE = 48000  # ViSQOL's audio mode is trained on 48 kHz music
VISQOL_SECONDS = 3.5  # held part and the start of the release
ENVELOPE_FRAME = 256  # samples per envelope frame (16 ms at 16 kHz)
ENVELOPE_RANGE_DB = 50.0  # frames quieter than the target's loudest minus this are left out (noise, silence)
HELD = (0.1, 2.5)  # seconds of the held part for the harmonic analysis
HARMONIC_HALF_WIDTH_CENTS = 50.0  # a bin belongs to harmonic k when within this of k * f0
UPPER_BANDS = ((4000.0, 6000.0), (6000.0, 8000.0))  # Hz: where the bank's notes were found too weak (issue #25)


@lru_cache(maxsize=1)
def _visqol():
    try:
        from visqol import VisqolApi
    except ImportError as exc:  # an optional extra: say how to get it
        raise ImportError("ViSQOL needs visqol-python: pip install visqol-python (or the eval extra)") from exc
    api = VisqolApi()
    api.create(mode="audio")
    return api


def to_visqol_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` resampled to 48 kHz (polyphase), float64, cut to ``VISQOL_SECONDS``."""
    g = np.gcd(VISQOL_RATE, sample_rate)
    up = resample_poly(np.asarray(audio, np.float64), VISQOL_RATE // g, sample_rate // g)
    return up[: int(VISQOL_SECONDS * VISQOL_RATE)]


def visqol_mos(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
    """ViSQOL v3 MOS-LQO (audio mode) of ``degraded`` against ``reference``, both at ``sample_rate``."""
    ref, deg = to_visqol_rate(reference, sample_rate), to_visqol_rate(degraded, sample_rate)
    n = min(len(ref), len(deg))
    return float(_visqol().measure_from_arrays(ref[:n], deg[:n], VISQOL_RATE).moslqo)


def with_noise(audio: np.ndarray, snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    """The anchor ``audio`` + white noise ``snr_db`` below the note's power."""
    power = float(np.mean(np.square(audio, dtype=np.float64))) + 1e-20
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def low_passed(audio: np.ndarray, sample_rate: int, cutoff_hz: float = 3500.0) -> np.ndarray:
    """The anchor ``audio`` low-passed at ``cutoff_hz`` (8th-order Butterworth, zero phase)."""
    sos = butter(8, cutoff_hz, fs=sample_rate, output="sos")
    return sosfiltfilt(sos, audio).astype(np.float32)


def envelope_db(audio: np.ndarray, frame: int = ENVELOPE_FRAME) -> np.ndarray:
    """Frame energies in dB (non-overlapping frames of ``frame`` samples)."""
    n = len(audio) // frame
    frames = np.asarray(audio[: n * frame], np.float64).reshape(n, frame)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def envelope_correlation(generated: np.ndarray, target: np.ndarray) -> float | None:
    """Correlation of the dB envelopes over the frames where the target sounds; None for a silent target."""
    g, t = envelope_db(generated), envelope_db(target)
    n = min(len(g), len(t))
    g, t = g[:n], t[:n]
    sounding = t > t.max() - ENVELOPE_RANGE_DB
    if sounding.sum() < 3 or np.std(t[sounding]) < 1e-6:
        return None
    if np.std(g[sounding]) < 1e-6:
        return 0.0
    return float(np.corrcoef(g[sounding], t[sounding])[0, 1])


def off_harmonic_db(audio: np.ndarray, pitch: int, sample_rate: int) -> float:
    """Share of the held part's power that lies between the harmonics of ``pitch``, in dB."""
    power, freqs = held_power(audio, sample_rate)
    f0 = midi_to_hz(pitch)
    k = np.maximum(np.round(freqs / f0), 1.0)
    on = np.abs(1200 * np.log2(np.maximum(freqs, 1e-6) / (k * f0))) < HARMONIC_HALF_WIDTH_CENTS
    total = power[freqs > 0.5 * f0].sum() + 1e-30
    return float(10 * np.log10(power[~on & (freqs > 0.5 * f0)].sum() / total + 1e-12))


def between_harmonics_db(generated: np.ndarray, target: np.ndarray, pitch: int, sample_rate: int) -> float:
    """The generated note's off-harmonic share minus the target's, in dB (> 0: a noise floor the target lacks)."""
    return off_harmonic_db(generated, pitch, sample_rate) - off_harmonic_db(target, pitch, sample_rate)


def held_power(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The power spectrum of the held part (:data:`HELD`, Hann window) and its frequencies."""
    lo, hi = (int(s * sample_rate) for s in HELD)
    x = np.asarray(audio[lo:hi], np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return power, np.fft.rfftfreq(len(x), 1.0 / sample_rate)


def band_shares_db(audio: np.ndarray, sample_rate: int, bands) -> list[float]:
    """Each ``(lo_hz, hi_hz)`` band's share of the held part's power, in dB (one FFT for all)."""
    power, freqs = held_power(audio, sample_rate)
    total = power.sum() + 1e-30
    return [float(10 * np.log10(power[(freqs >= lo) & (freqs < hi)].sum() / total + 1e-12)) for lo, hi in bands]


def upper_bands_db(generated: np.ndarray, target: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Each of :data:`UPPER_BANDS`' share in the generated note minus the target's, in dB (< 0: duller)."""
    bands = [(lo, hi) for lo, hi in UPPER_BANDS if hi <= sample_rate / 2]
    gen, tgt = band_shares_db(generated, sample_rate, bands), band_shares_db(target, sample_rate, bands)
    return {f"{lo / 1000:g}-{hi / 1000:g} kHz": g - t for (lo, hi), g, t in zip(bands, gen, tgt, strict=True)}


def pitch_band(pitch: int) -> str:
    """A coarse band name for per-band tables."""
    for lo, hi in ((36, 47), (48, 59), (60, 71), (72, 84)):
        if lo <= pitch <= hi:
            return f"MIDI {lo}-{hi}"
    return "other"
