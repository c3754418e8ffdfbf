"""The audio side (``Engine.render``, called by the audio callback): applies the queued control events, then mixes.

It owns the voices. Each chunk it pops every event from the control deque and dispatches it by its class (one dict
lookup per event) to the voice allocator, the mono mode, the MPE notes (:mod:`.mpe`) or the mixer; offline
(``synchronous``) it then runs the worker's pass itself for what the chunk needs; then it mixes the chunk, writes
it to the scope and hands it to the recorder. Never blocks, takes no lock, only small per-chunk temporaries.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .config import EngineConfig, EngineStats
from .events import (
    Bend,
    Gain,
    InstrumentVector,
    Mono,
    NoteBend,
    NoteOff,
    NoteOn,
    NotePressure,
    NoteSlide,
    NotesOff,
    SampleRate,
    SoundOff,
    Sustain,
)
from .mixer import MAX_CHUNK, Mixer
from .mono import MonoMode
from .mpe import MpeVoices
from .recorder import Recorder
from .render_worker import RenderWorker
from .resampler import KernelBank, ResamplerBank
from .scope import Scope
from .voice import Voice
from .voice_allocator import VoiceAllocator


class AudioSide:
    def __init__(
        self,
        source,
        config: EngineConfig,
        n_slots: int,
        worker: RenderWorker,
        recorder: Recorder,
        stats: EngineStats,
        default_vec: np.ndarray,
        mixer: type[Mixer] = Mixer,
    ):
        c = config
        self.config = config
        self.events: deque = deque()  # control events, from any thread
        self.sample_rate = max(22050, int(c.sample_rate))
        self.synchronous = False  # offline: render runs the worker's pass itself
        self._worker = worker
        self._recorder = recorder
        self._taps = c.resampler_taps
        self._hop = worker.hop
        cap = 3 * MAX_CHUNK + 4 * c.resampler_taps
        resamplers = ResamplerBank(KernelBank(c.resampler_taps), n_slots, cap, MAX_CHUNK)
        self.voices = [Voice(s, resamplers.voices[s]) for s in range(n_slots)]
        self.allocator = VoiceAllocator(
            self.voices, c, worker, stats, default_vec, self.sample_rate, bool(source.models_velocity)
        )
        self.mono = MonoMode(self.allocator, bool(getattr(source, "supports_glide", False)), bool(c.mono))
        self.mixer = mixer(
            self.voices,
            resamplers,
            worker.rings,
            self.allocator.free,
            c,
            stats,
            self._hop,
            source.sample_rate,
            self.sample_rate,
        )
        self.mpe = MpeVoices(self.voices, worker)
        self.scope = Scope(c.scope_s, self.sample_rate)
        self._handlers = {
            NoteOn: self._note_on,
            NoteOff: self._note_off,
            Sustain: self._sustain,
            NotesOff: self._notes_off,
            SoundOff: self._sound_off,
            Bend: self._bend,
            NoteBend: self.mpe.bend,
            NotePressure: self.mpe.pressure,
            NoteSlide: self.mpe.slide,
            InstrumentVector: self._vector,
            Gain: self._gain,
            Mono: self._mono,
            SampleRate: self._rate,
        }

    def clear(self) -> None:
        """Every voice free, every pedal up, no held keys, no bend (the settings stay)."""
        self.allocator.clear()
        self.mono.clear()
        self.mixer.clear()
        self.mpe.clear()

    def apply(self, ev) -> None:
        self._handlers[type(ev)](ev)

    # ------------------------------------------------------------------ render
    def render(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        frames = int(frames)
        if out is None:
            out = np.zeros(frames, np.float32)
        done = 0
        while done < frames:
            n = min(MAX_CHUNK, frames - done)
            self._render_chunk(out[done : done + n])
            done += n
        return out

    def _render_chunk(self, out: np.ndarray) -> None:
        events, handlers = self.events, self._handlers
        while events:
            ev = events.popleft()
            handlers[type(ev)](ev)
        if self.mpe.dirty:
            self.mpe.flush()  # the slides of this chunk's events, one per note
        if self.synchronous:
            # produce what this chunk needs at the fastest rate it may read
            target = math.ceil(self.mixer.max_rate() * len(out)) + self._taps + self._hop
            while self._worker.work_once(target):
                pass
        mix = self.mixer.mix(out)
        self.scope.write(mix)
        self._recorder.push(mix)

    # ------------------------------------------------------------------ event handlers
    def _note_on(self, ev: NoteOn) -> None:
        if ev.expression is not None:  # an MPE member channel's note: its own channel, never a mono line
            v = self.allocator.start(ev.note, ev.velocity, ev.channel, t_event=ev.t_event, ticket=ev.ticket)
            self.mpe.started(v, ev.expression)
        elif self.mono.on:
            self.mono.note_on(ev.note, ev.velocity, ev.channel, ev.t_event, ev.ticket)
        else:
            self.allocator.start(ev.note, ev.velocity, ev.channel, t_event=ev.t_event, ticket=ev.ticket)

    def _note_off(self, ev: NoteOff) -> None:
        if self.mono.on and self.mono.note_off(ev.note, ev.channel):
            return
        self.allocator.note_off(ev.note, ev.channel)

    def _sustain(self, ev: Sustain) -> None:
        self.allocator.sustain(ev.on, ev.channel)

    def _all_off(self, ch: int | None, fade_s: float, drop_waiting: bool) -> None:
        for c in range(16) if ch is None else (ch,):
            self.mono.clear(c)
        self.allocator.all_off(ch, fade_s, drop_waiting)

    def _notes_off(self, ev: NotesOff) -> None:
        self._all_off(ev.channel, self.config.release_s, False)

    def _sound_off(self, ev: SoundOff) -> None:
        self._all_off(ev.channel, self.config.panic_fade_s, True)

    def _bend(self, ev: Bend) -> None:
        bend = self.mixer.bend
        for c in range(16) if ev.channel is None else (ev.channel,):
            bend[c] = ev.semitones

    def _vector(self, ev: InstrumentVector) -> None:
        if ev.channel is None:
            self.allocator.default_vec, self.allocator.default_gain = ev.vec, ev.gain
        else:
            self.allocator.channel_vecs[ev.channel] = ev.vec
            self.allocator.channel_gains[ev.channel] = ev.gain

    def _gain(self, ev: Gain) -> None:
        self.mixer.master = ev.gain

    def _mono(self, ev: Mono) -> None:
        self.mono.switch(ev.on)

    def _rate(self, ev: SampleRate) -> None:
        self.sample_rate = self.allocator.sample_rate = ev.rate
        self.mixer.set_sample_rate(ev.rate)
        self.scope.resize(ev.rate)
