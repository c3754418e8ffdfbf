"""The shipped default WaveRNN voice: small, block-sparse, and it sings the requested pitches."""

from pathlib import Path

import numpy as np
import pytest

from synth_core.dsp import estimate_f0, hz_to_midi

ASSET = Path(__file__).resolve().parents[1] / "assets" / "voice_default.pt"
pytestmark = pytest.mark.skipif(not ASSET.is_file(), reason="assets/voice_default.pt is not shipped")


@pytest.fixture(scope="module")
def voice():
    from synth_core.engine.wavernn_source import load_default_voice

    return load_default_voice(device="cpu")


def test_shipped_voice_is_small_sparse_and_has_presets(voice):
    assert ASSET.stat().st_size < 20 * 2**20
    model = voice.model
    assert model.sparsity()["gru.weight_hh_l0"] >= 0.85
    rows, cols = model.config.block
    w = model.gru.weight_hh_l0.detach().numpy()
    blocks = w.reshape(w.shape[0] // rows, rows, w.shape[1] // cols, cols)
    nonzero = np.abs(blocks).sum(axis=(1, 3)) > 0
    assert nonzero.mean() < 0.15  # the zeros come in whole blocks
    assert len(voice.instruments) >= 4 and voice.instrument_table.shape[1] == 20


@pytest.mark.parametrize("pitch", [50, 57, 64])
def test_default_voice_sings_the_requested_pitch(pitch):
    import mido

    from synth_core.engine import Engine, EngineConfig
    from synth_core.engine.wavernn_source import load_default_voice

    engine = Engine(load_default_voice(device="cpu"), EngineConfig(sample_rate=22050, max_voices=1, mono=True))
    y = engine.render_offline([(0, mido.Message("note_on", note=pitch, velocity=100))], int(1.5 * 22050))
    held = y[int(0.4 * 22050) : int(1.4 * 22050)]
    assert np.sqrt(np.mean(held**2)) > 1e-3
    assert abs(hz_to_midi(estimate_f0(held, 22050)) - pitch) < 1.0


@pytest.mark.parametrize("pitch", [57, 64, 69])
def test_quiet_notes_are_as_clean_as_loud_ones_and_follow_the_velocity(voice, pitch):
    """Velocity 30 once played half noise (the model's sampling noise does not follow its loudness feature);
    now every velocity keeps most of its energy on the note's harmonics, and the level still follows it."""
    import mido

    from synth_core.dsp import band_energy_ratio, midi_to_hz
    from synth_core.engine import Engine, EngineConfig

    sr = 22050
    levels = []
    for velocity in (30, 64, 100):
        engine = Engine(voice, EngineConfig(sample_rate=sr, max_voices=1))
        y = engine.render_offline([(0, mido.Message("note_on", note=pitch, velocity=velocity))], int(1.2 * sr))
        held = y[int(0.3 * sr) : int(1.1 * sr)]
        assert band_energy_ratio(held, sr, midi_to_hz(pitch), cents=50) > 0.8, velocity
        levels.append(10 * np.log10(np.mean(held.astype(np.float64) ** 2)))
    assert levels[0] + 4 < levels[1] < levels[2] - 3  # about 12 dB from velocity 30 to 100, as designed
