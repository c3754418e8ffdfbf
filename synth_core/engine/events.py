"""Typed messages between the engine's threads.

Control events (``Engine.note_on`` ... -> the audio side, through a deque): small frozen dataclasses, values
already clamped by the control call. ``channel`` None means every channel (or, for an instrument vector, the
default one). The audio side dispatches on the event's class (:mod:`.audio_side`).

Per-note expression (MPE, :mod:`.mpe`): a zone member channel's note-on carries its :class:`NoteExpression` (what
its channel sent before it); :class:`NoteBend`, :class:`NotePressure` and :class:`NoteSlide` then reach the note
sounding on their channel.

Worker commands (the control or the audio side -> the worker, through a second deque): :class:`BeginNote`,
:class:`EndNote` and :class:`NoteVector`, each carrying a :class:`~.note_ticket.NoteTicket`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .note_ticket import NoteTicket


@dataclass(frozen=True, slots=True)
class NoteExpression:
    """A zone member note's per-note state at its note-on (MPE): what its channel sent before it."""

    bend: float  # semitones (the channel's own bend; the zone's master bend is the channel bend)
    gain: float  # the pressure's loudness (1: no pressure sent yet)
    slide: float  # -1..1 (CC74 64: 0)
    base_vec: np.ndarray  # the note's instrument vector before the slide
    up: np.ndarray | None  # what a slide of +1 adds to it (None: slides do not move this note)
    down: np.ndarray | None  # what a slide of -1 adds to it


@dataclass(frozen=True, slots=True)
class NoteOn:
    note: int
    velocity: int
    channel: int
    t_event: float | None = None  # perf_counter() of the note_on call (latencies count from here)
    ticket: NoteTicket | None = None  # made (and maybe begun) by note_on; None: the audio side makes one
    expression: NoteExpression | None = None  # an MPE zone member's note: its per-note controls follow it


@dataclass(frozen=True, slots=True)
class NoteOff:
    note: int
    channel: int


@dataclass(frozen=True, slots=True)
class Sustain:
    on: bool
    channel: int | None


@dataclass(frozen=True, slots=True)
class NotesOff:
    """Release every note (sustained ones too) and lift the pedal (CC123)."""

    channel: int | None


@dataclass(frozen=True, slots=True)
class SoundOff:
    """Fade every voice in ``panic_fade_s`` (CC120); voices not heard yet are dropped."""

    channel: int | None


@dataclass(frozen=True, slots=True)
class Bend:
    semitones: float
    channel: int | None


@dataclass(frozen=True, slots=True)
class NoteBend:
    """The per-note bend (semitones) of the note sounding on ``channel`` (MPE member channel)."""

    channel: int
    semitones: float


@dataclass(frozen=True, slots=True)
class NotePressure:
    """The loudness (linear gain from the pressure) of the note sounding on ``channel``; with ``note`` (polyphonic
    key pressure), of that note on the channel."""

    channel: int
    gain: float
    note: int | None = None


@dataclass(frozen=True, slots=True)
class NoteSlide:
    """The slide (-1..1, CC74) of the note sounding on ``channel``: a move of its instrument vector."""

    channel: int
    amount: float


@dataclass(frozen=True, slots=True)
class InstrumentVector:
    vec: np.ndarray
    channel: int | None
    gain: float = 1.0


@dataclass(frozen=True, slots=True)
class Gain:
    gain: float


@dataclass(frozen=True, slots=True)
class Mono:
    on: bool


@dataclass(frozen=True, slots=True)
class SampleRate:
    rate: int


# settings that Engine.reset() applies instead of dropping (it drops queued notes)
SETTINGS = (InstrumentVector, Gain, SampleRate, Mono)


@dataclass(frozen=True, slots=True)
class BeginNote:
    ticket: NoteTicket


@dataclass(frozen=True, slots=True)
class EndNote:
    ticket: NoteTicket


@dataclass(frozen=True, slots=True)
class NoteVector:
    """The ticket's note continues with instrument vector ``vec`` (an MPE slide, from the audio side)."""

    ticket: NoteTicket
    vec: np.ndarray


def clamp_int(x, lo: int, hi: int) -> int:
    """``x`` as an int in [lo, hi]; ``lo`` for anything that is not a number."""
    try:
        return int(min(max(int(x), lo), hi))
    except (TypeError, ValueError, OverflowError):
        return lo


def channel_index(channel) -> int:
    """A MIDI channel 0..15 (None: 0)."""
    return clamp_int(channel if channel is not None else 0, 0, 15)
