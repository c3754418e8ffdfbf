"""MPE (MIDI Polyphonic Expression): zones, the MPE Configuration Message, per-note bend, pressure and slide.

A zone is a master channel and its member channels: the lower zone has master channel 1 (index 0) and members
2..n+1, the upper zone master channel 16 (index 15) and members 15..16-n. A controller (LinnStrument, Seaboard,
Osmose ...) plays each note on a member channel of its own, so the channel's pitch bend, channel pressure and
CC74 ("slide") are that note's. The MPE Configuration Message (RPN 6 on a master channel, data entry MSB = the
number of member channels, 0: zone off) sets a zone; ``Engine.set_mpe(True)`` sets the lower zone over all 16
channels for controllers that send none.

Two halves, one per thread:

* :class:`MpeControl` (control side, ``Engine`` and :mod:`.midi_dispatch`): the zones, each channel's RPN
  selection and bend range (members 48 semitones, masters 2, RPN 0 changes them; outside a zone
  ``EngineConfig.bend_range``), and what each member channel last sent: a note-on takes that as its initial state
  (:class:`~.events.NoteExpression`; controllers send the controls before the note-on). A channel's pressure is
  forgotten at its note-off, so the next note plays at its own level until its first pressure.
* :class:`MpeVoices` (audio side): the note each member channel's controls reach (its newest note while its key
  is held or the pedal sustains it; a released note keeps its last controls: a controller that reuses the channel
  sends the next note's initial controls before its note-on, which must not bend the fading one),
  its bend and loudness (read by the mixer every chunk: the rate and the gain glide across the chunk) and its
  slide, sent to the worker (:class:`~.events.NoteVector`, at most one per note per chunk) which moves the note's
  instrument vector in the source (``set_vectors``, SING: the static condition of its next hops).

The master channel's bend, pedal, CC120/123 and program change reach every channel of its zone (the master
bend is the channels' bend: ``Engine.set_pitch_bend`` per channel). Notes on the master channel have no
per-note controls of their own (polyphonic key pressure still sets their loudness).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import mido
import numpy as np

from .events import NoteBend, NoteExpression, NotePressure, NoteSlide, NoteVector
from .voice import FREE, Voice

MEMBER_BEND_RANGE = 48.0  # semitones of a member channel's full pitch-wheel throw (MPE default)
MASTER_BEND_RANGE = 2.0
MAX_BEND_RANGE = 96.0  # the most RPN 0 may set (MPE)
ZONE_CHANNELS = 15  # a zone's members at most (the other zone then has none)

# RPN controllers: select (101 MSB, 100 LSB), data entry (6 MSB, 38 LSB); NRPN selects (99, 98) deselect the RPN
RPN_MSB, RPN_LSB, DATA_MSB, DATA_LSB, NRPN_MSB, NRPN_LSB = 101, 100, 6, 38, 99, 98
RPN_CONTROLS = frozenset((RPN_MSB, RPN_LSB, DATA_MSB, DATA_LSB, NRPN_MSB, NRPN_LSB))
RPN_BEND_RANGE, RPN_MCM, RPN_NULL = (0, 0), (0, 6), (127, 127)


@dataclass(frozen=True)
class Zone:
    """An MPE zone: its master channel and its member channels (0-based)."""

    master: int
    members: tuple[int, ...]

    @property
    def channels(self) -> tuple[int, ...]:
        """The master and the members."""
        return (self.master, *self.members)


def zones_of(lower: int, upper: int) -> list[Zone]:
    """The zones of ``lower`` / ``upper`` member channels (0: that zone off)."""
    out = []
    if lower > 0:
        out.append(Zone(0, tuple(range(1, lower + 1))))
    if upper > 0:
        out.append(Zone(15, tuple(range(14, 14 - upper, -1))))
    return out


def fit_zones(lower: int, upper: int, changed: str) -> tuple[int, int]:
    """Clamp to 0..15 members each; the zone not ``changed`` ("lower" / "upper") shrinks where the two overlap (the
    MPE rule: the newest configuration wins)."""
    lower, upper = min(max(int(lower), 0), ZONE_CHANNELS), min(max(int(upper), 0), ZONE_CHANNELS)
    room = 14  # two zones share 16 channels, two of them masters
    if lower and upper and lower + upper > room:
        if changed == "lower":
            upper = max(0, room - lower)
        else:
            lower = max(0, room - upper)
    return lower, upper


def slide_amount(value: int) -> float:
    """CC74 0..127 -> -1..1, 64 (the MPE default) -> 0."""
    v = min(max(int(value), 0), 127) - 64
    return v / 63.0 if v >= 0 else v / 64.0


def pressure_gain(pressure: float, range_db: float) -> float:
    """Pressure 0..1 -> a linear gain: 0 dB at full pressure, ``-range_db`` at none (``range_db`` 0: always 1)."""
    p = min(max(float(np.nan_to_num(float(pressure))), 0.0), 1.0)
    return float(10.0 ** (-max(0.0, float(range_db)) * (1.0 - p) / 20.0))


def slid_vector(base: np.ndarray, up: np.ndarray | None, down: np.ndarray | None, amount: float) -> np.ndarray:
    """``base`` moved by a slide of ``amount`` (-1..1): toward ``base + up`` above 0, ``base + down`` below."""
    if up is None or amount == 0.0:
        return base
    step = up * amount if amount > 0 else down * -amount
    return (base + step).astype(np.float32)


def carries_mpe(messages: Iterable[mido.Message]) -> bool:
    """Whether ``messages`` (a MIDI file's) set an MPE zone: an MPE Configuration Message with member channels.
    Per-note controls live in the real-time engine's mixer: an offline render of such a file needs its path."""
    rpn = [RPN_NULL] * 16
    for msg in messages:
        if msg.type != "control_change" or msg.channel not in (0, 15):
            continue
        c, v = msg.control, msg.value
        if c == RPN_MSB:
            rpn[msg.channel] = (v, rpn[msg.channel][1])
        elif c == RPN_LSB:
            rpn[msg.channel] = (rpn[msg.channel][0], v)
        elif c in (NRPN_MSB, NRPN_LSB):
            rpn[msg.channel] = RPN_NULL
        elif c == DATA_MSB and rpn[msg.channel] == RPN_MCM and v > 0:
            return True
    return False


class MpeControl:
    """The control side's MPE state (see the module doc). Written by the MIDI thread and the GUI; every field is one
    atomic store."""

    def __init__(self, default_bend_range: float, pressure_db: float):
        self.default_bend_range = float(default_bend_range)
        self.pressure_db = float(pressure_db)
        self.lower = self.upper = 0
        self._zone: tuple[Zone | None, ...] = (None,) * 16  # channel -> its zone
        # the slide direction (up, down), see Engine.set_slide_direction; one tuple: the GUI sets it while the MIDI
        # thread reads it
        self.direction: tuple[np.ndarray, np.ndarray] | None = None
        self.clear()

    def clear(self) -> None:
        """Forget what each channel sent (bends, pressures, slides, RPN selections and bend ranges); the zones and the
        slide direction stay."""
        self.bend = [0.0] * 16  # a member channel's own bend (semitones)
        self.gain: list[float | None] = [None] * 16  # its pressure's gain (None: no pressure since its last note-off)
        self.slide = [0.0] * 16
        self._ranges: list[float | None] = [None] * 16  # set by RPN 0 (None: the default)
        self._rpn: list[tuple[int, int]] = [RPN_NULL] * 16

    # ------------------------------------------------------------------ zones
    @property
    def zones(self) -> tuple[int, int]:
        return self.lower, self.upper

    def set_zones(self, lower: int, upper: int, changed: str = "lower") -> None:
        """Set both zones (member counts); the channels of a zone that changed get their default bend ranges."""
        lower, upper = fit_zones(lower, upper, changed)
        zone: list[Zone | None] = [None] * 16
        for z in zones_of(lower, upper):
            for c in z.channels:
                zone[c] = z
        master = 0 if changed == "lower" else 15
        for c, (was, now) in enumerate(zip(self._zone, zone, strict=True)):
            if was != now or (now is not None and now.master == master):
                self._ranges[c] = None
        self.lower, self.upper = lower, upper
        self._zone = tuple(zone)

    def zone(self, channel: int) -> Zone | None:
        return self._zone[channel]

    def is_member(self, channel: int) -> bool:
        z = self._zone[channel]
        return z is not None and channel != z.master

    # ------------------------------------------------------------------ bend ranges and RPNs
    def bend_range(self, channel: int) -> float:
        """Semitones of ``channel``'s full pitch-wheel throw."""
        r = self._ranges[channel]
        if r is not None:
            return r
        z = self._zone[channel]
        if z is None:
            return self.default_bend_range
        return MASTER_BEND_RANGE if channel == z.master else MEMBER_BEND_RANGE

    def set_bend_range(self, channel: int, semitones: float) -> None:
        """RPN 0: a member channel sets every member's range of its zone (MPE), any other channel its own."""
        r = min(max(float(semitones), 0.0), MAX_BEND_RANGE)
        z = self._zone[channel]
        for c in z.members if z is not None and channel != z.master else (channel,):
            self._ranges[c] = r

    def rpn(self, channel: int, control: int, value: int) -> tuple[tuple[int, int], float] | None:
        """Feed one RPN controller (:data:`RPN_CONTROLS`); returns ``(rpn, value)`` once a data entry completes
        a value (the MSB; the LSB refines the bend range's cents), else None."""
        if control == RPN_MSB:
            self._rpn[channel] = (value, self._rpn[channel][1])
        elif control == RPN_LSB:
            self._rpn[channel] = (self._rpn[channel][0], value)
        elif control in (NRPN_MSB, NRPN_LSB):
            self._rpn[channel] = RPN_NULL  # an NRPN's data entry is not ours
        elif self._rpn[channel] != RPN_NULL:
            rpn = self._rpn[channel]
            if control == DATA_MSB:
                return rpn, float(value)
            if rpn == RPN_BEND_RANGE:  # data LSB: cents
                return rpn, int(self.bend_range(channel)) + value / 100.0
        return None

    # ------------------------------------------------------------------ per-note controls
    def expression(self, channel: int, base_vec: np.ndarray) -> tuple[NoteExpression, np.ndarray]:
        """The initial state of a note-on on member ``channel`` and the instrument vector it starts with."""
        up, down = self.direction or (None, None)
        slide = self.slide[channel]
        gain = self.gain[channel]
        expr = NoteExpression(self.bend[channel], 1.0 if gain is None else gain, slide, base_vec, up, down)
        return expr, slid_vector(base_vec, up, down, slide)

    def note_off(self, channel: int) -> None:
        self.gain[channel] = None

    def set_slide_direction(self, direction: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.direction = direction


class MpeVoices:
    """The audio side's per-note controls (see the module doc)."""

    def __init__(self, voices: list[Voice], worker):
        self._voices = voices
        self._commands = worker.commands  # the worker's deque (append is lock-free; no wake from the audio side)
        self.clear()

    def clear(self) -> None:
        self._note: list[tuple[Voice, object] | None] = [None] * 16  # channel -> (voice, ticket) its controls reach
        self.dirty: list[Voice] = []  # voices whose slide changed in this chunk

    def started(self, v: Voice, expr: NoteExpression) -> None:
        """``v`` began a member channel's note: its initial bend, loudness and slide; its channel's controls reach
        it from now on."""
        v.expression = expr
        v.bend = v.bend_prev = expr.bend
        v.expr_gain = v.expr_gain_prev = expr.gain
        v.slide = expr.slide
        self._note[v.channel] = (v, v.ticket)

    def _voice(self, channel: int) -> Voice | None:
        entry = self._note[channel]
        if entry is None:
            return None
        v, ticket = entry
        if v.state == FREE or v.ticket is not ticket or not (v.held or v.sustained):
            self._note[channel] = None  # released (it keeps its last controls), freed, or stolen for another note
            return None
        return v

    def bend(self, ev: NoteBend) -> None:
        v = self._voice(ev.channel)
        if v is not None:
            v.bend = ev.semitones

    def pressure(self, ev: NotePressure) -> None:
        if ev.note is None:
            v = self._voice(ev.channel)
            if v is not None:
                v.expr_gain = ev.gain
            return
        for v in self._voices:  # polyphonic key pressure: that key's voices on the channel
            if v.state != FREE and v.channel == ev.channel and v.note == ev.note:
                v.expr_gain = ev.gain

    def slide(self, ev: NoteSlide) -> None:
        v = self._voice(ev.channel)
        if v is None or v.expression.up is None or v.slide == ev.amount:
            return
        v.slide = ev.amount
        if not v.slide_dirty:
            v.slide_dirty = True
            self.dirty.append(v)

    def flush(self) -> None:
        """After a chunk's events: one :class:`~.events.NoteVector` per note whose slide changed."""
        for v in self.dirty:
            v.slide_dirty = False
            e = v.expression
            if v.state != FREE and v.ticket is not None and e is not None and e.up is not None:
                self._commands.append(NoteVector(v.ticket, slid_vector(e.base_vec, e.up, e.down, v.slide)))
        self.dirty.clear()
