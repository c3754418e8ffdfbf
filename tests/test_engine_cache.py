"""The note cache: a repeated note starts from cached audio and the saved model state, identical to an uncached
start; its key (instrument, velocity, the source's settings) and its size."""

from __future__ import annotations

import numpy as np

from synth_core.engine import Engine, EngineConfig, SingSource
from synth_core.engine.cache import CachedNote, NoteCache
from tests.engine_helpers import (
    SR,
    engine,
    off,
    on,
    rms_at,
    tiny_sing_source,
)


def test_cache_hit_equals_uncached_audio(tiny_model, tiny_instruments):
    src = tiny_sing_source(tiny_model, tiny_instruments)
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


def test_cache_never_replays_another_instrument_or_velocity(tiny_model, tiny_instruments):
    def engine() -> Engine:
        return Engine(SingSource(tiny_model, tiny_instruments), EngineConfig(sample_rate=SR, cache_prefix_s=0.1))

    def note(e: Engine, instrument: int, velocity: int) -> np.ndarray:
        e.set_instrument(instrument)
        return e.render_offline([(0, on(60, velocity)), (SR // 4, off(60))], SR // 2)

    e = engine()
    first = note(e, 0, 100)
    other_instrument, other_velocity = note(e, 1, 100), note(e, 0, 40)
    assert e.stats().cache_hits == 0 and e.stats().cache_misses == 3
    again = note(e, 0, 100)
    assert e.stats().cache_hits == 1
    np.testing.assert_allclose(again, first, atol=1e-5)
    # each other note is what an engine without that cache entry plays, and not the cached note
    np.testing.assert_allclose(other_instrument, note(engine(), 1, 100), atol=1e-6)
    np.testing.assert_allclose(other_velocity, note(engine(), 0, 40), atol=1e-6)
    for other in (other_instrument, other_velocity):
        assert np.abs(other - first).max() > 1e-4


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
    assert rms_at(slow, 0.0, 0.05) < 0.5 * rms_at(first, 0.0, 0.05)  # the new, slower attack is heard
    assert e.stats().cache_hits == 1


def test_cache_is_bounded():
    e = engine(cache_entries=3, cache_prefix_s=0.02)
    for n in range(6):
        e.render_offline([(0, on(60 + n))], SR // 10)
    assert e.stats().cache_misses == 6
    for n in (63, 64, 65):  # the three newest notes replay from the cache
        e.render_offline([(0, on(n))], SR // 10)
    assert e.stats().cache_hits == 3
    e.render_offline([(0, on(62))], SR // 10)  # the fourth newest was dropped: three entries
    assert e.stats().cache_hits == 3 and e.stats().cache_misses == 7


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


def test_a_cached_bank_note_in_a_chord_equals_the_uncached_chord():
    """A harmonic-bank note restored from the cache into whatever slot is free goes on at its own pitch and phase
    after its cached start (the slot's previous note leaves nothing behind): the chord sounds as without cache."""
    from tests.test_harmonic_bank import bank_model

    model = bank_model(atoms=False)
    e = Engine(SingSource(model), EngineConfig(cache_prefix_s=0.1))
    e.render_offline([(0, on(67)), (0, on(60)), (SR // 4, off(67)), (SR // 4, off(60))], SR // 2)  # both cached
    chord = [(0, on(72)), (0, on(64)), (400, on(60)), (800, on(67)), (SR // 2, off(60)), (SR // 2, off(67))]
    got = e.render_offline(chord, SR)
    assert e.stats().cache_hits == 2
    ref = Engine(SingSource(model), EngineConfig(cache_entries=0)).render_offline(chord, SR)
    assert np.max(np.abs(ref)) > 0.01
    assert np.linalg.norm(got - ref) < 1e-4 * np.linalg.norm(ref)  # (float32: warm-ups batched otherwise)
