"""Engine behaviour with the deterministic SineSource (and a tiny SING) -- fast."""

from __future__ import annotations

import time

import mido
import numpy as np
import pytest
import torch

from synth_core.dsp import band_energy_ratio, estimate_f0, midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource, SingSource

SR = 48000


def on(note, vel=100, ch=0):
    return mido.Message("note_on", note=note, velocity=vel, channel=ch)


def off(note, ch=0):
    return mido.Message("note_off", note=note, channel=ch)


def cc(control, value, ch=0):
    return mido.Message("control_change", control=control, value=value, channel=ch)


def seg(y, t0, t1, sr=SR):
    return y[int(t0 * sr) : int(t1 * sr)]


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def pull_real_time(e: Engine, seconds: float, block: int = 256) -> np.ndarray:
    """Call render() at the audio pace for ``seconds``, like an audio callback would."""
    blocks = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        blocks.append(e.render(block).copy())
        time.sleep(block / SR)
    return np.concatenate(blocks)


def engine(sr=SR, **kw) -> Engine:
    return Engine(SineSource(), EngineConfig(sample_rate=sr, **kw))


@pytest.mark.parametrize("sr", [48000, 44100])
def test_note_has_energy_at_its_pitch(sr):
    y = engine(sr).render_offline([(0, on(69))], sr)
    part = seg(y, 0.2, 0.8, sr)
    assert estimate_f0(part, sr) == pytest.approx(440.0, rel=0.005)
    assert band_energy_ratio(part, sr, 440.0) > 0.95
    y = engine(sr).render_offline([(0, on(57))], sr)
    assert estimate_f0(seg(y, 0.2, 0.8, sr), sr) == pytest.approx(220.0, rel=0.005)


def test_note_starts_at_its_event_frame_offline():
    y = engine().render_offline([(4800, on(69))], 9600)
    assert np.all(y[:4790] == 0)
    assert rms(y[5000:]) > 0.05


def test_note_off_release_decays_to_silence_without_click():
    e = engine(release_s=0.3)
    y = e.render_offline([(0, on(69)), (SR // 2, off(69))], SR * 2)
    assert rms(seg(y, 0.3, 0.5)) > 0.05
    assert rms(seg(y, 0.55, 0.6)) < rms(seg(y, 0.3, 0.5))
    assert np.all(seg(y, 0.85, 2.0) == 0)  # voice freed after release_s
    assert np.max(np.abs(np.diff(y))) < 0.1  # no step anywhere (sine max slope ~0.06)
    assert e.stats().active_voices == 0


def test_velocity_zero_is_note_off():
    y = engine().render_offline([(0, on(69)), (SR // 4, on(69, 0))], SR)
    assert np.all(seg(y, 0.6, 1.0) == 0)


def test_voice_stealing_oldest_fades_out():
    e = engine(max_voices=2)
    notes = [(0, on(60)), (4800, on(61)), (9600, on(62))]
    y = e.render_offline(notes, SR)
    late = seg(y, 0.5, 1.0)
    assert band_energy_ratio(late, SR, midi_to_hz(60), cents=30) < 0.02  # stolen
    assert band_energy_ratio(late, SR, midi_to_hz(62), cents=30) > 0.2
    assert np.max(np.abs(np.diff(y))) < 0.15  # quick fade, not a click


def test_stats_count_stolen_voices():
    e = engine(max_voices=2)
    e.render_offline([(0, on(60)), (100, on(62)), (200, on(64)), (300, on(65))], 4800)
    s = e.stats()
    assert s.voices_stolen == 2 and s.max_voices == 2


def test_sustain_pedal_holds_released_notes():
    y = engine().render_offline(
        [(0, cc(64, 127)), (0, on(69)), (SR // 4, off(69)), (SR, cc(64, 0))],
        2 * SR,
    )
    assert rms(seg(y, 0.7, 1.0)) > 0.05  # still sounding after note-off
    assert np.all(seg(y, 1.35, 2.0) == 0)  # released with the pedal


def test_all_notes_off_releases_sustained_notes():
    y = engine().render_offline([(0, cc(64, 127)), (0, on(69)), (0, on(72)), (SR // 4, cc(123, 0))], SR)
    assert np.all(seg(y, 0.6, 1.0) == 0)


def test_all_sound_off_is_immediate():
    y = engine(release_s=1.0).render_offline([(0, on(69)), (SR // 4, cc(120, 0))], SR)
    assert rms(seg(y, 0.2, 0.25)) > 0.05
    assert np.all(seg(y, 0.26, 1.0) == 0)  # within a few ms


def test_pitch_bend_up_two_semitones_moves_f0():
    e = engine(bend_range=2.0)
    y = e.render_offline([(0, on(69)), (SR // 2, mido.Message("pitchwheel", pitch=8191))], int(1.5 * SR))
    assert estimate_f0(seg(y, 0.1, 0.45), SR) == pytest.approx(440.0, rel=0.005)
    assert estimate_f0(seg(y, 0.7, 1.4), SR) == pytest.approx(440.0 * 2 ** (2 * 8191 / 8192 / 12), rel=0.005)


def test_unknown_messages_are_ignored():
    plain = engine().render_offline([(0, on(69))], SR // 2)
    odd = [
        (0, mido.Message("sysex", data=[1, 2, 3])),
        (0, mido.Message("aftertouch", value=50)),
        (0, mido.Message("clock")),
        (0, cc(7, 20)),
        (0, mido.Message("program_change", program=5)),
        (0, on(69)),
        (100, mido.Message("polytouch", note=69, value=3)),
    ]
    np.testing.assert_allclose(engine().render_offline(odd, SR // 2), plain, atol=1e-3)


def test_channel_filter():
    e = engine(channel=1)
    assert np.all(e.render_offline([(0, on(69, ch=0))], SR // 2) == 0)
    assert rms(e.render_offline([(0, on(69, ch=1))], SR // 2)) > 0.05


def test_odd_control_values_are_clamped():
    e = engine()
    e.note_on(500, 900)
    e.set_pitch_bend(float("nan"))
    e.set_master_gain(-3)
    e.set_instrument(99)
    e.set_instrument_vector(np.full(16, np.inf))
    e.render(256)  # no exception


def test_per_channel_instrument_vectors_are_kept_by_sounding_notes():
    e = engine()
    e.set_instrument(1, channel=2)
    assert e.instrument_vector()[0] == 1.0  # the default vector is unchanged
    e.set_instrument_vector(np.ones(16) * 0.5)
    np.testing.assert_allclose(e.instrument_vector(), 0.5)


def test_master_gain_and_soft_limiter():
    chord = [(0, on(60, 127)), (0, on(64, 127)), (0, on(67, 127)), (0, on(72, 127))]
    loud = engine().render_offline(chord, SR // 2)
    e = engine()
    e.set_master_gain(2.0)
    louder = e.render_offline(chord, SR // 2)
    assert np.max(np.abs(louder)) > np.max(np.abs(loud))
    # below its threshold the limiter is the identity; above it a tanh knee, sample by sample
    t = EngineConfig().limiter_threshold
    e = engine()
    e.set_master_gain(0.5)
    half = e.render_offline(chord, SR // 2).astype(np.float64)  # the mix at half gain, below the threshold
    assert np.max(np.abs(half)) < t
    e = engine()
    just_over = 0.45 / np.max(np.abs(half))  # a mix peaking at 0.9: over the threshold, under full scale
    e.set_master_gain(just_over)
    near = e.render_offline(chord, SR // 2)
    for gain, y in ((1.0, loud), (2.0, louder), (just_over, near)):
        mix = 2 * gain * half
        mag = np.abs(mix)
        knee = np.where(mag > t, t + (1 - t) * np.tanh((mag - t) / (1 - t)), mag)
        assert np.mean(mag > t) > 0.001  # the test drives the knee
        np.testing.assert_allclose(y, np.sign(mix) * knee, atol=1e-5)  # float32 arithmetic


def test_scope_and_recording(tmp_path):
    import soundfile as sf

    e = engine()
    e.start_recording(tmp_path / "rec.wav")
    y = e.render_offline([(0, on(69))], SR // 2)
    path = e.stop_recording()
    np.testing.assert_array_equal(e.scope(1000), y[-1000:])
    rec, sr = sf.read(path, dtype="float32")
    assert sr == SR and np.array_equal(rec, y)


def _tiny_sing_source(tiny_model, tiny_instruments) -> SingSource:
    return SingSource(tiny_model, tiny_instruments)


def test_cache_hit_equals_uncached_audio(tiny_model, tiny_instruments):
    src = _tiny_sing_source(tiny_model, tiny_instruments)
    e = Engine(src, EngineConfig(cache_prefix_s=0.1))
    events = [(0, on(60)), (SR // 2, off(60))]
    first = e.render_offline(events, SR)
    assert e.stats().cache_hits == 0 and e.stats().cache_misses == 1
    second = e.render_offline(events, SR)
    assert e.stats().cache_hits == 1
    assert np.max(np.abs(first)) > 0
    np.testing.assert_allclose(second, first, atol=1e-5)
    other = e.render_offline([(0, on(62)), (SR // 2, off(62))], SR)
    assert e.stats().cache_hits == 1 and not np.allclose(other, first)


def test_cache_is_bounded():
    e = engine(cache_entries=3, cache_prefix_s=0.02)
    for n in range(6):
        e.render_offline([(0, on(60 + n))], SR // 10)
    assert len(e._cache) == 3


def test_sing_source_real_time_end_to_end(tiny_model, tiny_instruments):
    src = _tiny_sing_source(tiny_model, tiny_instruments)
    assert src.instrument_table.shape == (3, 16) and src.device_name.startswith("CPU")
    e = Engine(src, EngineConfig(max_voices=4))
    e.set_instrument(1)
    e.start()
    try:
        e.note_on(60, 100)
        e.note_on(64, 80)
        y = pull_real_time(e, 1.0)
        assert np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0
        assert e.stats().active_voices == 2
        assert e.worker_error is None
    finally:
        e.stop()


def test_sing_source_sustain_policy(tiny_model, tiny_instruments):
    src = _tiny_sing_source(tiny_model, tiny_instruments)
    step = src.sustain_step(2.5)
    c = tiny_model.config
    assert c.context < step < c.n_steps - 1
    assert src.sustain_step(None) is None
    y = Engine(src, EngineConfig(sustain_s=0.5)).render_offline([(0, on(60))], int(1.2 * SR))
    # frozen time embedding: the sound keeps going past the frozen point
    assert rms(seg(y, 1.0, 1.2)) > 0


def test_render_never_blocks_while_worker_is_busy():
    e = Engine(SineSource(step_delay_s=0.15), EngineConfig())
    e.start()
    try:
        e.note_on(69, 100)
        worst = 0.0
        deadline = time.perf_counter() + 0.8
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            e.render(256)
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(256 / SR)
        assert worst < 0.05
        assert e.stats().underruns > 0
    finally:
        e.stop()


def test_threaded_engine_plays_the_right_pitch():
    e = engine()
    e.start()
    try:
        e.note_on(69, 100)
        blocks = []
        for _ in range(300):
            blocks.append(e.render(256).copy())
            time.sleep(0.002)
        y = np.concatenate(blocks)
        assert estimate_f0(y[-SR // 2 :], SR) == pytest.approx(440.0, rel=0.005)
        assert e.stats().note_latency_s < 0.5
    finally:
        e.stop()


def test_offline_render_is_deterministic():
    events = [(0, on(60)), (1000, on(64)), (20000, mido.Message("pitchwheel", pitch=-4000)), (30000, off(60))]
    a = engine().render_offline(events, SR)
    b = engine().render_offline(events, SR)
    assert np.array_equal(a, b)


def test_bf16_sing_source_runs(tiny_model, tiny_instruments):
    src = SingSource(tiny_model, tiny_instruments, dtype=torch.bfloat16)
    y = Engine(src).render_offline([(0, on(60))], SR // 4)
    ref = Engine(_tiny_sing_source(tiny_model, tiny_instruments)).render_offline([(0, on(60))], SR // 4)
    snr_db = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((y - ref).astype(np.float64) ** 2))
    assert snr_db > 35  # bf16 keeps 8 significant bits (~48 dB); measured 57 dB on this model


def test_load_default_source_missing_weights_is_clear(tmp_path, monkeypatch):
    from synth_core.engine import load_default_source

    monkeypatch.delenv("NEUROSYNTH_SING_CHECKPOINT", raising=False)
    with pytest.raises(FileNotFoundError, match="default SING weights not found"):
        load_default_source(path=tmp_path / "missing.pt")


def test_sing_source_from_checkpoint(tmp_path, tiny_model, tiny_instruments):
    from synth_core.engine import load_default_source
    from synth_core.sing import save_checkpoint

    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    src = SingSource.from_checkpoint(path, device="cpu")
    assert [i.name for i in src.instruments] == ["piano", "flute", "cello"]
    np.testing.assert_allclose(src.instrument_table, tiny_model.instrument_table.detach().numpy())
    assert load_default_source(device="cpu", path=path).instruments[2].family == "string"


def test_out_of_range_pitch_and_bad_vector_do_not_break_sing(tiny_model, tiny_instruments):
    e = Engine(SingSource(tiny_model, tiny_instruments))
    e.set_instrument_vector(np.ones(5))  # wrong size: ignored
    assert e.instrument_vector().shape == (16,)
    y = e.render_offline([(0, on(127)), (0, on(0))], SR // 4)
    assert np.all(np.isfinite(y)) and e.worker_error is None


def test_gpu_failure_in_worker_falls_back_to_cpu(tiny_model, tiny_instruments, gpu_fails_once):
    src = _tiny_sing_source(tiny_model, tiny_instruments)
    failures = gpu_fails_once(src)
    e = Engine(src, EngineConfig(max_voices=4))
    e.start()
    try:
        e.note_on(60, 100)
        y = pull_real_time(e, 1.0)
        assert failures and src.device.type == "cpu"
        assert "GPU failed" in e.stats().device_name
        assert np.max(np.abs(y)) > 0  # the note still sounds
    finally:
        e.stop()


def test_note_latencies_are_logged_and_cached_notes_start_before_cold_ones():
    class Source(SineSource):
        def start_many(self, slots, *args, **kw):  # what had sounded when a warm-up began
            warmups.append(e.note_latencies()[1].tolist())
            super().start_many(slots, *args, **kw)

    warmups: list[list[bool]] = []
    e = Engine(Source(), EngineConfig(sample_rate=SR, cache_prefix_s=0.02))
    e.render_offline([(0, on(60))], SR // 10)  # cold: computed, then cached
    e.render_offline([(0, on(62)), (0, on(60)), (0, on(64))], SR // 10)  # 60 from the cache, 62 and 64 cold
    latencies, cached = e.note_latencies()
    assert cached.tolist() == [False, True, False, False]
    assert warmups == [[], [False, True]]  # the cached note was written before the chord's warm-up ran
    assert np.all(latencies > 0) and e.stats().note_latency_s == latencies[-1]
