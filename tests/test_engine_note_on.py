"""The note-on path: ``note_on`` hands its note to the worker and the audio side at once, a cached note plays
without the worker, no source slot is lost when notes are dropped before the worker begins them, and the
latency logs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource
from tests.engine_helpers import (
    SR,
    CountingSource,
    on,
)


def test_a_cached_note_plays_from_note_on_without_the_worker():
    src = CountingSource()
    e = Engine(src, EngineConfig(sample_rate=SR, cache_prefix_s=0.1))
    reference = e.render_offline([(0, on(69))], SR // 10)  # renders note 69 and caches its first 0.1 s
    assert src.started == [69]
    e.note_on(69, 100)  # the worker is not running: nothing but the audio side plays it
    latency, cached = e.note_latencies()
    assert cached.tolist() == [False, True] and 0 < latency[-1] < latency[0] + 1.0
    y = np.concatenate([e.render(256).copy() for _ in range(12)])  # 64 ms, inside the cached 0.1 s
    # the resampler's phase is kept relative to its buffered input, which arrives in other amounts here: ~1e-5
    np.testing.assert_allclose(y, reference[: len(y)], atol=1e-4)
    assert estimate_f0(y[SR // 100 :], SR) == pytest.approx(440.0, rel=0.01)
    assert src.started == [69] and e.stats().underruns == 0
    start, start_cached = e.note_start_latencies()
    assert start_cached.tolist() == [False, True] and start[-1] > 0


def test_the_worker_starts_a_note_before_the_audio_side_gives_it_a_voice():
    src = CountingSource()
    e = Engine(src, EngineConfig(sample_rate=SR))
    e.start()
    try:
        e.note_on(64, 90)
        deadline = time.monotonic() + 10.0
        while not len(e.note_latencies()[0]) and time.monotonic() < deadline:
            time.sleep(0.005)  # render() is never called: no voice exists yet
        assert src.started == [64]
        assert e.note_latencies()[1].tolist() == [False]
        assert all(v.ticket is None for v in e.voices)
        y = np.concatenate([e.render(256).copy() for _ in range(4)])  # the first hop is already there
        assert np.max(np.abs(y)) > 0.01 and e.stats().underruns == 0
    finally:
        e.stop()


def test_a_note_dropped_before_the_worker_begins_it_is_never_started():
    src = CountingSource()
    e = Engine(src, EngineConfig(sample_rate=SR))
    e.note_on(60, 100)
    e.render(256)  # the audio side gives it a voice; the worker has not run
    e.all_sound_off()
    e.render(256)  # not heard yet: the voice is dropped at once
    assert all(v.ticket is None for v in e.voices)
    e.synchronous = True
    e.render(256)  # the worker's pass (run by render) now sees the begin and the end together
    assert src.started == [] and e.free_source_slots() == e.n_src


def test_a_burst_of_notes_beyond_every_slot_keeps_the_newest_and_frees_the_rest():
    src = CountingSource()
    e = Engine(src, EngineConfig(sample_rate=SR, max_voices=2, cache_entries=0))
    burst = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76]  # 10 notes at once: 2 voices, 6 source slots
    y = e.render_offline([(0, on(n)) for n in burst], SR // 2)
    assert src.started == [74, 76]  # the stolen ones never reached the model
    assert estimate_f0(y[SR // 10 :], SR) > 0  # something sounds
    e.start()
    try:
        for n in burst * 3:  # in real time: notes, steals and ends race with the worker
            e.note_on(n, 100)
            e.render(256)
        e.all_sound_off()
        deadline = time.monotonic() + 10.0
        while e.free_source_slots() < e.n_src and time.monotonic() < deadline:
            e.render(256)
            time.sleep(0.005)
    finally:
        e.stop()
    e.synchronous = True  # whatever was still queued for the worker (or waiting for a slot) is handled now
    e.render(256)
    assert e.free_source_slots() == e.n_src


def test_a_glide_replaces_the_ticket_note_on_began_without_it():
    """Mono switched on while the control side still thought poly: the audio side chooses a glide and begins the
    note again with it (the first begin is ended, never played)."""
    from synth_core.engine.sine_voice import SineVoiceSource

    class RacingVoice(SineVoiceSource):
        """Runs ``meanwhile`` (once) when note_on reads its settings: after note_on chose to begin the note itself,
        before it queues the note for the audio side (as another thread's set_mono(True) could)."""

        meanwhile = None

        @property
        def settings(self):
            if self.meanwhile is not None:
                run, self.meanwhile = self.meanwhile, None
                run()
            return self._settings

        @settings.setter
        def settings(self, value):
            self._settings = value

    src = RacingVoice()
    e = Engine(src, EngineConfig(sample_rate=SR))
    e.note_on(60, 100)
    e.render(256)
    src.meanwhile = lambda: e.set_mono(True)  # on its way to the audio side ahead of the next note
    e.note_on(67, 100)  # begun by note_on without a glide
    e.render(256)
    glides = [v.ticket.glide_from for v in e.voices if v.ticket is not None]
    assert 60 in glides  # the new voice glides from the line's note
    e.synchronous = True
    for _ in range(8):
        e.render(256)
    # the first note has faded out; what the model still plays is the gliding note (the replaced begin was ended)
    assert [v.ticket.glide_from for v in e.voices if v.ticket is not None] == [60]
    assert e.free_source_slots() == e.n_src - 1
    y = np.concatenate([e.render(256).copy() for _ in range(40)])
    assert e.stats().underruns == 0 and np.abs(y[-256:]).max() > 0.01  # its slot is the one still computed


class PrimedSource(CountingSource):
    """Records the warm-up batch sizes the engine primes."""

    def __init__(self):
        super().__init__()
        self.primed: list[int] = []

    def prime(self, batch: int) -> None:
        self.primed.append(batch)


def test_the_idle_worker_primes_every_chord_size_once_and_offline_rendering_never_does():
    src = PrimedSource()
    cfg = EngineConfig(sample_rate=SR, max_voices=6)
    e = Engine(src, cfg)
    e.render_offline([(0, on(60))], SR // 10)
    assert src.primed == [] and src.started == [60]
    e.start()
    try:
        e.note_on(64, 90)  # a note played while the worker primes is started too
        deadline = time.monotonic() + 10.0
        while len(src.primed) < cfg.max_voices and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
    finally:
        e.stop()
    assert src.primed == list(range(1, cfg.max_voices + 1))
    assert src.started == [60, 64]


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


def test_note_start_latencies_come_oldest_first_after_the_log_wraps():
    e = Engine(CountingSource(), EngineConfig(sample_rate=SR, cache_prefix_s=0.1))
    e.render_offline([(0, on(69))], SR // 10)  # cold; caches note 69
    for _ in range(1100):  # cached starts (no worker needed), more than the log keeps
        e.note_on(69, 100)
        e.render(256)
        e.note_off(69)
    e.render_offline([(0, on(72))], SR // 10)  # cold again: the newest entry
    latency, cached = e.note_start_latencies()
    assert len(latency) == 1024 and cached[:-1].all() and not cached[-1]
