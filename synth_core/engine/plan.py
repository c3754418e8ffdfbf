"""The plan of an offline render: which notes sound when, at what level and rate, decided by the engine itself.

Batch offline rendering (``sing-render``) runs the engine's own event handling (MIDI dispatch, the voice allocator,
stealing, the sustain pedal, mono, pitch bend, the audio side's chunking) over the whole file with a
:class:`PlanSource` that computes nothing and a :class:`PlanMixer` that records, instead of mixing, what each voice
plays: a :class:`PlannedNote` (the note the source was asked for, its first and last output sample, its gain, its
releases) and each channel's resampling rate chunk by chunk. :mod:`.note_mixer` then renders those notes, computed
in batches, into the same samples the real-time mixer would have produced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import mido
import numpy as np

from .config import EngineConfig
from .engine import Engine
from .mixer import MAX_CHUNK, Mixer
from .voice import FREE, WAITING


@dataclass
class PlannedNote:
    """One note as a voice played it: output samples ``start``..``end`` (exclusive) at ``gain``; each release is
    ``(frame, length, level)``: from ``frame`` on it fades from ``level`` to 0 over ``length`` samples."""

    vec: np.ndarray
    note: int
    velocity: int
    glide_from: int | None
    channel: int
    start: int
    gain: float
    end: int = -1
    releases: list[tuple[int, int, float]] = field(default_factory=list)

    def key(self) -> tuple:
        """Notes with equal keys are the same source audio."""
        return (self.vec.tobytes(), self.note, self.velocity, self.glide_from)


@dataclass
class Plan:
    """The notes of a render (by start), each channel's rate where it was ever bent, the master gain's changes."""

    notes: list[PlannedNote]
    rates: dict[int, list[list[float]]]  # channel -> [start, end, r0, r1] segments (chunk aligned, merged)
    master: list[tuple[int, float]]  # (frame, gain) from that frame on
    base_rate: float  # source samples per output sample without bend
    limiter_threshold: float
    sustain_step: int | None  # what the source's notes were started with
    total_frames: int

    def spans(self, note: PlannedNote) -> list[tuple[int, float, float]]:
        """The note's resampling as ``(frames, r0, r1)`` chunks (the rate glides from r0 to r1 across a chunk)."""
        segments = self.rates.get(note.channel)
        if not segments:
            return [(note.end - note.start, self.base_rate, self.base_rate)]
        spans = []
        pos = note.start
        for a, b, r0, r1 in segments:
            if b <= pos or a >= note.end:
                continue
            if a > pos:  # before the channel's first bend: the unbent rate
                spans.append((int(a - pos), self.base_rate, self.base_rate))
                pos = int(a)
            stop = int(min(b, note.end))
            if r0 != r1 and (a < pos or stop < b):
                raise AssertionError("a rate glide is one chunk, and notes start and end at chunk edges")
            spans.append((stop - pos, r0, r1))
            pos = stop
        if pos < note.end:
            spans.append((note.end - pos, self.base_rate, self.base_rate))
        return spans


class PlanSource:
    """Stands in for ``source`` while planning: the same rates, instruments and settings, no audio computed."""

    models_velocity = True
    supports_glide = False

    def __init__(self, source):
        self.source = source
        self.sample_rate = source.sample_rate
        self.hop = source.hop
        self.instruments = source.instruments
        self.instrument_table = source.instrument_table
        self.instrument_gains = getattr(source, "instrument_gains", None)
        self.device_name = source.device_name
        self.models_velocity = bool(source.models_velocity)
        self.supports_glide = bool(getattr(source, "supports_glide", False))  # mono lines glide as they would
        self._silence = np.zeros((0, self.hop), np.float32)

    def prepare(self, n_slots: int) -> None:
        self._silence = np.zeros((n_slots, self.hop), np.float32)

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None, glide_from=None) -> None:
        pass

    def step(self, slots) -> np.ndarray:
        return self._silence[: len(slots)]

    def sustain_step(self, seconds: float | None) -> int | None:
        return self.source.sustain_step(seconds)

    def save_state(self, slot: int) -> Any:
        return None

    def load_state(self, slot: int, state: Any) -> None:
        pass


class PlanMixer(Mixer):
    """The mixer's bookkeeping (starts, releases, frees, rates, exactly as :class:`Mixer` does it chunk by chunk)
    with the notes recorded instead of mixed."""

    def clear(self) -> None:
        super().clear()
        self.frame = 0  # output samples planned so far
        self.notes: list[PlannedNote] = []
        self.playing: dict[int, tuple[PlannedNote, Any, tuple[int, int]]] = {}  # slot -> note, ticket, release seen
        self.rate_log: dict[int, list[list[float]]] = {}
        self.master_log: list[tuple[int, float]] = [(0, self.master)]

    def mix(self, out: np.ndarray) -> np.ndarray:
        frames = len(out)
        now = self.frame
        playing = self.playing
        for slot, (note, ticket, _) in list(playing.items()):
            if self.voices[slot].ticket is not ticket:  # freed or stolen by the allocator (events of this chunk)
                note.end = now
                del playing[slot]
        for v in self.voices:
            if v.state == FREE:
                continue
            if v.state == WAITING:
                if not self.start_if_ready(v):
                    continue
                t = v.ticket
                note = PlannedNote(t.vec, t.note, t.velocity, t.glide_from, v.channel, now, v.gain)
                self.notes.append(note)
                playing[v.slot] = (note, t, (0, 0))
            if v.rel_len > 0:
                note, t, seen = playing[v.slot]
                if seen != (v.rel_len, v.rel_pos):  # a release began (or was shortened) with this chunk's events
                    note.releases.append((now, v.rel_len, v.rel_level))
                v.rel_pos += frames
                playing[v.slot] = (note, t, (v.rel_len, v.rel_pos))
                if v.rel_pos >= v.rel_len:
                    note.end = now + frames
                    del playing[v.slot]
                    self._free(v)
        self._log_rates(now, frames)
        if self.master != self.master_log[-1][1]:
            self.master_log.append((now, self.master))
        self.frame = now + frames
        out[:] = 0.0
        return out

    def max_rate(self) -> float:
        return self._base  # (the synchronous worker's target: nothing is read from the rings while planning)

    def _log_rates(self, now: int, frames: int) -> None:
        if not self.rate_log and not any(self.bend):
            return  # no channel bent yet: every rate is the base rate
        rates = self.rates()
        base = self._base
        for ch in range(16):
            r0, r1 = self.rates_prev[ch], rates[ch]
            log = self.rate_log.get(ch)
            if log is None:
                if r0 == base and r1 == base:
                    continue  # never bent yet: the base rate, not logged
                log = self.rate_log[ch] = []
            last = log[-1] if log else None
            if last is not None and r0 == r1 and last[2] == last[3] == r0 and last[1] == now:
                last[1] = now + frames
            else:
                log.append([now, now + frames, r0, r1])
        self.rates_prev[:] = rates


PROGRESS_EVERY = 1 << 20  # output samples planned between progress reports


class NotePlanner:
    """An engine (set it up: program map, instruments, mono) whose render plans notes instead of computing them."""

    def __init__(self, source, config: EngineConfig):
        self.source = source
        self._mixer: PlanMixer | None = None
        self.engine = Engine(PlanSource(source), config, mixer=self._make_mixer)
        self._sustain_step = source.sustain_step(config.sustain_s)

    def _make_mixer(self, *args) -> PlanMixer:
        self._mixer = PlanMixer(*args)
        return self._mixer

    def run(
        self,
        events: Iterable[tuple[int, mido.Message]],
        total_frames: int,
        progress: Callable[[int], None] | None = None,
    ) -> Plan:
        """Apply each ``(frame, message)`` (sorted) at its frame over ``total_frames`` output samples."""
        engine, mixer = self.engine, self._mixer
        engine.synchronous = True
        scratch = np.zeros(16 * MAX_CHUNK, np.float32)
        pos = 0

        def advance(to: int) -> None:
            nonlocal pos
            while pos < to:
                n = min(len(scratch), to - pos)
                engine.render(n, scratch[:n])
                pos += n

        reported = 0
        for frame, msg in events:
            frame = min(max(int(frame), pos), total_frames)
            if frame > pos:
                advance(frame)
                if progress is not None and pos - reported >= PROGRESS_EVERY:
                    progress(pos)
                    reported = pos
            engine.handle_midi(msg)
        advance(total_frames)
        if progress is not None:
            progress(total_frames)
        for note, _, _ in mixer.playing.values():
            note.end = total_frames
        mixer.playing.clear()
        return Plan(
            notes=sorted(mixer.notes, key=lambda n: n.start),
            rates=mixer.rate_log,
            master=mixer.master_log,
            base_rate=self.source.sample_rate / engine.sample_rate,
            limiter_threshold=engine.config.limiter_threshold,
            sustain_step=self._sustain_step,
            total_frames=total_frames,
        )
