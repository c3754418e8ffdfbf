"""The perceptual measures are wired right: a known degradation of a note scores clearly worse than the note."""

from __future__ import annotations

import numpy as np
import pytest

from synth_core.dsp import midi_to_hz
from training import perceptual

SR = 16000


def note(pitch: int = 60, decay_s: float | None = 0.8, seconds: float = 4.0) -> np.ndarray:
    """A harmonic note with a 10 ms attack, a decay (or a flat hold) and a release after 3 s."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = midi_to_hz(pitch)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12) if k * f0 < SR / 2)
    env = np.minimum(t / 0.01, 1.0) * (np.exp(-t / decay_s) if decay_s else 1.0)
    env = env * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) / 0.1))
    return (0.2 * env * x).astype(np.float32)


def test_visqol_ranks_a_clean_note_above_its_degraded_copies():
    pytest.importorskip("visqol")
    ref = note()
    clean = perceptual.visqol_mos(ref, ref, SR)
    noisy = perceptual.visqol_mos(ref, perceptual.with_noise(ref, 20.0), SR)
    dull = perceptual.visqol_mos(ref, perceptual.low_passed(ref, SR, 1000.0), SR)
    assert clean > 4.5, clean  # the top of ViSQOL's audio scale
    assert noisy < clean - 0.4, (clean, noisy)
    assert dull < clean - 0.2, (clean, dull)


def test_envelope_correlation_tells_a_decay_from_a_flat_hold():
    decaying, flat = note(decay_s=0.8), note(decay_s=None)
    assert perceptual.envelope_correlation(decaying, decaying) == pytest.approx(1.0)
    assert perceptual.envelope_correlation(flat, decaying) < 0.8
    assert perceptual.envelope_correlation(np.zeros_like(decaying), decaying) == 0.0


def test_between_harmonics_energy_sees_a_noise_floor():
    ref = note(decay_s=None)
    assert abs(perceptual.between_harmonics_db(ref, ref, 60, SR)) < 1e-9
    floor = perceptual.between_harmonics_db(perceptual.with_noise(ref, 20.0), ref, 60, SR)
    assert floor > 10.0, floor  # the clean note holds almost nothing between its harmonics


def test_upper_band_levels_see_a_dull_note():
    t = np.arange(3 * SR) / SR
    ref = (0.1 * sum(np.sin(2 * np.pi * 200.0 * k * t + k) / k for k in range(1, 40))).astype(np.float32)
    assert perceptual.upper_bands_db(ref, ref, SR) == {"4-6 kHz": 0.0, "6-8 kHz": 0.0}
    dull = perceptual.upper_bands_db(perceptual.low_passed(ref, SR, 3500.0), ref, SR)
    assert dull["4-6 kHz"] < -20 and dull["6-8 kHz"] < -40, dull
    brighter = perceptual.upper_bands_db(perceptual.with_noise(ref, 10.0), ref, SR)
    assert brighter["6-8 kHz"] > 3, brighter


def test_visqol_rate_and_length():
    up = perceptual.to_visqol_rate(np.zeros(4 * SR, np.float32), SR)
    assert len(up) == int(perceptual.VISQOL_SECONDS * perceptual.VISQOL_RATE)


def test_custom_instrument_measure_scores_what_a_listener_hears():
    """training.embed_measure --visqol scores each method like training.evaluate --visqol."""
    import torch

    from training.embed_measure import TestNotes, markdown, summarise

    sr = 16000
    t = np.arange(64000) / sr
    audio = {p: (0.3 * np.sin(2 * np.pi * 220 * 2 ** ((p - 57) / 12) * t) * np.exp(-t)).astype(np.float32)
             for p in (50, 57)}  # fmt: skip
    tests = TestNotes([50, 57], audio, gain=128.0, sample_rate=sr, visqol=True)
    clean = tests.score(tests.want.clone())
    noisy = tests.score(tests.want + 0.03 * torch.randn_like(tests.want))
    assert clean["visqol"] > noisy["visqol"] + 0.3
    assert clean["envelope_corr"] > 0.99 and clean["level_error_db_mean_abs"] < 0.01
    rows = [{"instrument": "x", "methods": {"fit_1": clean, "nearest": noisy}}]
    report = {"summary": summarise(rows), "instruments": rows}
    assert report["summary"]["fit_1"]["visqol"] == clean["visqol"]
    assert f"{clean['visqol']:.2f}" in markdown(report)
