"""One voice's audio-side state (which note it plays, its release envelope) and the release curve."""

from __future__ import annotations

import math

import numpy as np

from .note_ticket import NoteTicket
from .resampler import VoiceResampler

FREE, WAITING, PLAYING = 0, 1, 2  # WAITING: given a note whose first hop is not ready yet
_DECAY = math.log(1000.0)  # release reaches -60 dB before its final fade to 0
_DECAY_END = math.exp(-_DECAY)


def release_curve(x: np.ndarray) -> np.ndarray:
    """Exponential fade 1 -> 0 over x in [0, 1] (exactly 0 from x = 1)."""
    x = np.clip(x, 0.0, 1.0)
    return (np.exp(-_DECAY * x) - _DECAY_END) / (1.0 - _DECAY_END)


class Voice:
    """Audio-side state of one slot."""

    def __init__(self, slot: int, resampler: VoiceResampler):
        self.slot = slot
        self.resampler = resampler
        self.state = FREE
        self.note = -1
        self.channel = 0
        self.order = 0
        self.velocity = 0
        self.gain = 1.0
        self.held = False
        self.sustained = False
        self.stolen = False
        self.rel_len = 0  # >0: releasing over this many output samples
        self.rel_pos = 0
        self.rel_level = 1.0
        self.ticket: NoteTicket | None = None  # the note this voice plays (its audio: cached, then the ring)
        self.ring_open = False  # reading the ticket's source slot ring (after any cached audio)
        self.clear_expression()

    def clear_expression(self) -> None:
        """No per-note controls (MPE, :mod:`.mpe`): no own bend, its own level, no slide."""
        self.bend = self.bend_prev = 0.0  # the note's own bend (semitones) now / at the end of the last chunk
        self.expr_gain = self.expr_gain_prev = 1.0  # its pressure's gain now / at the end of the last chunk
        self.expression = None  # NoteExpression of an MPE member note (its vector and slide directions)
        self.slide = 0.0
        self.slide_dirty = False  # a slide to send to the worker after this chunk's events

    def level(self) -> float:
        if self.rel_len <= 0:
            return 1.0
        return self.rel_level * float(release_curve(np.array([self.rel_pos / self.rel_len]))[0])

    def release(self, samples: int) -> None:
        """Start (or shorten) the release; keeps the current level (no jump)."""
        samples = max(1, int(samples))
        if self.rel_len > 0 and self.rel_len - self.rel_pos <= samples:
            return
        self.rel_level = self.level()
        self.rel_len = samples
        self.rel_pos = 0
        self.held = False
        self.sustained = False
