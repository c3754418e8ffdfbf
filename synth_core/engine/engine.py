"""The real-time engine: its parts (see README.md) wired together behind one public API.

Control calls (any thread) clamp their values and append a typed event (:mod:`.events`) for the audio side
(:meth:`Engine.render`, :mod:`.audio_side`), which owns the voices; ``note_on`` also hands its note's ticket to the
worker thread (:mod:`.render_worker`) at once, which owns the source and fills one ring per source slot ahead of
playback. Offline (:meth:`Engine.render_offline`) runs the worker's pass synchronously inside ``render``.
"""

from __future__ import annotations

import logging
import time

import mido
import numpy as np

from . import events as ev
from .audio_side import AudioSide
from .config import EngineConfig, EngineStats
from .events import channel_index, clamp_int
from .midi_dispatch import dispatch_midi
from .mixer import Mixer
from .mpe import MpeControl, Zone, pressure_gain
from .offline import render_events
from .recorder import Recorder
from .render_worker import RenderWorker
from .voice import FREE

log = logging.getLogger(__name__)


def _ch(channel) -> int | None:
    return None if channel is None else channel_index(channel)


class Engine:
    """Polyphonic voice engine around a :class:`~synth_core.engine.sources.VoiceSource`."""

    def __init__(self, source, config: EngineConfig | None = None, mixer: type[Mixer] = Mixer):
        """``mixer``: the audio side's mixing of a chunk (:class:`~synth_core.engine.plan.PlanMixer` records the
        notes the voices play instead, for batch offline rendering)."""
        self.source = source
        self.config = c = config or EngineConfig()
        self.n_slots = 2 * c.max_voices  # voices: room for voices fading out after being stolen
        # source slots: also for notes note_on has begun before the audio side gives them a voice
        self.n_src = self.n_slots + c.max_voices
        source.prepare(self.n_src)
        self.hop = source.hop
        self.src_rate = source.sample_rate
        self._table = np.asarray(source.instrument_table, dtype=np.float32)
        gains = getattr(source, "instrument_gains", None)  # a row's own level (e.g. a user's instrument), linear
        self._gains = np.ones(len(self._table), np.float32) if gains is None else np.asarray(gains, np.float32)
        default_vec = self._table[0].copy() if len(self._table) else np.zeros(16, np.float32)
        self._stats = EngineStats(
            max_voices=c.max_voices,
            device_name=source.device_name,
            sample_rate=max(22050, int(c.sample_rate)),
            block_size=c.block_size,
        )
        self._worker = RenderWorker(source, c, self.n_src, self._stats)
        self.rings = self._worker.rings
        self._recorder = Recorder()
        self._audio = AudioSide(source, c, self.n_slots, self._worker, self._recorder, self._stats, default_vec, mixer)
        self._events = self._audio.events
        self.voices = self._audio.voices
        # control side: the vectors note_on gives its notes, the mode last asked for
        self._vec_shape = default_vec.shape
        self._latest_vec = default_vec.copy()
        self._ctl_vecs: list[np.ndarray | None] = [None] * 16
        self._latest_gain = 1.0
        self._ctl_gains = [1.0] * 16
        self._glides = bool(getattr(source, "supports_glide", False))
        self._mono_requested = bool(c.mono)
        self.program_map: dict[int, int] | None = None
        self._mpe = MpeControl(c.bend_range, c.mpe_pressure_db)  # zones, bend ranges, what member channels sent
        self._slides = callable(getattr(source, "set_vectors", None))  # sounding notes can change their vector
        if c.mpe:
            self.set_mpe(True)

    # ------------------------------------------------------------------ control (any thread)
    @property
    def sample_rate(self) -> int:
        return self._audio.sample_rate

    def note_on(self, note: int, velocity: int, channel: int = 0) -> None:
        if int(velocity) <= 0:
            self.note_off(note, channel)
            return
        t_event = time.perf_counter()  # note-on latency counts from here
        note, velocity, ch = clamp_int(note, 0, 127), clamp_int(velocity, 1, 127), channel_index(channel)
        vec = self._ctl_vecs[ch]
        gain = self._latest_gain if vec is None else self._ctl_gains[ch]
        vec = self._latest_vec if vec is None else vec
        expression = None
        if self._mpe.is_member(ch):  # an MPE note: what its channel sent before it is its initial state
            expression, vec = self._mpe.expression(ch, vec)
        # a mono glide is decided by the audio side (it knows the line's current note): it begins those itself
        begin = expression is not None or not (self._mono_requested and self._glides)
        worker = self._worker
        ticket = worker.ticket(note, velocity, ch, t_event, None, vec, begin)
        ticket.gain = gain
        ticket.expressive = expression is not None and expression.up is not None and self._slides
        if begin:
            worker.begin(ticket)  # before the event: the worker sees it before any end
            worker.wake()
        self._events.append(ev.NoteOn(note, velocity, ch, t_event, ticket, expression))

    def note_off(self, note: int, channel: int = 0) -> None:
        ch = channel_index(channel)
        self._mpe.note_off(ch)
        self._events.append(ev.NoteOff(clamp_int(note, 0, 127), ch))

    def set_sustain(self, on: bool, channel: int | None = None) -> None:
        self._events.append(ev.Sustain(bool(on), _ch(channel)))

    def all_notes_off(self, channel: int | None = None) -> None:
        self._events.append(ev.NotesOff(_ch(channel)))

    def all_sound_off(self, channel: int | None = None) -> None:
        self._events.append(ev.SoundOff(_ch(channel)))

    def set_pitch_bend(self, semitones: float, channel: int | None = None) -> None:
        s = float(np.clip(np.nan_to_num(float(semitones)), -24.0, 24.0))
        self._events.append(ev.Bend(s, _ch(channel)))

    # MPE (see mpe.py): zones, per-note controls on a zone's member channels
    def set_mpe(self, on: bool) -> None:
        """MPE on every channel (the lower zone: master channel 1, members 2..16), as for a controller that sends
        no MPE Configuration Message; off: no zone."""
        self.set_mpe_zones(15 if on else 0, 0)

    def set_mpe_zones(self, lower: int, upper: int = 0, changed: str = "lower") -> None:
        """The MPE zones' member channels (0: that zone off; what an MPE Configuration Message sets). Where they
        overlap, the zone not ``changed`` ("lower" / "upper") shrinks. Sounding notes keep their controls."""
        self._mpe.set_zones(clamp_int(lower, 0, 15), clamp_int(upper, 0, 15), changed)

    @property
    def mpe(self) -> bool:
        """Some MPE zone is set."""
        return self._mpe.zones != (0, 0)

    @property
    def mpe_zones(self) -> tuple[int, int]:
        """The member channels of the lower and the upper zone."""
        return self._mpe.zones

    @property
    def mpe_state(self) -> MpeControl:
        """The control side's MPE state (zones, bend ranges, RPNs; MIDI dispatch reads and feeds it)."""
        return self._mpe

    def mpe_zone(self, channel: int) -> Zone | None:
        """The MPE zone ``channel`` is in (None: none)."""
        return self._mpe.zone(channel_index(channel))

    def bend_range(self, channel: int = 0) -> float:
        """Semitones of ``channel``'s full pitch-wheel throw (an MPE member: 48, master: 2, else
        ``EngineConfig.bend_range``; RPN 0 changes it)."""
        return self._mpe.bend_range(channel_index(channel))

    def set_note_bend(self, semitones: float, channel: int) -> None:
        """The bend of the note on MPE member ``channel`` (on top of its zone's master bend) and of its next one."""
        ch = channel_index(channel)
        s = float(np.clip(np.nan_to_num(float(semitones)), -96.0, 96.0))
        self._mpe.bend[ch] = s
        self._events.append(ev.NoteBend(ch, s))

    def set_note_pressure(self, pressure: float, channel: int, note: int | None = None) -> None:
        """Pressure 0..1 -> the loudness of the note on MPE member ``channel`` (``note``: of that key on the
        channel, polyphonic key pressure): 0 dB at full pressure, ``-EngineConfig.mpe_pressure_db`` at none. A note
        plays at its own level until it gets a pressure (or its channel sent one since its last note-off)."""
        ch = channel_index(channel)
        gain = pressure_gain(pressure, self._mpe.pressure_db)
        if note is None:
            self._mpe.gain[ch] = gain
        self._events.append(ev.NotePressure(ch, gain, None if note is None else clamp_int(note, 0, 127)))

    def set_note_slide(self, amount: float, channel: int) -> None:
        """Slide -1..1 (CC74: 64 is 0) of the note on MPE member ``channel`` and of its next one: its instrument
        vector moves along the slide direction (:meth:`set_slide_direction`) while it sounds."""
        ch = channel_index(channel)
        a = float(np.clip(np.nan_to_num(float(amount)), -1.0, 1.0))
        self._mpe.slide[ch] = a
        self._events.append(ev.NoteSlide(ch, a))

    def set_slide_direction(self, up: np.ndarray | None, down: np.ndarray | None = None) -> None:
        """What an MPE slide adds to a note's instrument vector: ``up`` at +1 (CC74 127), ``down`` at -1 (CC74 0;
        default ``-up``), in between linearly. Notes take the direction at their note-on; None: slides move
        nothing. The app passes the morph pad's way from its puck to its upper (and lower) edge."""
        if up is None:
            self._mpe.set_slide_direction(None)
            return
        u = np.nan_to_num(np.asarray(up, dtype=np.float32).reshape(-1)).copy()
        d = -u if down is None else np.nan_to_num(np.asarray(down, dtype=np.float32).reshape(-1)).copy()
        if u.shape != self._vec_shape or d.shape != self._vec_shape:
            log.warning("ignoring a slide direction of size %d (expected %d)", u.size, self._vec_shape[0])
            return
        self._mpe.set_slide_direction((u, d))

    def slide_direction(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The slide direction (up, down) new MPE notes take (copies; None: none)."""
        direction = self._mpe.direction
        return None if direction is None else (direction[0].copy(), direction[1].copy())

    def set_instrument(self, index: int, channel: int | None = None) -> None:
        n = len(self._table)
        if n:
            i = clamp_int(index, 0, n - 1)
            self.set_instrument_vector(self._table[i], channel, float(self._gains[i]) if i < len(self._gains) else 1.0)

    def set_instrument_vector(self, vec: np.ndarray, channel: int | None = None, gain: float = 1.0) -> None:
        """New notes (of ``channel``, or of every channel without its own) use ``vec``, played with ``gain``
        (linear, 0..32: an instrument's own level correction, e.g. ``synth_core.level.match_level``)."""
        v = np.nan_to_num(np.asarray(vec, dtype=np.float32).reshape(-1)).copy()
        if v.shape != self._vec_shape:
            log.warning("ignoring an instrument vector of size %d (expected %d)", v.size, self._vec_shape[0])
            return
        g = float(np.clip(np.nan_to_num(float(gain), nan=1.0), 0.0, 32.0))
        if channel is None:
            self._latest_vec, self._latest_gain = v, g
        else:
            self._ctl_vecs[channel_index(channel)] = v
            self._ctl_gains[channel_index(channel)] = g
        self._events.append(ev.InstrumentVector(v, _ch(channel), g))

    def instrument_gain(self) -> float:
        """The gain new notes (of channels without their own vector) play with."""
        return self._latest_gain

    def instrument_vector(self) -> np.ndarray:
        return self._latest_vec.copy()

    def set_mono(self, on: bool) -> None:
        """Switch mono (legato, glide) on or off while playing; sounding voices keep sounding (see :mod:`.mono`)."""
        self._mono_requested = bool(on)
        self._events.append(ev.Mono(bool(on)))

    @property
    def mono(self) -> bool:
        """The mode last asked for with :meth:`set_mono` (or the config's)."""
        return self._mono_requested

    def set_master_gain(self, gain: float) -> None:
        self._events.append(ev.Gain(float(np.clip(np.nan_to_num(float(gain)), 0.0, 2.0))))

    def set_sample_rate(self, sample_rate: int) -> None:
        """Change the output rate (e.g. to the device's); takes effect at the next render."""
        self._events.append(ev.SampleRate(max(22050, int(sample_rate))))

    def set_program_map(self, mapping: dict[int, int] | None) -> None:
        """GM program -> instrument index; when set, program_change messages switch the channel's instrument."""
        self.program_map = dict(mapping) if mapping else None

    def handle_midi(self, msg: mido.Message) -> None:
        """Apply one MIDI message (channel filter; anything unknown is ignored)."""
        dispatch_midi(self, msg)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the render-ahead worker thread."""
        if not self._worker.running:
            self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def close(self) -> None:
        self.stop()
        self.stop_recording()

    @property
    def running(self) -> bool:
        """The worker thread runs (between :meth:`start` and :meth:`stop`)."""
        return self._worker.running

    @property
    def worker_error(self) -> BaseException | None:
        """The last exception the worker thread caught (it keeps running)."""
        return self._worker.error

    # ------------------------------------------------------------------ monitoring
    def stats(self) -> EngineStats:
        s = self._stats
        s.active_voices = sum(1 for v in self.voices if v.state != FREE)
        s.sample_rate = self._audio.sample_rate
        s.render_load = self._worker.load
        s.note_latency_s = self._worker.latency.last
        return EngineStats(**vars(s))

    def note_latencies(self) -> tuple[np.ndarray, np.ndarray]:
        """The last (up to 1024) notes' latencies from ``note_on`` until their first sample is ready for the audio
        side, in seconds, and whether each came from the note cache (copies). The audio side plays it in its next
        block: :meth:`note_start_latencies` includes that wait.
        """
        return self._worker.latency.arrays()

    def note_start_latencies(self) -> tuple[np.ndarray, np.ndarray]:
        """The last (up to 1024) notes' latencies from ``note_on`` to the start of the audio block that begins to
        play them, in seconds (the device's output latency comes on top), and whether each came from the cache,
        oldest first (copies)."""
        return self._audio.mixer.starts.arrays()

    def set_output_latency(self, latency_s: float, block_size: int | None = None) -> None:
        self._stats.output_latency_s = float(latency_s)
        if block_size:
            self._stats.block_size = int(block_size)

    def scope(self, n: int) -> np.ndarray:
        """The last ``n`` output samples (copy)."""
        return self._audio.scope.last(n)

    # read-only views of the audio side's and the worker's state (for monitoring and tests)
    @property
    def master_gain(self) -> float:
        """The master gain the audio side applies (after the queued :meth:`set_master_gain` calls it has rendered)."""
        return self._audio.mixer.master

    def pitch_bend(self, channel: int = 0) -> float:
        """The bend (semitones) the audio side applies to ``channel``'s voices."""
        return self._audio.mixer.bend[channel_index(channel)]

    def mono_keys(self, channel: int = 0) -> list[tuple[int, int]]:
        """The keys (note, velocity) held on ``channel`` that its mono line returns to, newest last (audio side)."""
        return list(self._audio.mono.held_keys[channel_index(channel)])

    def free_source_slots(self) -> int:
        """Source slots computing no note (all ``n_src`` once every note has ended and the worker has caught up)."""
        return self._worker.free_slots()

    # ------------------------------------------------------------------ recording
    def start_recording(self, path) -> None:
        """Write everything render() produces to a WAV file (float32) until stop_recording()."""
        self._recorder.start(path, self._audio.sample_rate)

    def stop_recording(self):
        """Finish the take; its path (None if none was running)."""
        return self._recorder.stop()

    @property
    def recording(self) -> bool:
        """A take is being written."""
        return self._recorder.active

    # ------------------------------------------------------------------ audio side
    def render(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Next ``frames`` output samples (float32 mono). Never blocks."""
        return self._audio.render(frames, out)

    @property
    def synchronous(self) -> bool:
        """``render`` computes what it needs itself, without the worker thread (as :meth:`render_offline` does)."""
        return self._audio.synchronous

    @synchronous.setter
    def synchronous(self, on: bool) -> None:
        if on and self._worker.running:
            raise RuntimeError("a synchronous engine needs a stopped worker (call stop() first)")
        self._audio.synchronous = bool(on)

    # ------------------------------------------------------------------ offline
    def reset(self) -> None:
        """Silence everything and drop queued notes (keeps instruments, gain, rate, mono, MPE zones, slide direction,
        cache; forgets what each channel sent: bends, pressures, slides, bend ranges)."""
        while self._events:
            event = self._events.popleft()
            if isinstance(event, ev.SETTINGS):
                self._audio.apply(event)
        self._worker.clear()
        self._audio.clear()
        self._mpe.clear()

    def render_offline(self, events, total_frames: int, progress=None) -> np.ndarray:
        """Render ``(frame, mido.Message)`` events (sorted) into ``total_frames`` samples.

        Runs the real-time voice code synchronously (no threads): deterministic.
        ``progress(frames_done)`` is called now and then if given.
        """
        if self._worker.running:
            raise RuntimeError("render_offline needs a stopped engine (call stop() first)")
        self.reset()
        self._audio.synchronous = True
        try:
            return render_events(self.render, self.handle_midi, events, int(total_frames), progress)
        finally:
            self._audio.synchronous = False
            self.reset()
