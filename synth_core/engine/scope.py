"""The output history the GUI's scope reads: a ring of the last ``seconds`` of output samples.

The audio side writes each block (:meth:`Scope.write`); any thread reads a copy of the last samples
(:meth:`Scope.last`). A new output rate replaces the buffer (a reader holding the old one reads it safely).
"""

from __future__ import annotations

import numpy as np


class Scope:
    def __init__(self, seconds: float, sample_rate: int):
        self.seconds = seconds
        self.resize(sample_rate)

    def resize(self, sample_rate: int) -> None:
        """Start an empty history of ``seconds`` at ``sample_rate``."""
        self._buf = np.zeros(max(1, int(self.seconds * sample_rate)), np.float32)
        self._pos = 0

    def write(self, x: np.ndarray) -> None:
        buf = self._buf
        n, size = len(x), len(buf)
        if n >= size:
            buf[:] = x[-size:]
            self._pos = 0
            return
        i = self._pos
        first = min(n, size - i)
        buf[i : i + first] = x[:first]
        buf[: n - first] = x[first:]
        self._pos = (i + n) % size

    def last(self, n: int) -> np.ndarray:
        """The last ``n`` samples written (copy; at most the history's length)."""
        buf = self._buf
        n = max(0, min(int(n), len(buf)))
        end = self._pos
        idx = (np.arange(end - n, end)) % len(buf)
        return buf[idx].copy()
