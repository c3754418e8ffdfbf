"""The render-ahead worker on its own (RenderWorker's API): notes that arrive while it steps the sounding ones."""

from __future__ import annotations

import time

import numpy as np

from synth_core.engine import EngineConfig
from synth_core.engine.config import EngineStats
from synth_core.engine.render_worker import RenderWorker
from tests.engine_helpers import (
    SR,
    CountingSource,
)


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


def worker_for(source, max_voices: int) -> RenderWorker:
    """A worker with the source slots an engine of ``max_voices`` gives it (3 x max_voices), no thread."""
    n_src = 3 * max_voices
    source.prepare(n_src)
    return RenderWorker(source, EngineConfig(sample_rate=SR, max_voices=max_voices), n_src, EngineStats())


def begin(w: RenderWorker, note: int):
    """What note_on hands the worker: a ticket to begin."""
    ticket = w.ticket(note, 100, 0, time.perf_counter(), None, w.source.instrument_table[0], True)
    w.begin(ticket)
    return ticket


def test_a_note_arriving_during_a_step_begins_half_way_and_no_slot_is_freed_under_the_step():
    src = HalfwaySource()
    w = worker_for(src, max_voices=1)  # three source slots
    for note in (60, 62, 64):  # take every source slot (60 in slot 0)
        begin(w, note)
    w.work_once(w.ahead)
    ticket60 = w.ticket_in(0)
    assert ticket60.note == 60 and w.free_slots() == 0
    w.rings[0].read_pos = w.rings[0].write_pos  # slot 0 played what it had: it is stepped next

    def meanwhile(slots):
        src.during = None
        assert 0 in slots
        w.end(ticket60)  # the audio side lets go of note 60 ...
        begin(w, 67)  # ... and a new note comes: it may not take slot 0 while slot 0 is half stepped

    src.during = meanwhile
    src.events.clear()
    w.work_once(w.ahead)
    step = next(i for i, ev in enumerate(src.events) if ev[0] == "step" and 0 in ev[1])
    assert src.events[step + 1] == ("stepped", src.events[step][1])  # 67 found no free slot half way: it waits
    assert w.ticket_in(0) is ticket60 and w.waiting()[0].note == 67
    w.work_once(w.ahead)  # the next pass ends 60, then begins 67 in the freed slot
    assert ("start", [0], [67]) in src.events and w.ticket_in(0).note == 67


def test_a_note_arriving_during_a_step_is_begun_before_the_step_ends():
    src = HalfwaySource()
    w = worker_for(src, max_voices=4)
    begin(w, 60)
    w.work_once(w.ahead)
    w.rings[0].read_pos = w.rings[0].write_pos
    src.during = lambda slots: begin(w, 67)
    src.events.clear()
    w.work_once(w.ahead)
    step = next(i for i, ev in enumerate(src.events) if ev[0] == "step" and 0 in ev[1])
    started = src.events.index(("start", [1], [67]))
    assert step < started < src.events.index(("stepped", src.events[step][1]))  # begun (first hops too) half way
    latency, cached = w.latency.arrays()
    assert len(latency) == 2 and not cached.any()
