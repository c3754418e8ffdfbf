"""The voice's keyboard controls through the code that plays them: VoiceLines' frame features (glide, vibrato,
attack/decay/sustain, velocity -> loudness) and a tiny WaveRNNSource's output gain below the clean level."""

from __future__ import annotations

import numpy as np
import pytest

from synth_core.wavernn.features import feature_to_db, feature_to_midi
from synth_core.wavernn.voice import VoiceLines, VoiceSettings

FRAME_S = 0.01


def run(lines: VoiceLines, slot: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(MIDI pitch, loudness dB) of ``slot``'s next frames over ``seconds``."""
    frames = np.concatenate([lines.next_frames([slot])[:, 0] for _ in range(round(seconds / FRAME_S))])
    return feature_to_midi(frames[:, 0]), feature_to_db(frames[:, 2])


def lines(**settings) -> VoiceLines:
    return VoiceLines(4, FRAME_S, settings=VoiceSettings(**settings))


def test_attack_decay_sustain_shape_the_loudness_feature():
    s = VoiceSettings(attack_s=0.05, decay_s=0.2, sustain_db=-6.0, vibrato_cents=0.0)
    v = VoiceLines(2, FRAME_S, settings=s)
    v.start(1, 60.0, 127, np.zeros(20))
    _, db = run(v, 1, 1.0)
    peak = s.peak_db(127)
    assert db[0] == pytest.approx(s.floor_db, abs=1e-3)  # the attack starts from the floor ...
    assert np.all(np.diff(db[:5]) > 0) and db[5] == pytest.approx(peak, abs=1e-3)  # ... rises to the peak ...
    assert np.all(np.diff(db[5:25]) < 0)  # ... decays ...
    np.testing.assert_allclose(db[25:], peak + s.sustain_db, atol=1e-3)  # ... and sustains 6 dB below


def test_velocity_sets_the_level_and_quiet_notes_are_conditioned_at_the_clean_level():
    s = VoiceSettings()
    v = lines()
    for slot, velocity in enumerate((127, 100, 30)):
        v.start(slot, 60.0, velocity, np.zeros(20))
    peaks = [run(v, slot, 0.2)[1].max() for slot in range(3)]
    assert peaks[0] == pytest.approx(s.loud_db, abs=1e-3)
    assert peaks[1] == pytest.approx(s.peak_db(100), abs=1e-3) and s.peak_db(100) > s.clean_db
    assert peaks[2] == pytest.approx(s.clean_db, abs=1e-3)  # velocity 30 asks the model for the clean level ...
    gain_db = 20 * np.log10(v.gain[:3])
    np.testing.assert_allclose(gain_db, [0.0, 0.0, s.peak_db(30) - s.clean_db], atol=1e-4)  # ... then scales down


def test_glide_moves_the_pitch_smoothly_from_the_previous_note():
    v = lines(glide_s=0.1, vibrato_cents=0.0)
    v.start(0, 67.0, 100, np.zeros(20), glide_from=60.0)
    pitch, db = run(v, 0, 0.3)
    assert pitch[0] == pytest.approx(60.0) and np.all(np.diff(pitch[:11]) >= 0)
    np.testing.assert_allclose(pitch[10:], 67.0, atol=1e-9)  # arrived after glide_s
    steps = np.diff(pitch[:11])
    assert steps[0] < steps[5] > steps[-1]  # smoothstep: slow, fast, slow
    assert db[0] >= VoiceSettings().peak_db(100) + VoiceSettings().sustain_db - 1e-6  # legato: no new attack


def test_vibrato_starts_after_its_delay_at_its_rate_and_depth():
    s = VoiceSettings(vibrato_cents=20.0, vibrato_hz=5.0, vibrato_delay_s=0.4)
    v = VoiceLines(1, FRAME_S, settings=s)
    v.start(0, 64.0, 100, np.zeros(20))
    pitch, _ = run(v, 0, 2.0)
    np.testing.assert_allclose(pitch[:40], 64.0, atol=1e-9)  # nothing before the delay
    late = pitch[80:] - 64.0  # fully faded in from 0.7 s
    assert late.max() == pytest.approx(0.2, abs=0.01) and late.min() == pytest.approx(-0.2, abs=0.01)
    crossings = np.sum(np.diff(np.sign(late)) > 0)
    assert crossings == pytest.approx(5.0 * len(late) * FRAME_S, abs=1)  # 5 cycles per second


def test_the_source_scales_quiet_notes_after_sampling():
    """The real WaveRNNSource (tiny random model): a quiet note is the clean-level note times the gain."""
    import torch

    from synth_core.engine.wavernn_source import WaveRNNSource
    from synth_core.wavernn import WaveRNN, WaveRNNConfig
    from synth_core.wavernn.features import VoicePreset

    torch.manual_seed(0)
    model = WaveRNN(WaveRNNConfig(hidden=32, cond_channels=16, head_hidden=16))
    presets = [VoicePreset("flat")]

    def note(velocity: int) -> np.ndarray:
        src = WaveRNNSource(model, presets, backend="torch", device="cpu", seed=3)
        src.prepare(1)
        src.start_many([0], src.instrument_table[:1], [60], [float(velocity)])
        return np.concatenate([src.step([0])[0] for _ in range(3)])

    s = VoiceSettings()
    clean_velocity = int(np.ceil((s.clean_db - s.quiet_db) / (s.loud_db - s.quiet_db) * 127))
    loud, quiet = note(clean_velocity), note(30)
    assert np.abs(loud).max() > 0
    np.testing.assert_allclose(quiet, loud * s.output_gain(30), rtol=1e-5, atol=1e-7)


def tiny_source(presets=None, **kw):
    import torch

    from synth_core.engine.wavernn_source import WaveRNNSource
    from synth_core.wavernn import WaveRNN, WaveRNNConfig
    from synth_core.wavernn.features import VoicePreset

    torch.manual_seed(0)
    model = WaveRNN(WaveRNNConfig(hidden=32, cond_channels=16, head_hidden=16))
    presets = presets if presets is not None else [VoicePreset("flat"), VoicePreset("other")]
    return WaveRNNSource(model, presets, backend="torch", device="cpu", seed=3, **kw)


def test_the_source_carries_the_sampler_state_and_draws_seed_plus_call():
    """Step k samples with seed + k from the state step k - 1 left: renders repeat exactly, noise never
    repeats hop after hop, and a note continues where it was."""
    src = tiny_source()
    src.prepare(2)
    src.start_many([0], src.instrument_table[:1], [60], [100.0])
    ref = tiny_source()
    ref.prepare(2)
    ref.start_many([0], ref.instrument_table[:1], [60], [100.0])
    state = ref.sampler.zero_state(1)
    for k in (1, 2, 3):
        frames = ref.lines.next_frames(np.array([0]))
        want, state = ref.sampler.generate(frames, state, temperature=ref.settings.temperature, seed=3 + k)
        np.testing.assert_array_equal(src.step([0]), np.asarray(want, np.float32) * src.lines.gain[[0]][:, None])
    # the state matters: a note whose state is reset mid-way plays on differently
    a, b = tiny_source(), tiny_source()
    for s in (a, b):
        s.prepare(1)
        s.start_many([0], s.instrument_table[:1], [60], [100.0])
        s.step([0])
    b.state.put(np.array([0]), b.sampler.zero_state(1))
    assert not np.array_equal(a.step([0]), b.step([0]))


def test_the_source_passes_temperature_glide_and_slots_through():
    from synth_core.sing.checkpoint import InstrumentInfo

    src = tiny_source()
    assert src.instruments == [InstrumentInfo("flat", "vocal"), InstrumentInfo("other", "vocal")]
    assert src.instrument_table.dtype == np.float32 and src.instrument_table.shape[0] == 2
    assert src.device_name.startswith("torch") and src.device_name.endswith(")") and " on CPU (" in src.device_name
    assert src.lines.frame_s == src.hop / src.sample_rate and len(src.lines.t) == 1
    src.prepare(3)
    src.start_many([0, 2], src.instrument_table, [60, 64], [100.0, 100.0], glide_from=[None, 57])
    assert src.lines.pitch_to[2] == 64 and src.lines.pitch_from[2] == 57 and src.lines.pitch_from[0] == 60
    assert src.lines.pitch_to[1] == 0  # slot 1 untouched
    cold, hot = tiny_source(), tiny_source()
    hot.set_settings(temperature=1.0)
    cold.set_settings(temperature=0.05)
    for s in (cold, hot):
        s.prepare(1)
        s.start_many([0], s.instrument_table[:1], [60], [100.0])
    assert not np.array_equal(cold.step([0]), hot.step([0]))
    assert hot.lines.settings.temperature == 1.0
    with pytest.raises(ValueError, match="^a voice needs at least one timbre preset$"):
        tiny_source(presets=[])


def test_the_voice_loads_from_a_checkpoint_the_environment_or_says_what_is_missing(tmp_path, monkeypatch):
    from synth_core.engine import wavernn_source as ws
    from synth_core.wavernn.checkpoint import save_voice

    src = tiny_source()
    path = tmp_path / "voice.pt"
    save_voice(path, src.model, _presets("warm"))
    loaded = ws.WaveRNNSource.from_checkpoint(path, backend="torch", device="cpu", seed=5)
    assert [i.name for i in loaded.instruments] == ["warm"] and loaded._seed == 5
    assert loaded.device_name.startswith("torch cpu on CPU (")
    numba = ws.WaveRNNSource.from_checkpoint(path, backend="numba", device="cuda")  # numba runs on the CPU
    assert " on CPU (" in numba.device_name
    monkeypatch.setenv("NEUROSYNTH_VOICE_CHECKPOINT", str(path))
    assert [i.name for i in ws.load_default_voice("cpu", backend="torch").instruments] == ["warm"]
    monkeypatch.delenv("NEUROSYNTH_VOICE_CHECKPOINT")
    assert [i.name for i in ws.load_default_voice("cpu", path=path, backend="torch").instruments] == ["warm"]
    with pytest.raises(FileNotFoundError, match=r"default voice weights not found at .*nope\.pt; train them"):
        ws.load_default_voice("cpu", path=tmp_path / "nope.pt")
    monkeypatch.setattr(ws, "DEFAULT_VOICE", tmp_path / "missing_default.pt")
    with pytest.raises(FileNotFoundError, match="missing_default.pt"):
        ws.load_default_voice("cpu")


def _presets(*names):
    from synth_core.wavernn.features import VoicePreset

    return [VoicePreset(n) for n in names]


def test_frames_ahead_are_the_frames_next_frames_gives_one_by_one():
    """Offline a note's frames come at once (VoiceLines.frames_ahead): the same features, glide and vibrato included,
    and the slot's clock where the single steps leave it."""
    env = np.random.default_rng(0).standard_normal(20).astype(np.float32)
    for glide in (None, 55.0):
        one, many = lines(), lines()
        for v in (one, many):
            v.start(1, 62.0, 90, env, glide)
            v.next_frames([1, 2])  # a frame already played
        want = np.concatenate([one.next_frames([1])[:, 0] for _ in range(137)])
        np.testing.assert_array_equal(many.frames_ahead(1, 137), want)
        assert many.t[1] == one.t[1] and many.t[2] == one.t[2]
    assert lines().frames_ahead(0, 0).shape == (0, 23)
