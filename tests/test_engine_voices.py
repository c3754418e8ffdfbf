"""A note's life in the engine: its pitch, its start, its release envelope, velocity, clamped values, voice
stealing and the retrigger of a key still sounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synth_core.dsp import band_energy_ratio, estimate_f0, midi_to_hz
from synth_core.engine.voice import FREE, Voice, release_curve
from tests.engine_helpers import (
    BLOCK,
    SR,
    Recorder,
    engine,
    fading,
    held,
    live,
    off,
    on,
    play,
    rms,
    seg,
    sounding,
)


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


def test_a_released_note_fades_over_release_s_and_frees_its_slot():
    e = live(release_s=0.1)
    play(e, on(69), blocks=8)
    peak = np.abs(play(e, blocks=4)).max()
    play(e, off(69), blocks=1)
    tail = play(e, blocks=int(0.1 * SR / BLOCK) + 2)
    assert np.abs(tail[-BLOCK:]).max() == 0.0 and sounding(e) == [] and e.stats().active_voices == 0
    assert np.abs(tail[: BLOCK // 2]).max() > 0.5 * peak  # a fade, not a cut


def test_velocity_zero_is_note_off():
    y = engine().render_offline([(0, on(69)), (SR // 4, on(69, 0))], SR)
    assert np.all(seg(y, 0.6, 1.0) == 0)


@pytest.mark.parametrize(("note", "sounds"), [(0, 0), (-40, 0), (127, 127), (300, 127)])
def test_note_off_is_clamped_like_note_on(note, sounds):
    e = live()
    e.note_on(note, 100)
    play(e, blocks=2)
    assert held(e) == [(0, sounds)]
    e.note_off(note)
    play(e, blocks=1)
    assert held(e) == [] and fading(e) == [(0, sounds)]


@pytest.mark.parametrize(
    ("note", "velocity", "pitch", "vel"), [(200, 300, 127, 127), (-5, 64, 0, 64), (69, 1e9, 69, 127)]
)
def test_odd_note_and_velocity_values_play_clamped(note, velocity, pitch, vel):
    source = Recorder()
    e = live(source)
    e.note_on(note, velocity)
    y = play(e, blocks=4)
    assert [(p, v) for _, p, v, _ in source.starts] == [(pitch, vel)]
    assert np.abs(y).max() > 0.01  # it plays
    if pitch == 69:
        assert estimate_f0(y[BLOCK:], SR) == pytest.approx(440.0, rel=0.01)


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


def test_stealing_takes_a_released_voice_before_the_oldest_held_one():
    e = live(max_voices=3, release_s=2.0, steal_fade_s=1.0)
    play(e, on(60), on(62), on(64))
    play(e, off(62))
    play(e, on(65))
    assert held(e) == [(0, 60), (0, 64), (0, 65)]  # the oldest held key (60) keeps sounding
    assert e.stats().voices_stolen == 1
    stolen = [v for v in e.voices if v.stolen and v.state != FREE]
    assert [v.note for v in stolen] == [62]


def test_when_every_slot_is_fading_the_oldest_fading_one_is_cut():
    e = live(max_voices=1, steal_fade_s=1.0)  # two slots
    play(e, on(60))
    play(e, on(62))  # 60 fades in its slot, 62 takes the other
    play(e, on(64))  # 62 fades too: no slot is free, the older fade (60) is cut for 64
    assert held(e) == [(0, 64)] and fading(e) == [(0, 62)]
    assert e.stats().voices_stolen == 2
