"""Mono mode (legato, last-note priority, glide for sources that glide), set in the config or switched with
set_mono while playing."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine.voice import FREE
from tests.engine_helpers import (
    SR,
    f0_at,
    held,
    held_notes,
    live,
    off,
    on,
    play,
    rms_at,
)


class GlideRecorder(SineSource):
    """A sine source that records the glide_from values the engine passes."""

    supports_glide = True

    def __init__(self):
        super().__init__()
        self.glides: list[int | None] = []

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None, glide_from=None):
        self.glides.extend(glide_from)
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)


def probe(t):
    """An event the engine ignores: code after ``yield probe(t)`` sees the state rendered up to ``t``."""
    return int(t * SR), mido.Message("control_change", control=1, value=0)


def test_mono_line_follows_last_key_and_returns_to_held_key():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR, mono=True))
    events = [(0, on(60)), (int(0.5 * SR), on(64)), (int(1.0 * SR), off(64)), (int(1.5 * SR), off(60))]
    y = e.render_offline(events, int(2.2 * SR))
    assert f0_at(y, 0.1, 0.45) == pytest.approx(midi_to_hz(60), rel=0.01)
    assert f0_at(y, 0.6, 0.95) == pytest.approx(midi_to_hz(64), rel=0.01)  # moved to the new key ...
    assert f0_at(y, 1.1, 1.45) == pytest.approx(midi_to_hz(60), rel=0.01)  # ... and back to the held one
    assert np.abs(y[int(2.0 * SR) :]).max() < 1e-3  # released: silence


def test_mono_never_sounds_two_keys_after_the_crossfade():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR, mono=True, max_voices=8))
    e.render_offline([(0, on(60)), (int(0.2 * SR), on(67)), (int(0.4 * SR), on(72))], int(0.6 * SR))
    for note in (60, 62, 65):  # three note-ons in one block (no worker runs: the voices only wait for it)
        e.note_on(note, 100)
    e.render(256)
    playing = [v for v in e.voices if v.state != 0 and v.rel_len == 0]
    assert [v.note for v in playing] == [65]


def test_mono_releasing_a_key_that_is_not_sounding_changes_nothing():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR, mono=True))
    events = [(0, on(60)), (int(0.2 * SR), on(64)), (int(0.3 * SR), off(60))]
    y = e.render_offline(events, int(0.8 * SR))
    assert f0_at(y, 0.4, 0.8) == pytest.approx(midi_to_hz(64), rel=0.01)


def test_mono_note_off_of_a_key_that_is_not_the_lines_leaves_the_line():
    e = live(mono=True)
    play(e, on(60), on(64), blocks=2)
    play(e, off(60), blocks=1)  # an earlier key: the line (64) keeps sounding
    assert held(e) == [(0, 64)] and e.mono_keys(0) == [(64, 100)]
    play(e, off(64), blocks=1)  # the line's key, nothing held: released
    assert held(e) == []


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
    assert e.mono_keys(0) == [(60, 90)]


def test_mono_passes_the_glide_origin_to_sources_that_glide():
    src = GlideRecorder()
    e = Engine(src, EngineConfig(sample_rate=SR, mono=True))
    events = [(0, on(60)), (int(0.2 * SR), on(64)), (int(0.4 * SR), off(64)), (int(0.6 * SR), off(60))]
    e.render_offline(events, int(0.8 * SR))
    assert src.glides == [None, 60, 64]  # attack, glide up from 60, glide back from 64


def test_poly_mode_is_unchanged_for_glide_sources():
    src = GlideRecorder()
    e = Engine(src, EngineConfig(sample_rate=SR))
    e.render_offline([(0, on(60)), (int(0.2 * SR), on(64))], int(0.4 * SR))
    assert src.glides == [None, None]


def test_set_mono_only_queues_an_event():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    assert e.mono is False
    e.note_on(60, 100)
    e.render(256)
    e.set_mono(True)
    # applied by the audio side, not by the caller: the held key becomes the mono line at the next block
    assert e.mono is True and e.mono_keys(0) == []
    e.render(256)
    assert e.mono_keys(0) == [(60, 100)]


def test_switching_mono_on_while_a_chord_is_held():
    """render_offline pulls events lazily, so the generator can switch modes between two events."""
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    seen = {}

    def events():
        yield 0, on(60)
        yield int(0.2 * SR), on(64)
        yield probe(0.3)
        seen["poly"] = held_notes(e)
        e.set_mono(True)
        yield int(0.5 * SR), on(67)  # legato from the newest held voice (64); 60 keeps sounding
        yield probe(0.6)
        seen["mono"] = held_notes(e)
        yield int(0.8 * SR), off(67)  # back to 64 (held before the switch)
        yield probe(0.9)
        seen["back"] = held_notes(e)
        yield int(1.1 * SR), off(64)
        yield int(1.2 * SR), off(60)

    y = e.render_offline(events(), int(1.8 * SR))
    assert seen["poly"] == [60, 64]
    assert seen["mono"] == [60, 67]
    assert seen["back"] == [60, 64]
    assert rms_at(y, 0.9, 1.0) > 0.01
    assert np.abs(y[int(1.6 * SR) :]).max() < 1e-3  # nothing stuck after the last note-off


def test_switching_mono_on_takes_each_channels_held_keys_in_order():
    e = live()
    play(e, on(60, 70, ch=0), on(62, 80, ch=1), on(64, 90, ch=0), blocks=2)
    play(e, off(62, ch=1), blocks=1)
    e.set_mono(True)
    play(e, blocks=1)
    assert e.mono_keys(0) == [(60, 70), (64, 90)] and e.mono_keys(1) == []
    e.set_mono(False)
    play(e, blocks=1)
    assert e.mono_keys(0) == []


def test_switching_mono_off_keeps_the_sounding_voice():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR, mono=True))
    seen = {}

    def events():
        yield 0, on(60)
        e.set_mono(False)
        yield int(0.4 * SR), on(64)  # poly again: a second voice, 60 is not cut
        yield probe(0.5)
        seen["poly"] = held_notes(e)
        yield int(0.8 * SR), off(60)
        yield int(0.9 * SR), off(64)

    y = e.render_offline(events(), int(1.5 * SR))
    assert seen["poly"] == [60, 64]
    assert estimate_f0(y[int(0.1 * SR) : int(0.39 * SR)], SR) == pytest.approx(midi_to_hz(60), rel=0.01)
    loud = [rms_at(y, t, t + 0.05) for t in np.arange(0.05, 0.75, 0.05)]
    assert min(loud) > 0.5 * max(loud)  # no gap around the switch at 0.4 s
    assert np.abs(y[int(1.3 * SR) :]).max() < 1e-3


def test_mono_mode_survives_offline_resets():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    e.set_mono(True)
    e.render_offline([(0, on(60)), (int(0.2 * SR), on(64))], int(0.3 * SR))
    assert e.mono is True  # and the audio side's mode: the next render plays mono
    seen = {}

    def events():
        yield 0, on(60)
        yield int(0.2 * SR), on(64)
        yield probe(0.25)
        seen["n"] = held_notes(e)

    e.render_offline(events(), int(0.3 * SR))
    assert seen["n"] == [64]
