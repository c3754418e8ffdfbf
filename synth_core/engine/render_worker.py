"""The render-ahead worker: owns the source (the model) and keeps every sounding note's ring filled ahead.

The control side (``note_on``) and the audio side hand it :class:`~.events.BeginNote` / :class:`~.events.EndNote`
commands through a deque (lock-free; ``note_on`` also wakes an idle worker). Each pass (:meth:`RenderWorker.
work_once`) ends the notes let go of, begins the new ones (a source slot each, one batched warm-up with the first
two hops, or the note cache's saved state) and steps every active slot whose ring is below the render-ahead
target, least ready first, :data:`STEP_CHUNK` slots per source call. A source with ``supports_between`` calls back
half way through a step: notes that came meanwhile begin there (their end commands wait for the step's end). When
idle after :meth:`start`, the worker primes the source's warm-up for each chord size once.

It also makes the notes' tickets (:meth:`RenderWorker.ticket`: the note cache is its) and keeps the note-on ->
first-sample-ready latency log.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ..device import is_gpu_failure
from .cache import CachedNote, NoteCache
from .config import EngineConfig, EngineStats
from .events import BeginNote, EndNote, NoteVector
from .note_ticket import LatencyLog, NoteTicket
from .ring import SampleRing
from .thread_priority import lower_thread_priority

log = logging.getLogger(__name__)

LATENCY_LOG = 1024  # note-on latencies kept for note_latencies()
STEP_CHUNK = 16  # voices stepped per source call (between calls the worker looks for new notes)


WORKER_NICE = 10  # the worker yields the CPU to the audio threads: it has 0.25 s of slack, the callback one block


class RenderWorker:
    """The worker side of the engine: ``n_src`` source slots, each with its SPSC ring (:attr:`rings`)."""

    def __init__(self, source, config: EngineConfig, n_src: int, stats: EngineStats):
        c = config
        self.source = source
        self.config = config
        self.n_src = n_src
        self.hop = source.hop
        src_rate = source.sample_rate
        self.ahead = max(2 * self.hop, self.hop * math.ceil(c.render_ahead_s * src_rate / self.hop))  # target
        # an MPE note whose slide moves its vector: a slide is heard once what is computed ahead has played
        slide_hops = math.ceil(c.mpe_slide_ahead_s * src_rate / self.hop)
        self.slide_ahead = min(self.ahead, self.hop * max(2, slide_hops))
        self._set_vectors = getattr(source, "set_vectors", None)
        self._prefix = self.hop * max(1, math.ceil(c.cache_prefix_s * src_rate / self.hop))  # cached per note
        ring_cap = self.ahead + self._prefix + 8 * self.hop
        self.rings = [SampleRing(ring_cap) for _ in range(n_src)]
        self.commands: deque[BeginNote | EndNote] = deque()  # from note_on and the audio side
        self._wake = threading.Event()  # note_on wakes an idle worker
        self._stats = stats
        self._cache = NoteCache(c.cache_entries)
        self._cache_ok = c.cache_entries > 0 and hasattr(source, "save_state")
        self._sustain_step = source.sustain_step(c.sustain_s)
        self._glides = bool(getattr(source, "supports_glide", False))
        self._between = self._begin_between if getattr(source, "supports_between", False) else None
        self._prime_next = 1  # the next warm-up batch size the idle worker primes (see _prime_when_idle)
        self.latency = LatencyLog(LATENCY_LOG)  # note_on -> first sample ready
        self.error: BaseException | None = None  # the last exception the worker thread caught
        self.load = 0.0  # the thread's busy fraction over the last 0.25 s
        self._thread: threading.Thread | None = None
        self._running = False
        self._busy = 0.0
        self._busy_since = time.perf_counter()
        self.clear()

    def clear(self) -> None:
        """Drop every command and free every source slot (the thread must not be running)."""
        self.commands.clear()
        self._active: set[int] = set()
        self._expressive: set[int] = set()  # active slots kept only ``slide_ahead`` ahead
        self._moved: dict[int, np.ndarray] = {}  # slot -> the vector a slide gave it, applied after the commands
        self._free_src = list(range(self.n_src - 1, -1, -1))  # pop() hands out slot 0 first
        self._slot_ticket: list[NoteTicket | None] = [None] * self.n_src
        self._waiting_begin: list[NoteTicket] = []  # begun while every source slot was taken
        self._ended_meanwhile: list[NoteTicket] = []  # end commands that came while a step was half done
        self._capture: list[list | None] = [None] * self.n_src
        self._first_pending: dict[int, float] = {}  # source slot -> note-on time (computed notes)

    # ------------------------------------------------------------------ from the other threads
    def ticket(
        self, note: int, velocity: int, ch: int, t_event: float, glide_from: int | None, vec, lookup: bool
    ) -> NoteTicket:
        """A ticket for a note; with ``lookup``, a note-cache hit makes it playable at once."""
        key = None
        if self._cache_ok and glide_from is None:
            # a source's playing settings (a voice's ADSR, glide ...) shape the cached start too
            key = (*NoteCache.key(vec, note, velocity), repr(getattr(self.source, "settings", None)))
        ticket = NoteTicket(vec, note, velocity, ch, t_event, glide_from, key)
        if lookup and key is not None:
            entry = self._cache.peek(key)
            if entry is not None:
                ticket.cached = entry
                self.latency.add(time.perf_counter() - t_event, True)
        return ticket

    def begin(self, ticket: NoteTicket) -> None:
        """Queue the ticket's note to begin (lock-free: the audio side calls it too; see :meth:`wake`)."""
        ticket.begun = True
        self.commands.append(BeginNote(ticket))

    def wake(self) -> None:
        """Wake an idle worker thread (takes the event's lock: never from the audio side)."""
        self._wake.set()

    def end(self, ticket: NoteTicket) -> None:
        """The audio side let go of the ticket's voice: its source slot is freed on the next pass."""
        self.commands.append(EndNote(ticket))

    # ------------------------------------------------------------------ monitoring
    def free_slots(self) -> int:
        """Source slots holding no note."""
        return len(self._free_src)

    def ticket_in(self, slot: int) -> NoteTicket | None:
        """The note the source slot is computing (None: free)."""
        return self._slot_ticket[slot]

    def waiting(self) -> list[NoteTicket]:
        """Notes begun while every source slot was taken (a copy)."""
        return list(self._waiting_begin)

    def cache_size(self) -> int:
        return len(self._cache)

    # ------------------------------------------------------------------ the thread
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if sys.getswitchinterval() > 0.001:
            sys.setswitchinterval(0.001)  # the audio callback must get the GIL quickly
        # everything that exists now (models, tables, the GUI) leaves the garbage collector's full passes: a full pass
        # over them held the GIL for ~70 ms, now and then, which starved voices that had just started
        gc.freeze()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="engine-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _loop(self) -> None:
        lower_thread_priority(WORKER_NICE)
        while self._running:
            try:
                t0 = time.perf_counter()
                did = self.work_once(self.ahead) or self._prime_when_idle()
                t1 = time.perf_counter()
                if did:
                    self._busy += t1 - t0
                else:
                    self._wake.wait(0.001)
                    self._wake.clear()
                span = t1 - self._busy_since
                if span >= 0.25:
                    self.load = min(1.0, self._busy / span)
                    self._busy, self._busy_since = 0.0, t1
            except Exception as exc:  # keep the instrument alive; report through Engine.worker_error
                self.error = exc
                if is_gpu_failure(exc) and getattr(self.source, "fall_back_to_cpu", lambda: False)():
                    log.warning("GPU failed (%s); the engine continues on the CPU", str(exc).splitlines()[0])
                    self._stats.device_name = self.source.device_name
                    continue
                log.exception("engine worker failed")
                time.sleep(0.05)

    def _prime_when_idle(self) -> bool:
        """Let the source prepare its warm-up for one more chord size (1 to ``max_voices`` notes, once each), so that
        no note waits for the first call of a batch size (a SING warm-up creates its oneDNN kernels then, 1-2 ms).
        True if it did."""
        prime = getattr(self.source, "prime", None)
        if prime is None or self._prime_next > self.config.max_voices:
            return False
        prime(self._prime_next)
        self._prime_next += 1
        return True

    # ------------------------------------------------------------------ one pass
    def _fill(self, slot: int) -> int:
        """Computed samples of the (active) slot's note not yet read by the audio side."""
        ring = self.rings[slot]
        return ring.write_pos - max(ring.read_pos, self._slot_ticket[slot].start)

    def _ready_ahead(self, slot: int) -> int:
        """Samples the slot's note has ready ahead of playback (its cached start not yet played counts too)."""
        t = self._slot_ticket[slot]
        n = self._fill(slot)
        if t.cached is not None:
            n += max(0, len(t.cached.audio) - t.read)
        return n

    def work_once(self, target: int) -> bool:
        """Apply commands, then step every slot below ``target`` once. True if work was done."""
        begins, self._waiting_begin = self._waiting_begin, []
        ended, self._ended_meanwhile = self._ended_meanwhile, []
        for ticket in ended:
            self._end_note(ticket)
        did = self._drain_commands(begins, self._end_note)
        if begins:
            self._begin_notes(begins)
            if self.commands:
                return True  # more notes came during the warm-up: start them before the sounding voices' next hop
        cap = self.rings[0].capacity
        ahead = {s: self._ready_ahead(s) for s in self._active}
        near = min(target, self.slide_ahead)
        expressive = self._expressive
        slots = [
            s for s, n in ahead.items() if n < (near if s in expressive else target) and cap - self._fill(s) >= self.hop
        ]
        if not slots:
            return did
        slots.sort(key=lambda s: (ahead[s], s))  # the least ready first: a note that has just started has two hops
        for i in range(0, len(slots), STEP_CHUNK):
            if i and self.commands:
                break  # a new note waits for one chunk at most, not for every voice's hop
            self._step(slots[i : i + STEP_CHUNK], self._between)
        return True

    def _begin_between(self) -> None:
        """Half way through a step (the source calls it): begin the notes that came meanwhile, so that they wait for
        half a step, not a whole one. Their end commands wait for the step's end: a slot of the step half done must
        not be freed and given to a new note under it."""
        begins: list[NoteTicket] = []
        self._drain_commands(begins, self._ended_meanwhile.append)
        if begins:
            self._begin_notes(begins)

    def _drain_commands(self, begins: list[NoteTicket], end: Callable[[NoteTicket], None]) -> bool:
        """Pop every queued command: tickets to begin go to ``begins``, tickets to end to ``end``. True if any."""
        popped = False
        while self.commands:
            cmd = self.commands.popleft()
            popped = True
            kind = type(cmd)
            if kind is BeginNote:
                begins.append(cmd.ticket)
            elif kind is EndNote:
                end(cmd.ticket)
            else:
                self._note_vector(cmd)
        if self._moved:  # the slides of this pass, in one source call
            slots = list(self._moved)
            self._set_vectors(slots, np.stack([self._moved[s] for s in slots]))
            self._moved.clear()
        return popped

    def _note_vector(self, cmd: NoteVector) -> None:
        """An MPE slide: the ticket's note continues with ``cmd.vec`` (a note not begun yet begins with it). Its start
        is no longer the note the cache key names: nothing of it is cached."""
        t = cmd.ticket
        s = t.slot
        if s < 0:  # not begun yet (queued, or waiting for a slot): it begins with the vector
            t.vec, t.key = cmd.vec, None  # (a cached start keeps its entry: _begin_notes moves it after load_state)
            return
        if self._slot_ticket[s] is not t:
            return  # ended meanwhile
        self._capture[s] = None
        if self._set_vectors is not None:
            self._moved[s] = cmd.vec  # (the last one of a pass wins)

    def _step(self, slots: list[int], between: Callable[[], None] | None = None) -> None:
        """One hop of every slot in ``slots`` into its ring (and into its note-cache capture); ``between``: see
        :meth:`_begin_between`."""
        out = self.source.step(slots) if between is None else self.source.step(slots, between)
        for i, s in enumerate(slots):
            self.rings[s].write(out[i])
            t_event = self._first_pending.pop(s, None)
            if t_event is not None:
                self.latency.add(time.perf_counter() - t_event, False)
            cap_state = self._capture[s]
            if cap_state is not None:
                key, buf, n = cap_state
                buf[n : n + self.hop] = out[i]
                n += self.hop
                if n >= len(buf):
                    self._cache.put(key, CachedNote(buf, self.source.save_state(s)))
                    self._capture[s] = None
                else:
                    cap_state[2] = n

    def _end_note(self, ticket: NoteTicket) -> None:
        """Free the ticket's source slot."""
        s = ticket.slot
        if s < 0:
            ticket.cancelled = True  # dropped before it was begun (it may still wait for a slot)
            return
        if self._slot_ticket[s] is not ticket:
            return
        self._slot_ticket[s] = None
        self._active.discard(s)
        self._expressive.discard(s)
        self._moved.pop(s, None)
        self._capture[s] = None
        self._first_pending.pop(s, None)
        self._free_src.append(s)

    def _begin_notes(self, tickets: list[NoteTicket]) -> None:
        """Give each ticket a source slot; warm up the computed notes in one batch with their first two hops, then
        restore the cached notes' state (their voices are already playing the cached audio: they can wait)."""
        cold: list[tuple[int, NoteTicket]] = []
        cached: list[tuple[int, NoteTicket]] = []
        for t in tickets:
            if t.cancelled:
                continue
            if not self._free_src:
                self._waiting_begin.append(t)
                continue
            s = self._free_src.pop()
            t.start = self.rings[s].write_pos
            self._capture[s] = None
            entry = self._cache.get(t.key) if t.key is not None else None  # also keeps a hit's LRU place
            if entry is not None and t.cached is None:  # a hit the control side could not see (begun by the audio side)
                t.cached = entry
                self.latency.add(time.perf_counter() - t.t_event, True)
            if t.cached is not None:  # (still holds its entry if it was evicted since note_on found it)
                cached.append((s, t))
                continue
            cold.append((s, t))
            if t.key is not None:
                self._stats.cache_misses += 1
                self._capture[s] = [t.key, np.zeros(self._prefix, np.float32), 0]
            self._first_pending[s] = t.t_event
        if cold:
            slots = [s for s, _ in cold]
            args = (
                slots,
                np.stack([t.vec for _, t in cold]),
                [t.note for _, t in cold],
                [float(t.velocity) for _, t in cold],
                [self._sustain_step] * len(cold),
            )
            if self._glides:
                self.source.start_many(*args, glide_from=[t.glide_from for _, t in cold])
            else:
                self.source.start_many(*args)
            self._publish(cold)
            self._step(slots)  # the first hop (SING computed it in the warm-up): the voices may start
            # and a second one at once: a voice playing its first hop has only ~10 ms before the resampler runs dry
            self._step(slots)
        for s, t in cached:
            self.source.load_state(s, t.cached.state)
            if t.key is None and self._set_vectors is not None:  # slid before it began (see _note_vector)
                self._set_vectors([s], t.vec[None])
            self._stats.cache_hits += 1
        self._publish(cached)

    def _publish(self, begun: list[tuple[int, NoteTicket]]) -> None:
        for s, t in begun:
            self._slot_ticket[s] = t
            self._active.add(s)
            if t.expressive:
                self._expressive.add(s)
            t.slot = s  # published last: the audio side may read the slot's ring from here on
