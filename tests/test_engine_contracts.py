"""The engine's small contracts, pinned exactly: the release envelope, the value ranges of its controls, which
channels a control reaches, MIDI thresholds, monitoring values, recording and the note cache's size.

Each test here kills mutants that survived the rest of the suite (see tests/README.md, mutation testing).
"""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest
import soundfile as sf

from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine.cache import CachedNote, NoteCache
from synth_core.engine.engine import FREE, Voice, release_curve
from tests.test_engine_semantics import BLOCK, SR, fading, held, live, off, on, play


def cc(control: int, value: int, ch: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=ch)


def sounding(e: Engine) -> list[tuple[int, int]]:
    return sorted((v.channel, v.note) for v in e.voices if v.state != FREE)


# ---------------------------------------------------------------- the release envelope


def test_release_curve_is_the_documented_exponential():
    x = np.array([-0.5, 0.0, 0.25, 0.5, 1.0, 1.5])
    decay = math.log(1000.0)
    want = (np.exp(-decay * np.clip(x, 0, 1)) - 1e-3) / (1 - 1e-3)
    np.testing.assert_allclose(release_curve(x), want, rtol=1e-12, atol=1e-15)
    assert release_curve(np.array([0.0]))[0] == 1.0 and release_curve(np.array([1.0]))[0] == 0.0
    assert release_curve(np.array([-1.0]))[0] == 1.0  # before the release: full level


def test_voice_release_keeps_its_level_and_only_ever_shortens():
    v = Voice(0, None)
    assert v.level() == 1.0
    v.held = v.sustained = True
    v.release(0.4)  # at least one sample
    assert (v.rel_len, v.rel_pos, v.held, v.sustained) == (1, 0, False, False)
    v = Voice(0, None)
    v.release(1000)
    v.rel_pos = 500
    assert v.level() == pytest.approx(float(release_curve(np.array([0.5]))[0]))
    v.release(600)  # longer than what is left (500): ignored
    assert (v.rel_len, v.rel_pos) == (1000, 500)
    v.release(500)  # as long as what is left: ignored too
    assert (v.rel_len, v.rel_pos) == (1000, 500)
    level = v.level()
    v.release(100)  # shorter: restarts from the current level
    assert (
        (v.rel_len, v.rel_pos) == (100, 0) and v.rel_level == pytest.approx(level) and v.level() == pytest.approx(level)
    )
    v.rel_pos = 50
    assert v.level() == pytest.approx(level * float(release_curve(np.array([0.5]))[0]))


def test_a_released_note_fades_over_release_s_and_frees_its_slot():
    e = live(release_s=0.1)
    play(e, on(69), blocks=8)
    peak = np.abs(play(e, blocks=4)).max()
    play(e, off(69), blocks=1)
    tail = play(e, blocks=int(0.1 * SR / BLOCK) + 2)
    assert np.abs(tail[-BLOCK:]).max() == 0.0 and sounding(e) == [] and e.stats().active_voices == 0
    assert np.abs(tail[: BLOCK // 2]).max() > 0.5 * peak  # a fade, not a cut


# ---------------------------------------------------------------- value ranges


def pitch_of(e: Engine, blocks: int = 24) -> float:
    audio = play(e, blocks=blocks)
    return estimate_f0(audio[-8192:], SR)


@pytest.mark.parametrize(("bend", "semitones"), [(30.0, 24.0), (-30.0, -24.0), (7.0, 7.0), (float("nan"), 0.0)])
def test_pitch_bend_is_clamped_to_two_octaves(bend, semitones):
    e = live()
    e.set_pitch_bend(bend)
    play(e, on(57), blocks=1)
    assert pitch_of(e) == pytest.approx(midi_to_hz(57 + semitones), rel=0.01)
    assert e._rates_prev[0] == pytest.approx(SineSource().sample_rate / SR * 2 ** (semitones / 12))


def test_a_bend_during_a_note_keeps_the_resampler_fed():
    """Bending up two octaves mid-note needs four times the input: the worker must compute that much ahead."""
    e = live()
    play(e, on(45), blocks=16)
    e.set_pitch_bend(24.0)
    assert pitch_of(e, blocks=40) == pytest.approx(midi_to_hz(69), rel=0.01)
    assert e.stats().underruns == 0


@pytest.mark.parametrize(("gain", "ratio"), [(5.0, 2.0), (-1.0, 0.0), (0.5, 0.5), (float("nan"), 0.0)])
def test_master_gain_is_clamped_to_0_2(gain, ratio):
    ref, e = live(limiter_threshold=1.0), live(limiter_threshold=1.0)
    e.set_master_gain(gain)
    a, b = play(ref, on(60, 40), blocks=12), play(e, on(60, 40), blocks=12)
    np.testing.assert_allclose(b, a * ratio, atol=1e-6)


def test_the_output_rate_is_at_least_22050():
    e = live()
    e.set_sample_rate(8000)
    play(e, blocks=1)
    assert e.sample_rate == 22050 and e.stats().sample_rate == 22050
    e.set_sample_rate(22050.9)
    play(e, blocks=1)
    assert e.sample_rate == 22050


@pytest.mark.parametrize(("note", "sounds"), [(0, 0), (-40, 0), (127, 127), (300, 127)])
def test_note_off_is_clamped_like_note_on(note, sounds):
    e = live()
    e.note_on(note, 100)
    play(e, blocks=2)
    assert held(e) == [(0, sounds)]
    e.note_off(note)
    play(e, blocks=1)
    assert held(e) == [] and fading(e) == [(0, sounds)]


def test_a_wrong_sized_instrument_vector_is_ignored():
    e = live()
    before = e.instrument_vector()
    e.set_instrument_vector(np.ones(3))
    np.testing.assert_array_equal(e.instrument_vector(), before)
    e.set_instrument_vector(np.full((2, len(before) // 2), np.nan))  # any shape of the right size, NaN -> 0
    np.testing.assert_array_equal(e.instrument_vector(), np.zeros_like(before))
    assert e.instrument_vector().dtype == np.float32


# ---------------------------------------------------------------- which channels a control reaches


def two_channels(e: Engine) -> None:
    play(e, on(60, ch=0), on(64, ch=3), blocks=2)


@pytest.mark.parametrize("control", ["notes_off", "sound_off"])
def test_all_notes_or_sound_off_without_a_channel_reaches_every_channel(control):
    e = live()
    two_channels(e)
    getattr(e, f"all_{control}")()
    play(e, blocks=1)
    assert held(e) == []
    e = live()
    two_channels(e)
    getattr(e, f"all_{control}")(3)
    play(e, blocks=1)
    assert held(e) == [(0, 60)]


@pytest.mark.parametrize(("control", "kept"), [(120, [(0, 60)]), (123, [(0, 60)])])
def test_cc_120_and_123_act_on_their_own_channel(control, kept):
    e = live()
    two_channels(e)
    play(e, cc(control, 0, ch=3), blocks=1)
    assert held(e) == kept


def test_the_pedal_without_a_channel_holds_every_channel():
    e = live()
    two_channels(e)
    e.set_sustain(True)
    play(e, off(60, 0), off(64, 3), blocks=1)
    assert fading(e) == [] and sounding(e) == [(0, 60), (3, 64)]
    e.set_sustain(False, 3)
    play(e, blocks=1)
    assert fading(e) == [(3, 64)]


@pytest.mark.parametrize(("value", "holds"), [(63, False), (64, True)])
def test_the_pedal_is_down_from_64(value, holds):
    e = live()
    play(e, on(60), cc(64, value), off(60), blocks=1)
    assert (fading(e) == []) == holds


def test_a_bend_or_vector_for_one_channel_leaves_the_others():
    e = live()
    e.set_pitch_bend(2.0, channel=5)
    vec = np.ones_like(e.instrument_vector())
    e.set_instrument_vector(vec, channel=5)
    play(e, blocks=1)
    assert e._bend[5] == 2.0 and e._bend[0] == 0.0 and e._default_vec is not vec
    np.testing.assert_array_equal(e._channel_vecs[5], vec)
    e.set_pitch_bend(1.0)
    play(e, blocks=1)
    assert e._bend == [1.0] * 16


def test_pitchwheel_maps_to_the_bend_range():
    e = live()
    play(e, mido.Message("pitchwheel", pitch=8191, channel=2), blocks=1)
    assert e._bend[2] == pytest.approx(8191 / 8192 * EngineConfig().bend_range, rel=1e-12)
    play(e, mido.Message("pitchwheel", pitch=-8192, channel=2), blocks=1)
    assert e._bend[2] == -EngineConfig().bend_range


def test_program_changes_need_a_program_map(tiny_instruments):
    src = SineSource(n_instruments=3)
    src.instrument_table = np.eye(3, 16, dtype=np.float32)
    e = live(src)
    play(e, mido.Message("program_change", program=2, channel=1), blocks=1)
    assert 1 not in e._channel_vecs or e._channel_vecs.get(1) is None
    e.set_program_map({})
    assert e.program_map is None  # an empty map is no map
    e.set_program_map({2: 2})
    play(e, mido.Message("program_change", program=2, channel=1), blocks=1)
    np.testing.assert_array_equal(e._channel_vecs[1], src.instrument_table[2])


# ---------------------------------------------------------------- mono mode


def test_mono_legato_crossfades_over_steal_fade_s_and_logs_the_latency():
    e = live(mono=True, steal_fade_s=0.02)
    play(e, on(60), blocks=4)
    play(e, on(64), blocks=1)
    old = [v for v in e.voices if v.state != FREE and v.note == 60]
    assert old and old[0].rel_len == round(0.02 * SR)
    assert len(e.note_latencies()[0]) == 2  # the legato note's latency is logged too
    play(e, off(64), blocks=1)  # back to the key still held
    assert held(e) == [(0, 60)]
    play(e, on(60, 90), blocks=1)  # the held key again, another velocity: one key in the list
    assert e._held_keys[0] == [(60, 90)]


def test_switching_mono_on_takes_each_channels_held_keys_in_order():
    e = live()
    play(e, on(60, 70, ch=0), on(62, 80, ch=1), on(64, 90, ch=0), blocks=2)
    play(e, off(62, ch=1), blocks=1)
    e.set_mono(True)
    play(e, blocks=1)
    assert e._held_keys[0] == [(60, 70), (64, 90)] and e._held_keys[1] == []
    e.set_mono(False)
    play(e, blocks=1)
    assert e._held_keys[0] == []


def test_mono_note_off_of_a_key_that_is_not_the_lines_leaves_the_line():
    e = live(mono=True)
    play(e, on(60), on(64), blocks=2)
    play(e, off(60), blocks=1)  # an earlier key: the line (64) keeps sounding
    assert held(e) == [(0, 64)] and e._held_keys[0] == [(64, 100)]
    play(e, off(64), blocks=1)  # the line's key, nothing held: released
    assert held(e) == []


# ---------------------------------------------------------------- monitoring and recording


def test_stats_report_the_rate_load_and_block():
    e = live()
    e.set_output_latency(0.012, block_size=512)
    e.set_output_latency(0.02)
    play(e, on(60), blocks=2)
    s = e.stats()
    assert (s.sample_rate, s.block_size, s.output_latency_s) == (SR, 512, 0.02)
    assert s.render_load == e._load and s.active_voices == 1
    e.count_output_underflow()
    assert e.stats().output_underflows == 1


def test_scope_returns_the_last_samples():
    e = live()
    audio = play(e, on(69), blocks=4)
    np.testing.assert_array_equal(e.scope(100), audio[-100:])
    assert e.scope(0).shape == (0,) and e.scope(-5).shape == (0,)


def test_recording_writes_float_wav_and_stops_once(tmp_path):
    e = live()
    e.start_recording(tmp_path / "take.wav")
    audio = play(e, on(69), blocks=6)
    assert e.stop_recording() == tmp_path / "take.wav"
    assert e.stop_recording() is None and not e._recording
    data, sr = sf.read(tmp_path / "take.wav", dtype="float32")
    assert sf.info(tmp_path / "take.wav").subtype == "FLOAT" and sr == SR
    np.testing.assert_array_equal(data, audio)


def test_render_offline_reports_progress_and_refuses_a_running_engine():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    seen: list[int] = []
    out = e.render_offline([(0, on(60)), (0, on(64)), (1000, off(60)), (1000, off(64))], 3000, seen.append)
    assert seen == [1000, 3000] and out.dtype == np.float32 and len(out) == 3000 and not e._sync
    e.start()
    try:
        with pytest.raises(RuntimeError, match="render_offline needs a stopped engine"):
            e.render_offline([], 10)
    finally:
        e.stop()


def test_reset_keeps_the_rate_gain_and_vector_queued_before_it():
    e = live()
    e.set_sample_rate(44100)
    e.set_master_gain(0.5)
    e.set_pitch_bend(3.0)
    e.reset()
    assert e.sample_rate == 44100 and e._master == 0.5 and e._bend == [0.0] * 16
    assert len(e._sustain_pedal) == len(e._held_keys) == len(e._bend) == len(e._rates_prev) == 16


def test_the_worker_thread_never_keeps_the_process_alive():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    e.start()
    try:
        assert e._thread.daemon and e._thread.name == "engine-worker"
    finally:
        e.stop()


# ---------------------------------------------------------------- the note cache's size


def entry(n: int) -> CachedNote:
    return CachedNote(audio=np.full(4, n, np.float32), state=None)


def test_note_cache_keeps_the_most_recent_entries():
    cache = NoteCache(max_entries=2)
    for k in range(3):
        cache.put(("k", k), entry(k))
    assert cache.get(("k", 0)) is None and cache.get(("k", 1)) is not None and len(cache) == 2
    cache.put(("k", 3), entry(3))  # ("k", 1) was used last: ("k", 2) goes
    assert cache.get(("k", 2)) is None and cache.get(("k", 1)) is not None
    one = NoteCache(max_entries=1)
    one.put("a", entry(1))
    assert len(one) == 1
    off_ = NoteCache(max_entries=0)
    off_.put("a", entry(1))
    assert len(off_) == 0 and off_.get("a") is None


# ---------------------------------------------------------------- the sources


def test_the_sine_source_plays_its_documented_tone():
    """``--sine`` (no weights needed): harmonics 1..4 at 1/k, 0.25 * velocity / 127, phase-continuous hops."""
    src = SineSource()
    assert (src.sample_rate, src.hop, src.harmonics, len(src.instruments)) == (16000, 256, 4, 2)
    assert [(i.name, i.family) for i in src.instruments] == [("sine0", "synth_lead"), ("sine1", "synth_lead")]
    np.testing.assert_array_equal(src.instrument_table, np.eye(2, 16, dtype=np.float32))
    assert src.instrument_table.dtype == np.float32 and src.device_name == "CPU (sine test source)"
    assert len(src.freq) == 1  # prepared for one slot until the engine says otherwise
    src.prepare(3)
    src.start_many([1, 2], None, [69, 57], [127, 64])
    a, b = src.step([1, 2]), src.step([1, 2])
    t = np.arange(512) / 16000
    for row, (f, amp) in enumerate([(440.0, 0.25), (220.0, 0.25 * 64 / 127)]):
        want = amp * sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
        np.testing.assert_allclose(np.concatenate([a[row], b[row]]), want, atol=1e-6)
    assert a.dtype == np.float32
    state = src.save_state(1)
    src.start_many([1], None, [60], [1])
    src.load_state(1, state)
    np.testing.assert_array_equal(src.step([1])[0], src_step_after(state))
    assert state[2] == 512


def src_step_after(state) -> np.ndarray:
    """The hop a fresh sine source plays from a saved state (freq, amp, samples so far)."""
    ref = SineSource()
    ref.load_state(0, state)
    return ref.step([0])[0]


def test_sing_source_loads_names_and_plays_a_checkpoint(tiny_model, tiny_instruments, tmp_path):
    from synth_core.engine import SingSource
    from synth_core.engine.sources import load_default_source
    from synth_core.sing import save_checkpoint
    from synth_core.sing.checkpoint import CheckpointError

    src = SingSource(tiny_model)
    assert [i.name for i in src.instruments] == ["instrument 0", "instrument 1", "instrument 2"]
    assert src.streamer.max_voices == 1 and src.checkpoint_path is None
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    loaded = load_default_source("cpu", path)
    assert loaded.checkpoint_path == path and [i.name for i in loaded.instruments] == [i.name for i in tiny_instruments]
    np.testing.assert_array_equal(loaded.instrument_table, tiny_model.instrument_table.detach().numpy())
    loaded.prepare(4)
    assert loaded.streamer.max_voices == 4 and loaded.streamer.dtype == loaded.dtype
    with pytest.raises(FileNotFoundError, match="default SING weights not found at .*nope.pt; train them"):
        load_default_source("cpu", tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        load_default_source("cpu", tmp_path / "bad.pt")
    assert "restore them" not in str(err.value)  # only the shipped file gets the restore hint


def test_sing_source_clamps_pitches_to_what_sing_knows_and_freezes_at_the_frame_centred_on_the_time(tiny_model):
    from synth_core.engine import SingSource

    src = SingSource(tiny_model)
    src.prepare(6)
    vec = np.repeat(tiny_model.instrument_table[:1].detach().numpy(), 6, axis=0)
    src.start_many(range(6), vec, [120, 130, 119, -5, 0, 1], [100] * 6)
    out = np.concatenate([src.step(range(6)) for _ in range(12)], axis=1)
    np.testing.assert_allclose(out[1], out[0], atol=1e-6)  # above MIDI 120: 120
    np.testing.assert_allclose(out[3], out[4], atol=1e-6)  # below 0: 0
    assert np.abs(out[0] - out[2]).max() > 1e-4 and np.abs(out[4] - out[5]).max() > 1e-4  # a random tiny model
    c = tiny_model.config
    for seconds in (0.5, 1.0, 3.0):
        k = src.sustain_step(seconds)
        centre = k * c.hop - c.pad + c.frame // 2  # the output sample at the centre of step k's frame
        assert abs(centre - seconds * c.sample_rate) < c.hop
    assert src.sustain_step(0.0) == c.context and src.sustain_step(None) is None
    assert src.fall_back_to_cpu() is False and src.device.type == "cpu"  # already there: nothing to do


def test_the_sing_checkpoint_comes_from_the_environment_and_a_damaged_default_says_how_to_restore_it(
    tiny_model, tiny_instruments, tmp_path, monkeypatch
):
    from synth_core.engine import sources
    from synth_core.sing import save_checkpoint
    from synth_core.sing.checkpoint import CheckpointError

    path = tmp_path / "env.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    monkeypatch.setenv("NEUROSYNTH_SING_CHECKPOINT", str(path))
    assert sources.load_default_source("cpu").checkpoint_path == path
    monkeypatch.delenv("NEUROSYNTH_SING_CHECKPOINT")
    junk = tmp_path / "sing_default.pt"
    junk.write_bytes(b"junk")
    monkeypatch.setattr(sources, "DEFAULT_CHECKPOINT", junk)
    with pytest.raises(CheckpointError, match="restore them with `git checkout -- assets/sing_default.pt`"):
        sources.load_default_source("cpu")
    monkeypatch.setattr(sources, "DEFAULT_CHECKPOINT", tmp_path / "gone.pt")
    with pytest.raises(FileNotFoundError, match=r"or set NEUROSYNTH_SING_CHECKPOINT\)$"):
        sources.load_default_source("cpu")
