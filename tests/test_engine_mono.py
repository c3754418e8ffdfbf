"""Mono (legato, last-note priority) mode of the engine, with the sine test source."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource

SR = 48000


def on(note, vel=100):
    return mido.Message("note_on", note=note, velocity=vel)


def off(note):
    return mido.Message("note_off", note=note)


def f0_at(y, t0, t1):
    return estimate_f0(y[int(t0 * SR) : int(t1 * SR)], SR)


class GlideRecorder(SineSource):
    """A sine source that records the glide_from values the engine passes."""

    supports_glide = True

    def __init__(self):
        super().__init__()
        self.glides: list[int | None] = []

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None, glide_from=None):
        self.glides.extend(glide_from)
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)


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
    e._apply(("on", 60, 100, 0))  # drive the audio side by hand to inspect voices
    e._apply(("on", 62, 100, 0))
    e._apply(("on", 65, 100, 0))
    playing = [v for v in e.voices if v.state != 0 and v.rel_len == 0]
    assert [v.note for v in playing] == [65]


def test_mono_releasing_a_key_that_is_not_sounding_changes_nothing():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR, mono=True))
    events = [(0, on(60)), (int(0.2 * SR), on(64)), (int(0.3 * SR), off(60))]
    y = e.render_offline(events, int(0.8 * SR))
    assert f0_at(y, 0.4, 0.8) == pytest.approx(midi_to_hz(64), rel=0.01)


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
