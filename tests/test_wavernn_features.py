"""WaveRNN features: YIN f0 on a known glide, voicing of noise, loudness steps, pitch-independent envelopes."""

from __future__ import annotations

import numpy as np

from synth_core.wavernn.features import (
    FEATURE_NAMES,
    control_frames,
    extract_features,
    extract_presets,
    feature_to_db,
    feature_to_midi,
    fundamental_phase,
)
from training.speech_data import formant_envelope, synthetic_tone

SR = 16000
ENV_A = formant_envelope([500, 1500], [300, 400])
ENV_B = formant_envelope([2500], [500])


def test_f0_follows_a_glide_within_half_a_semitone():
    f0 = 150 * 2 ** np.linspace(0, 1, SR)  # one octave up in 1 s
    feats = extract_features(synthetic_tone(f0, ENV_A, rms=0.2))
    assert feats.shape == (100, len(FEATURE_NAMES)) and feats.dtype == np.float32
    true_midi = 69 + 12 * np.log2(f0[80::160] / 440)
    voiced = feats[:, 1] > 0.5
    assert voiced[3:-3].all()
    err = np.abs(feature_to_midi(feats[:, 0]) - true_midi)[voiced]
    assert err.max() < 0.5


def test_noise_is_unvoiced_and_silence_is_midi_60():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert extract_features(noise)[:, 1].max() < 0.2
    silent = extract_features(np.zeros(SR // 2, np.float32))
    assert np.all(silent[:, 1] == 0) and np.all(silent[:, 0] == 0)


def test_loudness_tracks_a_20_db_step():
    tone = synthetic_tone(np.full(SR, 200.0), ENV_A, rms=0.2)
    tone[SR // 2 :] *= 0.1
    db = feature_to_db(extract_features(tone)[:, 2])
    assert abs(db[10:40].mean() - 20 * np.log10(0.2)) < 1.0
    assert abs((db[10:40].mean() - db[60:90].mean()) - 20.0) < 1.0


def test_mcep_is_pitch_independent_and_envelope_dependent():
    def env(f0, e):
        return extract_features(synthetic_tone(np.full(SR, f0), e, rms=0.2))[10:-10, 3:].mean(0)

    a_low, a_high, b_low = env(150.0, ENV_A), env(260.0, ENV_A), env(150.0, ENV_B)
    same = np.linalg.norm(a_low - a_high)
    different = np.linalg.norm(a_low - b_low)
    assert same < 0.5 * different


def test_control_frames_and_presets():
    env = np.linspace(-0.1, 0.1, 20)
    f = control_frames(np.array([60.0, 72.0]), np.array([-3.0, -28.0]), env, voicing=1.0)
    assert f.shape == (2, 23)
    assert np.allclose(f[:, 0], [0.0, 0.5]) and np.allclose(f[:, 2], [47 / 25, 22 / 25]) and np.allclose(f[1, 3:], env)
    tones = [synthetic_tone(np.full(SR // 2, p), e, rms=0.2) for p in (150, 200) for e in (ENV_A, ENV_B)]
    feats = [extract_features(t) for t in tones]
    presets = extract_presets(feats, n=3, seed=0)
    again = extract_presets(feats, n=3, seed=0)
    assert [p.name for p in presets] == ["dark 1", "mid 1", "bright 1"]
    assert all(np.array_equal(p.envelope, q.envelope) for p, q in zip(presets, again, strict=True))
    assert presets[0].envelope.shape == (20,) and 50 < presets[0].midi < 60


def test_fundamental_phase_locks_to_the_recorded_cycles():
    """The training clock is aligned to the fundamental of the audio, whatever its start phase."""
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    f0 = 200 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))  # vibrato
    true = np.cumsum(2 * np.pi * f0 / SR) + 1.3
    audio = 0.3 * np.cos(true) + 0.15 * np.cos(2 * true + 0.5) + 0.1 * np.cos(3 * true + 1)
    audio += 0.002 * rng.normal(size=SR)
    phase = fundamental_phase(audio, extract_features(audio, SR), 160, SR)
    assert phase.shape == (SR,) and phase.dtype == np.float32
    err = np.angle(np.exp(1j * (phase - true)))[800:-800]
    assert np.median(np.abs(err)) < 0.05
