"""Engine.set_mono while playing: the audio side switches between poly and mono without cutting voices."""

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


def held(engine) -> list[int]:
    """Notes of the voices that sound and are not releasing (audio-side state)."""
    return sorted(v.note for v in engine.voices if v.state != 0 and v.rel_len == 0)


def probe(t):
    """An event the engine ignores: code after ``yield probe(t)`` sees the state rendered up to ``t``."""
    return int(t * SR), mido.Message("control_change", control=1, value=0)


def rms(y, t0, t1):
    return float(np.sqrt(np.mean(y[int(t0 * SR) : int(t1 * SR)] ** 2)))


def test_set_mono_only_queues_an_event():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    assert e.mono is False
    e.set_mono(True)
    assert e.mono is True and e._mono is False  # applied by the audio side, not by the caller
    e.render(256)
    assert e._mono is True


def test_switching_mono_on_while_a_chord_is_held():
    """render_offline pulls events lazily, so the generator can switch modes between two events."""
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    seen = {}

    def events():
        yield 0, on(60)
        yield int(0.2 * SR), on(64)
        yield probe(0.3)
        seen["poly"] = held(e)
        e.set_mono(True)
        yield int(0.5 * SR), on(67)  # legato from the newest held voice (64); 60 keeps sounding
        yield probe(0.6)
        seen["mono"] = held(e)
        yield int(0.8 * SR), off(67)  # back to 64 (held before the switch)
        yield probe(0.9)
        seen["back"] = held(e)
        yield int(1.1 * SR), off(64)
        yield int(1.2 * SR), off(60)

    y = e.render_offline(events(), int(1.8 * SR))
    assert seen["poly"] == [60, 64]
    assert seen["mono"] == [60, 67]
    assert seen["back"] == [60, 64]
    assert rms(y, 0.9, 1.0) > 0.01
    assert np.abs(y[int(1.6 * SR) :]).max() < 1e-3  # nothing stuck after the last note-off


def test_switching_mono_off_keeps_the_sounding_voice():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR, mono=True))
    seen = {}

    def events():
        yield 0, on(60)
        e.set_mono(False)
        yield int(0.4 * SR), on(64)  # poly again: a second voice, 60 is not cut
        yield probe(0.5)
        seen["poly"] = held(e)
        yield int(0.8 * SR), off(60)
        yield int(0.9 * SR), off(64)

    y = e.render_offline(events(), int(1.5 * SR))
    assert seen["poly"] == [60, 64]
    assert estimate_f0(y[int(0.1 * SR) : int(0.39 * SR)], SR) == pytest.approx(midi_to_hz(60), rel=0.01)
    loud = [rms(y, t, t + 0.05) for t in np.arange(0.05, 0.75, 0.05)]
    assert min(loud) > 0.5 * max(loud)  # no gap around the switch at 0.4 s
    assert np.abs(y[int(1.3 * SR) :]).max() < 1e-3


def test_mono_mode_survives_offline_resets():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    e.set_mono(True)
    e.render_offline([(0, on(60)), (int(0.2 * SR), on(64))], int(0.3 * SR))
    assert e._mono is True
    seen = {}

    def events():
        yield 0, on(60)
        yield int(0.2 * SR), on(64)
        yield probe(0.25)
        seen["n"] = held(e)

    e.render_offline(events(), int(0.3 * SR))
    assert seen["n"] == [64]


def test_changed_voice_settings_do_not_replay_cached_notes():
    from synth_core.engine.sine_voice import SineVoiceSource

    src = SineVoiceSource()
    e = Engine(src, EngineConfig(sample_rate=SR))
    note = [(0, on(60))]
    first = e.render_offline(note, int(0.4 * SR))
    again = e.render_offline(note, int(0.4 * SR))
    np.testing.assert_array_equal(first, again)  # cached start
    src.set_settings(attack_s=0.15)
    slow = e.render_offline(note, int(0.4 * SR))
    assert rms(slow, 0.0, 0.05) < 0.5 * rms(first, 0.0, 0.05)  # the new, slower attack is heard
    assert e.stats().cache_hits == 1
