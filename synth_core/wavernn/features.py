"""Frame features of a WaveRNN voice (10 ms hop at 16 kHz), float32 [frames, 23].

Columns (see ``FEATURE_NAMES``):

- 0 ``log_f0``: (midi(f0) - 60) / 24 from a vectorised YIN (FFT difference function, cumulative mean
  normalisation, parabolic interpolation, 60-800 Hz); continuous: unvoiced frames are interpolated from
  their voiced neighbours, the ends held; an all-unvoiced clip is midi 60 (0.0).
- 1 ``voicing`` in [0, 1]: from the YIN aperiodicity (and a level gate), median-smoothed.
- 2 ``loudness``: (dB + 50) / 25 with dB = 20 log10(RMS + 1e-5) over the frame (a full-scale sine is -3 dB).
- 3..22 ``mcep1..mcep20``: DCT-II (ortho) of the 40-band natural-log mel power spectrum, c0 dropped, / 10.
  The power spectrum is first smoothed over one f0 in frequency (pitch-adaptive, as in CheapTrick) so the
  envelope does not depend on where the harmonics fall.

``fundamental_phase`` aligns the model's pitch clock to a recording for training.
``control_frames`` builds the same features from what a keyboard drives; ``extract_presets`` finds a few
typical envelopes (k-means over steady voiced frames) to ship with a voice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import fft as sfft
from scipy.fft import dct
from scipy.ndimage import median_filter

FEATURE_NAMES = ["log_f0", "voicing", "loudness"] + [f"mcep{i}" for i in range(1, 21)]
N_FEATURES = len(FEATURE_NAMES)
N_MCEP = 20
N_MELS = 40
F0_MIN, F0_MAX = 60.0, 800.0
YIN_WINDOW = 512  # integration window of the YIN difference function (32 ms at 16 kHz)
YIN_THRESHOLD = 0.15
N_FFT = 1024
MCEP_SCALE = 10.0
SILENCE_DB = -60.0


# ---- unit conversions ----------------------------------------------------------------------------


def midi_to_feature(midi: np.ndarray | float) -> np.ndarray:
    return (np.asarray(midi, dtype=np.float64) - 60.0) / 24.0


def feature_to_midi(x: np.ndarray | float) -> np.ndarray:
    return 60.0 + 24.0 * np.asarray(x, dtype=np.float64)


def db_to_feature(db: np.ndarray | float) -> np.ndarray:
    return (np.asarray(db, dtype=np.float64) + 50.0) / 25.0


def feature_to_db(x: np.ndarray | float) -> np.ndarray:
    return 25.0 * np.asarray(x, dtype=np.float64) - 50.0


def _hz_to_midi(hz: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(hz / 440.0)


# ---- framing -------------------------------------------------------------------------------------


def _frames(audio: np.ndarray, hop: int, length: int) -> np.ndarray:
    """[n_frames, length] windows centred on the middle of each hop-long frame (zero padded)."""
    n = len(audio) // hop
    centres = np.arange(n) * hop + hop // 2
    start = centres - length // 2
    pad = length
    padded = np.pad(audio, (pad, pad + length))
    idx = (start + pad)[:, None] + np.arange(length)[None, :]
    return padded[idx]


# ---- f0 (YIN) ------------------------------------------------------------------------------------


def yin(audio: np.ndarray, sample_rate: int = 16000, hop: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame f0 in Hz and YIN aperiodicity (the normalised difference at the chosen lag, 0 = periodic)."""
    tau_min = int(sample_rate / F0_MAX)
    tau_max = int(np.ceil(sample_rate / F0_MIN)) + 1
    W = YIN_WINDOW
    frames = _frames(audio, hop, W + tau_max + 1)  # [n, W + tau_max + 1]
    n = len(frames)
    if n == 0:
        return np.zeros(0), np.ones(0)
    nfft = sfft.next_fast_len(frames.shape[1] + W, real=True)
    # r(tau) = sum_j x_j x_{j+tau} over the first W samples, for all tau at once
    spec_all = sfft.rfft(frames, nfft, axis=1)
    spec_head = sfft.rfft(frames[:, :W], nfft, axis=1)
    r = sfft.irfft(spec_all * np.conj(spec_head), nfft, axis=1)[:, : tau_max + 1]
    # energy of x_{tau} .. x_{tau+W-1}
    sq = np.concatenate([np.zeros((n, 1)), np.cumsum(frames**2, 1)], 1)
    energy = sq[:, W : W + tau_max + 1] - sq[:, : tau_max + 1]
    d = np.maximum(energy[:, :1] + energy - 2 * r, 0.0)  # difference function d(tau)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], 1)
    taus = np.arange(1, tau_max + 1)
    dn = np.ones_like(d)
    dn[:, 1:] = d[:, 1:] * taus / np.maximum(cum, 1e-12)  # cumulative mean normalised difference
    # first local minimum under the threshold in [tau_min, tau_max), else the global minimum
    seg = dn[:, tau_min:tau_max]
    is_min = np.zeros_like(seg, dtype=bool)
    is_min[:, 1:-1] = (seg[:, 1:-1] <= seg[:, :-2]) & (seg[:, 1:-1] <= seg[:, 2:])
    good = is_min & (seg < YIN_THRESHOLD)
    first = np.where(good.any(1), good.argmax(1), seg.argmin(1))
    k = np.clip(first + tau_min, 1, tau_max - 1)
    rows = np.arange(n)
    a, b, c = dn[rows, k - 1], dn[rows, k], dn[rows, k + 1]
    denom = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / denom, 0.0)
    shift = np.clip(shift, -1, 1)
    f0 = sample_rate / (k + shift)
    aper = np.clip(b - 0.25 * (a - c) * shift, 0.0, 1.0)
    return f0, aper


def voicing_from_aperiodicity(aper: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Soft voicing: 1 below aperiodicity 0.15, 0 above 0.4 (linear between), 0 in silence; median over 5 frames."""
    v = np.clip((0.4 - aper) / 0.25, 0.0, 1.0)
    v = v * np.clip((db - SILENCE_DB) / 10.0, 0.0, 1.0)
    if len(v) >= 5:
        v = median_filter(v, size=5, mode="nearest")
    return v


def continuous_log_f0(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Feature units; unvoiced frames interpolated from voiced neighbours (ends held), all-unvoiced -> 0."""
    idx = np.flatnonzero(voiced)
    if len(idx) == 0:
        return np.zeros(len(f0))
    midi = _hz_to_midi(f0[idx])
    return midi_to_feature(np.interp(np.arange(len(f0)), idx, midi))


# ---- loudness and envelope -----------------------------------------------------------------------


def frame_db(audio: np.ndarray, hop: int = 160) -> np.ndarray:
    """20 log10(RMS + 1e-5) over each hop-long frame (a full-scale sine gives -3 dB)."""
    n = len(audio) // hop
    fr = audio[: n * hop].reshape(n, hop).astype(np.float64)
    return 20.0 * np.log10(np.sqrt((fr**2).mean(1)) + 1e-5)


def mel_filterbank(sample_rate: int = 16000, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular HTK-mel filters over 0 .. sample_rate / 2."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(0.0), mel(sample_rate / 2), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down))


def _power_spectrum(audio: np.ndarray, hop: int) -> np.ndarray:
    """[frames, N_FFT // 2 + 1] Hann power spectra centred on each frame (torch.stft)."""
    n = len(audio) // hop
    x = torch.from_numpy(np.ascontiguousarray(audio[hop // 2 :], dtype=np.float32))
    if len(x) < 2:
        x = torch.zeros(2)
    spec = torch.stft(
        x, N_FFT, hop, window=torch.hann_window(N_FFT), center=True, pad_mode="constant", return_complex=True
    )
    p = spec.abs().pow(2).T.double().numpy()
    if p.shape[0] < n:
        p = np.pad(p, ((0, n - p.shape[0]), (0, 0)))
    return p[:n]


def _smooth_over_f0(power: np.ndarray, f0_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean of each power spectrum over a rectangular window one f0 wide (removes harmonic ripple)."""
    bins = power.shape[1]
    width = np.maximum(1, np.round(f0_hz * N_FFT / sample_rate)).astype(int)  # [frames]
    padded = np.pad(power, ((0, 0), (bins, bins)), mode="reflect")
    cum = np.concatenate([np.zeros((len(power), 1)), np.cumsum(padded, 1)], 1)
    k = np.arange(bins)[None] + bins
    lo = k - width[:, None] // 2
    hi = lo + width[:, None]
    rows = np.arange(len(power))[:, None]
    return (cum[rows, hi] - cum[rows, lo]) / width[:, None]


def mel_cepstrum(power: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """c1..c20 of the DCT-II (ortho) of the natural-log mel power, scaled by 1 / 10."""
    mel = power @ mel_filterbank(sample_rate, (power.shape[1] - 1) * 2).T
    return dct(np.log(mel + 1e-8), type=2, norm="ortho", axis=1)[:, 1 : N_MCEP + 1] / MCEP_SCALE


# ---- the feature matrix --------------------------------------------------------------------------


def extract_features(audio: np.ndarray, sample_rate: int = 16000, hop: int = 160) -> np.ndarray:
    """Mono float audio -> float32 [len(audio) // hop, 23] (see the module docstring)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"extract_features wants mono audio [samples], got shape {audio.shape}")
    n = len(audio) // hop
    out = np.zeros((n, N_FEATURES), dtype=np.float32)
    if n == 0:
        return out
    db = frame_db(audio, hop)
    f0, aper = yin(audio, sample_rate, hop)
    voicing = voicing_from_aperiodicity(aper, db)
    log_f0 = continuous_log_f0(f0, voicing >= 0.5)
    f0_cont = 440.0 * 2.0 ** ((feature_to_midi(log_f0) - 69.0) / 12.0)
    power = _smooth_over_f0(_power_spectrum(audio, hop), f0_cont, sample_rate)
    out[:, 0] = log_f0
    out[:, 1] = voicing
    out[:, 2] = db_to_feature(db)
    out[:, 3:] = mel_cepstrum(power, sample_rate)
    return out


def fundamental_phase(
    audio: np.ndarray, features: np.ndarray, hop: int = 160, sample_rate: int = 16000, window_s: float = 0.03
) -> np.ndarray:
    """Per-sample phase (radians in [-pi, pi)) of the recording's fundamental, float32 [frames * hop].

    The model's pitch clock (``model.excitation``) runs free from the frame f0, so its phase is arbitrary
    against the recorded glottal cycles. For training it is aligned: the audio is demodulated at the frame
    f0, low-passed (Hann, ``window_s``) and the residual phase added back. The model then learns the
    waveform as a function of the clock phase, and follows whatever pitch the keyboard drives.
    """
    from scipy.signal import fftconvolve

    audio = np.asarray(audio, dtype=np.float64)
    n = features.shape[0] * hop
    if n == 0:
        return np.zeros(0, np.float32)
    f0 = 440.0 * 2.0 ** ((feature_to_midi(features[:, 0]) - 69.0) / 12.0)
    inc = np.repeat(2 * np.pi * f0 / sample_rate, hop)
    ref = np.cumsum(inc) - inc  # the free clock, 0 at the first sample (as `excitation`)
    base = audio[:n] * np.exp(-1j * ref)
    win = np.hanning(max(3, int(window_s * sample_rate)))
    residual = np.angle(fftconvolve(base, win / win.sum(), mode="same"))
    return (np.mod(ref + residual + np.pi, 2 * np.pi) - np.pi).astype(np.float32)


def control_frames(
    midi_pitch: np.ndarray,
    loudness_db: np.ndarray,
    envelope: np.ndarray,
    voicing: float | np.ndarray = 1.0,
) -> np.ndarray:
    """What a keyboard drives -> float32 [F, 23]: MIDI pitch [F], loudness in dB [F], a preset
    envelope [20] (or [F, 20]) in feature units, voicing scalar or [F]."""
    midi_pitch = np.asarray(midi_pitch, dtype=np.float64).reshape(-1)
    n = len(midi_pitch)
    loud = np.broadcast_to(np.asarray(loudness_db, dtype=np.float64), (n,))
    env = np.asarray(envelope, dtype=np.float64)
    if env.shape[-1] != N_MCEP or env.ndim > 2:
        raise ValueError(f"envelope must be [{N_MCEP}] or [frames, {N_MCEP}], got shape {env.shape}")
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    out[:, 0] = midi_to_feature(midi_pitch)
    out[:, 1] = np.clip(np.broadcast_to(np.asarray(voicing, dtype=np.float64), (n,)), 0.0, 1.0)
    out[:, 2] = db_to_feature(loud)
    out[:, 3:] = np.broadcast_to(env, (n, N_MCEP))
    return out


# ---- presets -------------------------------------------------------------------------------------


@dataclass
class VoicePreset:
    """A typical spectral envelope of the training voice: ``envelope`` is 20 mcep values in feature units."""

    name: str
    envelope: np.ndarray = field(default_factory=lambda: np.zeros(N_MCEP, np.float32))
    midi: float = 60.0
    loudness_db: float = -20.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "envelope": [float(v) for v in np.asarray(self.envelope).reshape(-1)],
            "midi": float(self.midi),
            "loudness_db": float(self.loudness_db),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoicePreset:
        env = np.asarray(d["envelope"], dtype=np.float32).reshape(-1)
        if env.shape != (N_MCEP,):
            raise ValueError(f"preset envelope must have {N_MCEP} values, got {env.shape}")
        return cls(str(d["name"]), env, float(d.get("midi", 60.0)), float(d.get("loudness_db", -20.0)))


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means with k-means++ seeding (deterministic for a seed): (centroids [k, D], labels [N])."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    k = min(k, len(x))
    cent = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None] - np.asarray(cent)[None]) ** 2).sum(-1), 1)
        total = d2.sum()
        cent.append(x[rng.choice(len(x), p=d2 / total)] if total > 0 else x[rng.integers(len(x))])
    c = np.asarray(cent)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iters):
        labels = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.array([x[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c, labels


def steady_voiced_frames(features: np.ndarray, max_change: float = 0.05) -> np.ndarray:
    """Rows of ``features`` that are clearly voiced, not quiet and whose envelope barely moves."""
    f = np.asarray(features)
    if len(f) < 3:
        return f[:0]
    change = np.zeros(len(f))
    change[1:-1] = np.abs(f[2:, 3:] - f[:-2, 3:]).mean(1)
    change[[0, -1]] = np.inf
    db = feature_to_db(f[:, 2])
    keep = (f[:, 1] > 0.8) & (db > SILENCE_DB + 20) & (change < max_change)
    return f[keep]


def extract_presets(features_list: list[np.ndarray], n: int = 8, seed: int = 0) -> list[VoicePreset]:
    """k-means on the mcep of steady voiced frames; presets sorted and named by brightness
    ("dark 1", ..., "mid 1", ..., "bright 1", ...); brightness = -mcep1 (less low-frequency tilt)."""
    frames = [steady_voiced_frames(f) for f in features_list]
    rows = np.concatenate(frames) if frames else np.zeros((0, N_FEATURES))
    if len(rows) == 0:
        rows = np.concatenate([np.asarray(f) for f in features_list]) if features_list else rows
    if len(rows) == 0:
        return [VoicePreset("neutral 1")]
    cent, labels = kmeans(rows[:, 3:], n, seed)
    order = np.argsort(-cent[:, 0], kind="stable")  # dark (large c1) first
    tiers = np.array_split(np.arange(len(order)), 3) if len(order) >= 3 else [np.arange(len(order))]
    tier_names = ["dark", "mid", "bright"] if len(order) >= 3 else ["neutral"]
    presets = []
    for tier, name in zip(tiers, tier_names, strict=True):
        for i, pos in enumerate(tier):
            j = order[pos]
            members = rows[labels == j]
            presets.append(
                VoicePreset(
                    f"{name} {i + 1}",
                    cent[j].astype(np.float32),
                    float(np.median(feature_to_midi(members[:, 0]))),
                    float(np.median(feature_to_db(members[:, 2]))),
                )
            )
    return presets
