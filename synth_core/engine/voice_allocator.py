"""The audio side's voices: allocation, stealing, retrigger, note-off, the sustain pedal, all notes / sound off.

Musical policies (see README.md): beyond ``max_voices`` the oldest *released* voice is stolen, else the oldest
one; it fades in ``steal_fade_s`` in one of the spare voices (there are 2 x ``max_voices``) while the new note
starts at once. A key struck again while it still sounds releases its old voice. Note-offs while a channel's pedal
is down mark voices sustained; pedal up releases them.
"""

from __future__ import annotations

import time

import numpy as np

from .config import EngineConfig, EngineStats
from .note_ticket import NoteTicket
from .render_worker import RenderWorker
from .voice import FREE, WAITING, Voice


class VoiceAllocator:
    def __init__(
        self,
        voices: list[Voice],
        config: EngineConfig,
        worker: RenderWorker,
        stats: EngineStats,
        default_vec: np.ndarray,
        sample_rate: int,
        models_velocity: bool,
    ):
        self.voices = voices
        self.config = config
        self._worker = worker
        self._stats = stats
        self.sample_rate = sample_rate  # release lengths are in output samples
        self.default_vec = default_vec  # for the notes the audio side begins itself
        self.channel_vecs: list[np.ndarray | None] = [None] * 16
        self.default_gain = 1.0  # the gain that goes with default_vec (and channel_gains with channel_vecs)
        self.channel_gains: list[float] = [1.0] * 16
        self._models_velocity = models_velocity
        self._order = 0
        self.clear()

    def clear(self) -> None:
        """Every voice free (without ending its ticket: the worker is cleared too), every pedal up."""
        for v in self.voices:
            v.state, v.ticket = FREE, None
        self.sustain_pedal = [False] * 16

    def free(self, v: Voice) -> None:
        v.state = FREE
        if v.ticket is not None:
            self._worker.end(v.ticket)
            v.ticket = None

    def start(
        self,
        note: int,
        velocity: int,
        ch: int,
        glide_from: int | None = None,
        t_event: float | None = None,
        ticket: NoteTicket | None = None,
    ) -> Voice:
        """Give the note a voice (stealing one if ``max_voices`` sound); it plays once its first hop is ready.
        Returns the voice."""
        sr = self.sample_rate
        for v in self.voices:  # retrigger: release the same key still sounding
            if v.state != FREE and v.note == note and v.channel == ch and (v.held or v.sustained):
                v.release(self.config.release_s * sr)
        sounding = [v for v in self.voices if v.state != FREE and not v.stolen]
        if len(sounding) >= self.config.max_voices:
            released = [v for v in sounding if v.rel_len > 0]
            victim = min(released or sounding, key=lambda v: v.order)
            victim.stolen = True
            if victim.state == WAITING:
                self.free(victim)
            else:
                victim.release(self.config.steal_fade_s * sr)
            self._stats.voices_stolen += 1
        free = next((v for v in self.voices if v.state == FREE), None)
        if free is None:  # every slot is fading: cut the oldest fading one
            free = min((v for v in self.voices), key=lambda v: v.order)
            self.free(free)
        v = free
        self._order += 1
        v.order, v.note, v.channel, v.velocity = self._order, note, ch, velocity
        v.gain = 1.0 if self._models_velocity else velocity / 127.0
        v.held, v.sustained, v.stolen = True, False, False
        v.rel_len, v.rel_pos, v.rel_level = 0, 0, 1.0
        v.clear_expression()
        v.resampler.reset()
        v.state = WAITING
        t_event = time.perf_counter() if t_event is None else t_event
        if ticket is not None and ticket.begun and glide_from is not None:
            self._worker.end(ticket)  # begun without the glide chosen here: begin it again
            ticket = None
        if ticket is None:  # a note the audio side starts itself (a mono line going back to a held key)
            vec = self.channel_vecs[ch]
            own = vec is not None
            vec = vec if own else self.default_vec
            ticket = self._worker.ticket(note, velocity, ch, t_event, glide_from, vec, False)
            ticket.gain = self.channel_gains[ch] if own else self.default_gain
        v.gain *= ticket.gain
        if not ticket.begun:
            if glide_from is not None:
                ticket.glide_from, ticket.key = glide_from, None
            self._worker.begin(ticket)
        v.ticket, v.ring_open = ticket, False
        return v

    def note_off(self, note: int, ch: int) -> None:
        """Release the channel's held voices of ``note`` (or mark them sustained while its pedal is down)."""
        for v in self.voices:
            if v.state != FREE and v.held and v.note == note and v.channel == ch:
                if self.sustain_pedal[ch]:
                    v.held, v.sustained = False, True
                else:
                    v.release(self.config.release_s * self.sample_rate)

    def sustain(self, on: bool, ch: int | None) -> None:
        chans = range(16) if ch is None else (ch,)
        for c in chans:
            self.sustain_pedal[c] = on
        if not on:
            for v in self.voices:
                if v.state != FREE and v.sustained and v.channel in chans:
                    v.release(self.config.release_s * self.sample_rate)

    def all_off(self, ch: int | None, fade_s: float, drop_waiting: bool) -> None:
        """Lift the pedal and release every voice (of ``ch``) in ``fade_s``; ``drop_waiting``: voices not heard yet
        are freed at once instead (no late blip)."""
        for c in range(16) if ch is None else (ch,):
            self.sustain_pedal[c] = False
        for v in self.voices:
            if v.state != FREE and (ch is None or v.channel == ch):
                if v.state == WAITING and drop_waiting:
                    self.free(v)
                else:
                    v.release(fade_s * self.sample_rate)
