"""A note on its way from ``note_on`` to the voice that plays it, shared by the engine's three threads.

``Engine.note_on`` (control thread) makes the ticket and hands it to the worker and to the audio side at once:
the worker starts the model for it (into a source slot of its own) while the audio side is still waiting for its
next block to allocate a voice; a note found in the note cache is playable the moment ``note_on`` returns, from
the cached audio, without waiting for the worker at all.

Each field has one writer (Python attribute stores are atomic; the writer publishes ``slot`` last):

* control thread (or the audio side, for notes it starts itself): the request and ``cached``;
* worker: ``start`` (the ring position of the note's first computed sample), then ``slot`` (its source slot);
  ``cancelled`` when the voice was dropped before the worker began it; ``cached`` on a late cache hit;
* audio side: ``read`` (how much of the cached audio it has played) and ``begun`` (handed to the worker).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class NoteTicket:
    __slots__ = (
        "vec",
        "note",
        "velocity",
        "channel",
        "t_event",
        "glide_from",
        "key",
        "cached",
        "begun",
        "slot",
        "start",
        "read",
        "cancelled",
        "gain",
        "expressive",
    )

    def __init__(
        self,
        vec: np.ndarray,
        note: int,
        velocity: int,
        channel: int,
        t_event: float,
        glide_from: int | None = None,
        key: tuple | None = None,
    ):
        self.vec = vec
        self.note = note
        self.velocity = velocity
        self.channel = channel
        self.t_event = t_event  # perf_counter() of the note_on call: latencies count from here
        self.glide_from = glide_from
        self.key = key  # note-cache key (None: the note is not cached, e.g. a glide)
        self.cached = None  # CachedNote: its audio plays first, the source continues after it
        self.begun = False  # handed to the worker
        self.slot = -1  # source slot (worker), published after ``start``
        self.start = 0  # ring position of the first computed sample
        self.read = 0  # samples of the cached audio played (audio side)
        self.cancelled = False
        self.gain = 1.0  # the instrument's own gain (a new instrument played at its neighbours' level)
        self.expressive = False  # an MPE note whose slide moves its vector: kept less far ahead (mpe_slide_ahead_s)


class LatencyLog:
    """The last ``size`` notes' latencies (seconds) and whether each came from the cache.

    Appended from the control thread (cache hits) and the worker (computed notes): a bounded deque, whose
    ``append`` is atomic, so neither thread takes a lock.
    """

    def __init__(self, size: int = 1024):
        self._items: deque[tuple[float, bool]] = deque(maxlen=size)
        self.last = 0.0

    def add(self, latency: float, cached: bool) -> None:
        self._items.append((latency, cached))
        self.last = latency

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        items = list(self._items)  # one C-level copy: no writer runs while it is made
        lat = np.array([x[0] for x in items], np.float64)
        cached = np.array([x[1] for x in items], bool)
        return lat, cached


class StartLog:
    """The last ``size`` notes' latencies from ``note_on`` to the audio block that starts playing them, and whether
    each came from the cache. Written by the audio side only (preallocated: no allocation per note)."""

    def __init__(self, size: int = 1024):
        self._size = size
        self._latency = np.zeros(size, np.float64)
        self._cached = np.zeros(size, bool)
        self._count = 0

    def add(self, latency: float, cached: bool) -> None:
        i = self._count % self._size
        self._latency[i], self._cached[i] = latency, cached
        self._count += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Oldest first (copies)."""
        count = self._count  # (the audio thread may add one meanwhile: the oldest entry is then the newest)
        size = self._size
        if count <= size:
            return self._latency[:count].copy(), self._cached[:count].copy()
        order = np.roll(np.arange(size), -(count % size))  # oldest first
        return self._latency[order], self._cached[order]
