"""The note-on path: ``note_on`` hands its note to the worker and the audio side at once, a cached note plays
without the worker, and no source slot is lost when notes are dropped before the worker begins them."""

from __future__ import annotations

import time

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource

SR = 48000


def on(note: int, vel: int = 100) -> mido.Message:
    return mido.Message("note_on", note=note, velocity=vel)


class CountingSource(SineSource):
    """Records every warm-up (the notes it started)."""

    def __init__(self):
        super().__init__()
        self.started: list[int] = []

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None) -> None:
        self.started += [int(p) for p in pitches]
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)


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
    e._work_once(4096)  # the worker now sees the begin and the end together
    assert src.started == [] and len(e._free_src) == e.n_src and not e._active


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
        while (len(e._free_src) < e.n_src or e._commands) and time.monotonic() < deadline:
            e.render(256)
            time.sleep(0.005)
        assert len(e._free_src) == e.n_src and not e._active and not e._waiting_begin
    finally:
        e.stop()


def test_a_glide_replaces_the_ticket_note_on_began_without_it():
    """Mono switched on while the control side still thought poly: the audio side chooses a glide and begins the
    note again with it (the first begin is ended, never played)."""
    from synth_core.engine.sine_voice import SineVoiceSource

    src = SineVoiceSource()
    e = Engine(src, EngineConfig(sample_rate=SR, mono=True))
    e._mono_requested = False  # as if set_mono(True) were still on its way to the audio side
    e.note_on(60, 100)
    e.render(256)
    e.note_on(67, 100)  # begun by note_on without a glide
    e.render(256)
    glides = [v.ticket.glide_from for v in e.voices if v.ticket is not None]
    assert 60 in glides  # the new voice glides from the line's note
    for _ in range(8):
        e._work_once(4096)
        e.render(256)
    # the first note has faded out; what the model still plays is the gliding note (the replaced begin was ended)
    assert [e._slot_ticket[s].glide_from for s in e._active] == [60]
    assert len(e._free_src) == e.n_src - 1


def test_a_sing_state_saved_before_the_first_step_keeps_the_first_hop(tiny_model, tiny_instruments):
    """SING's warm-up computes a note's first hop ahead; a state saved before it is stepped out carries it."""
    from synth_core.engine import SingSource

    src = SingSource(tiny_model, tiny_instruments)
    src.prepare(3)
    src.start_many([0], src.instrument_table[:1], [60], [100.0])
    state = src.save_state(0)
    first = src.step([0])
    src.load_state(1, state)
    np.testing.assert_array_equal(src.step([1]), first)
    np.testing.assert_allclose(src.step([1]), src.step([0]), atol=1e-6)  # and both go on alike
    src.load_state(2, src.save_state(0))  # saved after the first hop: nothing pending
    assert 2 not in src.streamer.pending and np.abs(first).max() > 0


def test_starting_the_engine_takes_what_exists_out_of_full_garbage_collections():
    """A full collection over the models and the GUI held the GIL for ~70 ms now and then (voices underran)."""
    import gc

    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    gc.unfreeze()
    e.start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        e.stop()


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


class HalfwaySource(CountingSource):
    """Calls ``between`` half way through a step, after ``during(slots)`` (what other threads do meanwhile)."""

    supports_between = True

    def __init__(self):
        super().__init__()
        self.events: list[tuple] = []
        self.during = None

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None) -> None:
        self.events.append(("start", list(slots), [int(p) for p in pitches]))
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)

    def step(self, slots, between=None) -> np.ndarray:
        self.events.append(("step", list(slots)))
        if between is not None:
            if self.during is not None:
                self.during(list(slots))
            between()
        self.events.append(("stepped", list(slots)))
        return super().step(slots)


def test_a_note_arriving_during_a_step_begins_half_way_and_no_slot_is_freed_under_the_step():
    src = HalfwaySource()
    e = Engine(src, EngineConfig(sample_rate=SR, max_voices=1))  # three source slots
    for note in (60, 62, 64):  # take every source slot (60 in slot 0)
        e.note_on(note, 100)
    e._work_once(e._ahead)
    ticket60 = e._slot_ticket[0]
    assert ticket60.note == 60 and not e._free_src
    e.rings[0].read_pos = e.rings[0].write_pos  # slot 0 played what it had: it is stepped next

    def meanwhile(slots):
        src.during = None
        assert 0 in slots
        e._commands.append(("end", ticket60))  # the audio side lets go of note 60 ...
        e.note_on(67, 100)  # ... and a new note comes: it may not take slot 0 while slot 0 is half stepped

    src.during = meanwhile
    src.events.clear()
    e._work_once(e._ahead)
    step = next(i for i, ev in enumerate(src.events) if ev[0] == "step" and 0 in ev[1])
    assert src.events[step + 1] == ("stepped", src.events[step][1])  # 67 found no free slot half way: it waits
    assert e._slot_ticket[0] is ticket60 and e._waiting_begin[0].note == 67
    e._work_once(e._ahead)  # the next pass ends 60, then begins 67 in the freed slot
    assert ("start", [0], [67]) in src.events and e._slot_ticket[0].note == 67


def test_a_note_arriving_during_a_step_is_begun_before_the_step_ends():
    src = HalfwaySource()
    e = Engine(src, EngineConfig(sample_rate=SR, max_voices=4))
    e.note_on(60, 100)
    e._work_once(e._ahead)
    e.rings[0].read_pos = e.rings[0].write_pos
    src.during = lambda slots: e.note_on(67, 100)
    src.events.clear()
    e._work_once(e._ahead)
    step = next(i for i, ev in enumerate(src.events) if ev[0] == "step" and 0 in ev[1])
    started = src.events.index(("start", [1], [67]))
    assert step < started < src.events.index(("stepped", src.events[step][1]))  # begun (first hops too) half way
    latency, cached = e.note_latencies()
    assert len(latency) == 2 and not cached.any()
