"""Single-producer / single-consumer sample ring (preallocated numpy, no locks).

The producer only moves ``write_pos``, the consumer only ``read_pos`` (both grow
monotonically; Python int assignment is atomic). The producer publishes ``write_pos``
after copying, so the consumer never sees half-written samples. A new note's consumer starts
reading at the position its producer noted before writing the note's first sample (the
engine's ``NoteTicket.start``), skipping what was left of the slot's previous note.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.buf = np.zeros(self.capacity, dtype=np.float32)
        self.write_pos = 0
        self.read_pos = 0

    def fill(self) -> int:
        """Samples ready for the consumer."""
        return self.write_pos - self.read_pos

    def write(self, x: np.ndarray) -> None:
        """Producer: append ``x`` (the caller checked there is space)."""
        n = len(x)
        i = self.write_pos % self.capacity
        first = min(n, self.capacity - i)
        self.buf[i : i + first] = x[:first]
        if first < n:
            self.buf[: n - first] = x[first:]
        self.write_pos += n

    def read_into(self, dst: np.ndarray, n: int) -> None:
        """Consumer: move the next ``n`` ready samples into ``dst[:n]``."""
        i = self.read_pos % self.capacity
        first = min(n, self.capacity - i)
        dst[:first] = self.buf[i : i + first]
        if first < n:
            dst[first:n] = self.buf[: n - first]
        self.read_pos += n
