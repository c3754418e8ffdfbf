"""Rendered-note cache: the first part of a note plus the model state to continue from.

Keyed by (instrument vector bytes, pitch, velocity); least-recently-used entries are
dropped beyond ``max_entries``. The engine's worker thread writes it; ``note_on`` (control thread) only
``peek``s (a single dict lookup, atomic in CPython).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class CachedNote:
    audio: np.ndarray  # the note's first samples at the model rate
    state: Any  # source state right after ``audio`` (``VoiceSource.save_state``)


class NoteCache:
    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, CachedNote] = OrderedDict()

    @staticmethod
    def key(vec: np.ndarray, pitch: int, velocity: int) -> tuple:
        return (np.asarray(vec, dtype=np.float32).tobytes(), int(pitch), int(velocity))

    def get(self, key: tuple) -> CachedNote | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def peek(self, key: tuple) -> CachedNote | None:
        """The entry for ``key`` without touching its LRU place (safe from another thread)."""
        return self._entries.get(key)

    def put(self, key: tuple, entry: CachedNote) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
