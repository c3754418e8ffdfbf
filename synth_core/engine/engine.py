"""The real-time engine: voices, render-ahead worker, resampling mixer.

Threads: control calls (GUI, MIDI) append to ``_events`` (a deque: lock-free). The audio
side (:meth:`Engine.render`) owns the voices: it pops events, allocates voices, applies
envelopes, resamples and mixes. The worker thread owns the source: it pops begin/end
commands from ``_commands`` and steps all sounding source slots in one batch into per-slot
single-producer/single-consumer rings. ``render`` never waits for the worker: a voice with
no samples ready is silent for that block and counted as an underrun.

Note-on latency: ``note_on`` hands a :class:`NoteTicket` to the worker and to the audio side at once, so the
model's warm-up runs while the audio side waits for its next block; a note found in the note cache plays from
the cached audio without the worker (it is ready when ``note_on`` returns). A note that comes while the worker
steps voices begins half way through that step (:meth:`Engine._begin_between`), and the idle worker primes the
warm-up of every chord size once (:meth:`Engine._prime_when_idle`).

Held notes: SING notes are 4 s long with the key released at 3 s. Notes are started with
the time embedding frozen at ``EngineConfig.sustain_s`` (2.5 s, before the learned
release), so a held note keeps its late-sustain timbre for as long as it is held; note-off
(after the sustain pedal) fades it with the engine's release envelope.

Offline (:meth:`Engine.render_offline`) runs the same voice code with the worker's step
called synchronously inside ``render``: deterministic, no threads.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from ..device import is_gpu_failure
from .cache import CachedNote, NoteCache
from .config import EngineConfig, EngineStats
from .note_ticket import LatencyLog, NoteTicket
from .resampler import KernelBank, ResamplerBank, VoiceResampler
from .ring import SampleRing

log = logging.getLogger(__name__)

FREE, WAITING, PLAYING = 0, 1, 2
MAX_CHUNK = 1024
LATENCY_LOG = 1024  # note-on latencies kept for note_latencies()
STEP_CHUNK = 16  # voices stepped per source call (between calls the worker looks for new notes)
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


class Engine:
    """Polyphonic voice engine around a :class:`~synth_core.engine.sources.VoiceSource`."""

    def __init__(self, source, config: EngineConfig | None = None):
        self.source = source
        self.config = config or EngineConfig()
        c = self.config
        self.n_slots = 2 * c.max_voices  # voices: room for voices fading out after being stolen
        # source slots: also for notes note_on has begun before the audio side gives them a voice
        self.n_src = self.n_slots + c.max_voices
        source.prepare(self.n_src)
        self.hop = source.hop
        self.src_rate = source.sample_rate
        self._bank = KernelBank(c.resampler_taps)
        self._sample_rate = max(22050, int(c.sample_rate))
        cap = 3 * MAX_CHUNK + 4 * c.resampler_taps
        self._resamplers = ResamplerBank(self._bank, self.n_slots, cap, MAX_CHUNK)
        self.voices = [Voice(s, self._resamplers.voices[s]) for s in range(self.n_slots)]
        self._ahead = max(2 * self.hop, self.hop * math.ceil(c.render_ahead_s * self.src_rate / self.hop))
        self._prefix = self.hop * max(1, math.ceil(c.cache_prefix_s * self.src_rate / self.hop))
        ring_cap = self._ahead + self._prefix + 8 * self.hop
        self.rings = [SampleRing(ring_cap) for _ in range(self.n_src)]
        self._events: deque = deque()
        self._commands: deque = deque()  # to the worker: ("begin" | "end", ticket), from note_on and the audio side
        self._wake = threading.Event()  # note_on wakes an idle worker
        self._table = np.asarray(source.instrument_table, dtype=np.float32)
        self._default_vec = self._table[0].copy() if len(self._table) else np.zeros(16, np.float32)
        self._latest_vec = self._default_vec.copy()
        self._channel_vecs: list[np.ndarray | None] = [None] * 16  # audio side's
        self._ctl_vecs: list[np.ndarray | None] = [None] * 16  # control side's (note_on picks the vector)
        self._sustain_pedal = [False] * 16
        self._held_keys: list[list[tuple[int, int]]] = [[] for _ in range(16)]
        self._glides = bool(getattr(source, "supports_glide", False))
        self._mono = bool(c.mono)  # audio side's mode
        self._mono_requested = self._mono  # the latest set_mono() (control side)
        self._bend = [0.0] * 16
        self._rates_prev = [self.src_rate / self._sample_rate] * 16
        self._master = float(c.master_gain)
        self._order = 0
        self._sustain_step = source.sustain_step(c.sustain_s)
        self.program_map: dict[int, int] | None = None
        # audio-side scratch
        self._mix = np.zeros(MAX_CHUNK, np.float32)
        self._vout = np.zeros(self.n_slots * MAX_CHUNK, np.float32)  # one row per voice rendered in a chunk
        self._ramp = np.arange(MAX_CHUNK, dtype=np.float64)
        self._scope = np.zeros(max(1, int(c.scope_s * self._sample_rate)), np.float32)
        self._scope_pos = 0
        # worker-side state
        self._cache = NoteCache(c.cache_entries)
        self._cache_ok = c.cache_entries > 0 and hasattr(source, "save_state")
        self._active: set[int] = set()
        self._free_src = list(range(self.n_src - 1, -1, -1))  # pop() hands out slot 0 first
        self._slot_ticket: list[NoteTicket | None] = [None] * self.n_src
        self._waiting_begin: list[NoteTicket] = []  # begun while every source slot was taken
        self._ended_meanwhile: list[NoteTicket] = []  # end commands that came while a step was half done
        self._between = self._begin_between if getattr(source, "supports_between", False) else None
        self._capture: list[list | None] = [None] * self.n_src
        self._first_pending: dict[int, float] = {}  # source slot -> note-on time (computed notes)
        self._prime_next = 1  # the next warm-up batch size the idle worker primes (see _prime_when_idle)
        self._latency = LatencyLog(LATENCY_LOG)  # note_on -> first sample ready
        self._start_log = np.zeros(LATENCY_LOG, np.float64)  # note_on -> the audio block that starts it
        self._start_cached = np.zeros(LATENCY_LOG, bool)
        self._start_count = 0
        # threads and stats
        self._thread: threading.Thread | None = None
        self._running = False
        self._sync = False
        self._busy = 0.0
        self._busy_since = time.perf_counter()
        self._load = 0.0
        self._stats = EngineStats(
            max_voices=c.max_voices,
            device_name=source.device_name,
            sample_rate=self._sample_rate,
            block_size=c.block_size,
        )
        self.worker_error: BaseException | None = None
        self._rec_queue: deque = deque()
        self._rec_thread: threading.Thread | None = None
        self._rec_path: Path | None = None
        self._recording = False

    # ------------------------------------------------------------------ control (any thread)
    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def note_on(self, note: int, velocity: int, channel: int = 0) -> None:
        if int(velocity) <= 0:
            self.note_off(note, channel)
            return
        t_event = time.perf_counter()  # note-on latency counts from here
        note, velocity, ch = _clamp_int(note, 0, 127), _clamp_int(velocity, 1, 127), _ch(channel)
        vec = self._ctl_vecs[ch]
        # a mono glide is decided by the audio side (it knows the line's current note): it begins those itself
        begin = not (self._mono_requested and self._glides)
        ticket = self._ticket(note, velocity, ch, t_event, None, self._latest_vec if vec is None else vec, begin)
        if begin:
            ticket.begun = True
            self._commands.append(("begin", ticket))  # before the event: the worker sees it before any end
            self._wake.set()
        self._events.append(("on", note, velocity, ch, t_event, ticket))

    def _ticket(
        self, note: int, velocity: int, ch: int, t_event: float, glide_from: int | None, vec, lookup: bool
    ) -> NoteTicket:
        """A ticket for a note; with ``lookup``, a note-cache hit makes it playable at once."""
        key = None
        if self._cache_ok and glide_from is None:
            # a source's playing settings (a voice's ADSR, glide ...) shape the cached start too
            key = (*NoteCache.key(vec, note, velocity), repr(getattr(self.source, "settings", None)))
        ticket = NoteTicket(vec, note, velocity, ch, t_event, glide_from, key)
        if lookup and key is not None:
            entry = self._cache.peek(key)
            if entry is not None:
                ticket.cached = entry
                self._latency.add(time.perf_counter() - t_event, True)
        return ticket

    def note_off(self, note: int, channel: int = 0) -> None:
        self._events.append(("off", _clamp_int(note, 0, 127), _ch(channel)))

    def set_sustain(self, on: bool, channel: int | None = None) -> None:
        self._events.append(("sustain", bool(on), None if channel is None else _ch(channel)))

    def all_notes_off(self, channel: int | None = None) -> None:
        self._events.append(("notes_off", None if channel is None else _ch(channel)))

    def all_sound_off(self, channel: int | None = None) -> None:
        self._events.append(("sound_off", None if channel is None else _ch(channel)))

    def set_pitch_bend(self, semitones: float, channel: int | None = None) -> None:
        s = float(np.clip(np.nan_to_num(float(semitones)), -24.0, 24.0))
        self._events.append(("bend", s, None if channel is None else _ch(channel)))

    def set_instrument(self, index: int, channel: int | None = None) -> None:
        n = len(self._table)
        if n:
            self.set_instrument_vector(self._table[_clamp_int(index, 0, n - 1)], channel)

    def set_instrument_vector(self, vec: np.ndarray, channel: int | None = None) -> None:
        """New notes (of ``channel``, or of every channel without its own) use ``vec``."""
        v = np.nan_to_num(np.asarray(vec, dtype=np.float32).reshape(-1)).copy()
        if v.shape != self._default_vec.shape:
            log.warning("ignoring an instrument vector of size %d (expected %d)", v.size, self._default_vec.size)
            return
        if channel is None:
            self._latest_vec = v
        else:
            self._ctl_vecs[_ch(channel)] = v
        self._events.append(("vec", v, None if channel is None else _ch(channel)))

    def instrument_vector(self) -> np.ndarray:
        return self._latest_vec.copy()

    def set_mono(self, on: bool) -> None:
        """Switch mono (legato, glide) on or off while playing; sounding voices keep sounding.

        Switching on makes the newest held voice of each channel its mono line (the other held keys
        become the keys it returns to); switching off leaves every voice to its own note-off.
        """
        self._mono_requested = bool(on)
        self._events.append(("mono", bool(on)))

    @property
    def mono(self) -> bool:
        """The mode last asked for with :meth:`set_mono` (or the config's)."""
        return self._mono_requested

    def set_master_gain(self, gain: float) -> None:
        self._events.append(("gain", float(np.clip(np.nan_to_num(float(gain)), 0.0, 2.0))))

    def set_sample_rate(self, sample_rate: int) -> None:
        """Change the output rate (e.g. to the device's); takes effect at the next render."""
        self._events.append(("rate", max(22050, int(sample_rate))))

    def set_program_map(self, mapping: dict[int, int] | None) -> None:
        """GM program -> instrument index; when set, program_change messages switch the channel's instrument."""
        self.program_map = dict(mapping) if mapping else None

    def handle_midi(self, msg: mido.Message) -> None:
        """Apply one MIDI message (channel filter; anything unknown is ignored)."""
        try:
            kind = msg.type
            channel = getattr(msg, "channel", None)
            if channel is None or (self.config.channel is not None and channel != self.config.channel):
                return
            if kind == "note_on":
                self.note_on(msg.note, msg.velocity, channel)
            elif kind == "note_off":
                self.note_off(msg.note, channel)
            elif kind == "control_change":
                if msg.control == 64:
                    self.set_sustain(msg.value >= 64, channel)
                elif msg.control == 120:
                    self.all_sound_off(channel)
                elif msg.control == 123:
                    self.all_notes_off(channel)
            elif kind == "pitchwheel":
                self.set_pitch_bend(msg.pitch / 8192.0 * self.config.bend_range, channel)
            elif kind == "program_change" and self.program_map is not None:
                index = self.program_map.get(msg.program)
                if index is not None:
                    self.set_instrument(index, channel)
        except (AttributeError, TypeError, ValueError):
            return

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the render-ahead worker thread."""
        if self._thread is not None:
            return
        import sys

        if sys.getswitchinterval() > 0.001:
            sys.setswitchinterval(0.001)  # the audio callback must get the GIL quickly
        # everything that exists now (models, tables, the GUI) leaves the garbage collector's full passes: a full pass
        # over them held the GIL for ~70 ms, now and then, which starved voices that had just started
        gc.freeze()
        self._running = True
        self._thread = threading.Thread(target=self._worker_loop, name="engine-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.stop_recording()

    # ------------------------------------------------------------------ monitoring
    def stats(self) -> EngineStats:
        s = self._stats
        s.active_voices = sum(1 for v in self.voices if v.state != FREE)
        s.sample_rate = self._sample_rate
        s.render_load = self._load
        s.note_latency_s = self._latency.last
        return EngineStats(**vars(s))

    def note_latencies(self) -> tuple[np.ndarray, np.ndarray]:
        """The last (up to 1024) notes' latencies from ``note_on`` until their first sample is ready for the audio
        side, in seconds, and whether each came from the note cache (copies). The audio side plays it in its next
        block: :meth:`note_start_latencies` includes that wait.
        """
        return self._latency.arrays()

    def note_start_latencies(self) -> tuple[np.ndarray, np.ndarray]:
        """The last (up to 1024) notes' latencies from ``note_on`` to the start of the audio block that begins to
        play them, in seconds (the device's output latency comes on top), and whether each came from the cache,
        oldest first (copies)."""
        count = self._start_count  # (the audio thread may add one meanwhile: the oldest entry is then the newest)
        if count <= LATENCY_LOG:
            return self._start_log[:count].copy(), self._start_cached[:count].copy()
        order = np.roll(np.arange(LATENCY_LOG), -(count % LATENCY_LOG))  # oldest first
        return self._start_log[order], self._start_cached[order]

    def set_output_latency(self, latency_s: float, block_size: int | None = None) -> None:
        self._stats.output_latency_s = float(latency_s)
        if block_size:
            self._stats.block_size = int(block_size)

    def count_output_underflow(self) -> None:
        self._stats.output_underflows += 1

    def scope(self, n: int) -> np.ndarray:
        """The last ``n`` output samples (copy)."""
        n = max(0, min(int(n), len(self._scope)))
        end = self._scope_pos
        idx = (np.arange(end - n, end)) % len(self._scope)
        return self._scope[idx].copy()

    # ------------------------------------------------------------------ recording
    def start_recording(self, path) -> None:
        """Write everything render() produces to a WAV file (float32) until stop_recording()."""
        self.stop_recording()
        self._rec_path = Path(path)
        self._rec_queue.clear()
        f = sf.SoundFile(self._rec_path, "w", samplerate=self._sample_rate, channels=1, subtype="FLOAT")
        self._recording = True

        def writer() -> None:
            with f:
                while self._recording or self._rec_queue:
                    if self._rec_queue:
                        f.write(self._rec_queue.popleft())
                    else:
                        time.sleep(0.02)

        self._rec_thread = threading.Thread(target=writer, name="engine-recorder", daemon=True)
        self._rec_thread.start()

    def stop_recording(self) -> Path | None:
        if self._rec_thread is None:
            return None
        self._recording = False
        self._rec_thread.join()
        self._rec_thread = None
        path, self._rec_path = self._rec_path, None
        return path

    # ------------------------------------------------------------------ audio side
    def render(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Next ``frames`` output samples (float32 mono). Never blocks."""
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
        frames = len(out)
        while self._events:
            self._apply(self._events.popleft())
        if self._sync:
            self._work_sync(frames)
        mix = self._mix[:frames]
        mix[:] = 0.0
        base = self.src_rate / self._sample_rate
        rates = [base * 2.0 ** (bend / 12.0) for bend in self._bend]  # per channel, at the end of this chunk
        ready: dict[int, list[Voice]] = {}  # channel -> voices with enough input for this chunk
        for v in self.voices:
            if v.state == FREE:
                continue
            if v.state == WAITING:
                t = v.ticket
                if t.cached is None and (t.slot < 0 or self.rings[t.slot].write_pos - t.start < self.hop):
                    continue  # not started yet: the first hop is still being computed
                v.state = PLAYING
                i = self._start_count % LATENCY_LOG
                self._start_log[i], self._start_cached[i] = time.perf_counter() - t.t_event, t.cached is not None
                self._start_count += 1
            if self._refill(v, frames, self._rates_prev[v.channel], rates[v.channel]):
                ready.setdefault(v.channel, []).append(v)
            else:
                self._stats.underruns += 1
        for ch, voices in ready.items():  # one resampling pass per channel (its voices share the bend)
            self._mix_voices(voices, mix, self._rates_prev[ch], rates[ch])
        self._rates_prev[:] = rates
        mix *= self._master
        t = self.config.limiter_threshold
        peak = float(np.max(np.abs(mix))) if frames else 0.0
        if peak > t:
            over = np.abs(mix) > t
            mag = np.abs(mix[over])
            mix[over] = np.sign(mix[over]) * (t + (1.0 - t) * np.tanh((mag - t) / (1.0 - t)))
        out[:] = mix
        self._write_scope(mix)
        if self._recording:
            self._rec_queue.append(mix.copy())

    def _refill(self, v: Voice, frames: int, r0: float, r1: float) -> bool:
        """Move the voice's ready samples from its ring into its resampler; False if a chunk's worth is missing."""
        rs = v.resampler
        need = rs.needed(frames, r0, r1)
        if rs.avail < need:
            t = v.ticket
            space = rs.space()
            pre = t.cached
            if pre is not None and t.read < len(pre.audio):  # the cached start of the note first
                n = min(len(pre.audio) - t.read, space)
                rs.buf[rs.avail : rs.avail + n] = pre.audio[t.read : t.read + n]
                t.read += n
                rs.avail += n
                space -= n
            if space > 0 and t.slot >= 0:
                ring = self.rings[t.slot]
                if not v.ring_open:
                    ring.read_pos = t.start  # skip what the slot's previous note left
                    v.ring_open = True
                take = min(ring.fill(), space)
                if take > 0:
                    ring.read_into(rs.buf[rs.avail :], take)
                    rs.avail += take
        return rs.avail >= need

    def _mix_voices(self, voices: list[Voice], mix: np.ndarray, r0: float, r1: float) -> None:
        """Resample ``voices`` (one rate) in one pass, apply each one's gain or release, add them to ``mix``."""
        frames = len(mix)
        rows = self._vout[: len(voices) * frames].reshape(len(voices), frames)
        self._resamplers.process_many([v.slot for v in voices], rows, r0, r1)
        for vout, v in zip(rows, voices, strict=True):
            if v.rel_len > 0:
                x = (self._ramp[:frames] + v.rel_pos) / v.rel_len
                vout *= (v.rel_level * v.gain) * release_curve(x).astype(np.float32)
                v.rel_pos += frames
                if v.rel_pos >= v.rel_len:
                    self._free(v)
            elif v.gain != 1.0:
                vout *= v.gain
        mix += rows.sum(axis=0)

    def _write_scope(self, x: np.ndarray) -> None:
        n, size = len(x), len(self._scope)
        if n >= size:
            self._scope[:] = x[-size:]
            self._scope_pos = 0
            return
        i = self._scope_pos
        first = min(n, size - i)
        self._scope[i : i + first] = x[:first]
        self._scope[: n - first] = x[first:]
        self._scope_pos = (i + n) % size

    def _free(self, v: Voice) -> None:
        v.state = FREE
        if v.ticket is not None:
            self._commands.append(("end", v.ticket))
            v.ticket = None

    def _apply(self, ev: tuple) -> None:
        kind = ev[0]
        sr = self._sample_rate
        if kind == "on":
            t_event = ev[4] if len(ev) > 4 else None
            ticket = ev[5] if len(ev) > 5 else None
            if self._mono:
                self._mono_on(ev[1], ev[2], ev[3], t_event, ticket)
            else:
                self._start_voice(ev[1], ev[2], ev[3], t_event=t_event, ticket=ticket)
        elif kind == "off":
            _, note, ch = ev
            if self._mono and self._mono_off(note, ch):
                return
            for v in self.voices:
                if v.state != FREE and v.held and v.note == note and v.channel == ch:
                    if self._sustain_pedal[ch]:
                        v.held, v.sustained = False, True
                    else:
                        v.release(self.config.release_s * sr)
        elif kind == "sustain":
            _, on, ch = ev
            chans = range(16) if ch is None else (ch,)
            for c in chans:
                self._sustain_pedal[c] = on
            if not on:
                for v in self.voices:
                    if v.state != FREE and v.sustained and v.channel in chans:
                        v.release(self.config.release_s * sr)
        elif kind in ("notes_off", "sound_off"):
            ch = ev[1]
            fade = self.config.release_s if kind == "notes_off" else self.config.panic_fade_s
            for c in range(16) if ch is None else (ch,):
                self._sustain_pedal[c] = False
                self._held_keys[c].clear()
            for v in self.voices:
                if v.state != FREE and (ch is None or v.channel == ch):
                    if v.state == WAITING and kind == "sound_off":
                        self._free(v)  # not heard yet: drop it instead of a late blip
                    else:
                        v.release(fade * sr)
        elif kind == "bend":
            _, s, ch = ev
            for c in range(16) if ch is None else (ch,):
                self._bend[c] = s
        elif kind == "vec":
            _, vec, ch = ev
            if ch is None:
                self._default_vec = vec
            else:
                self._channel_vecs[ch] = vec
        elif kind == "gain":
            self._master = ev[1]
        elif kind == "mono":
            self._set_mono_now(ev[1])
        elif kind == "rate":
            self._sample_rate = ev[1]
            self._scope = np.zeros(max(1, int(self.config.scope_s * self._sample_rate)), np.float32)
            self._scope_pos = 0

    def _set_mono_now(self, on: bool) -> None:
        if on == self._mono:
            return
        self._mono = on
        for ch in range(16):
            held = [v for v in self.voices if v.state != FREE and v.channel == ch and v.held]
            held.sort(key=lambda v: v.order)
            self._held_keys[ch] = [(v.note, v.velocity) for v in held] if on else []

    def _mono_voice(self, ch: int) -> Voice | None:
        """The voice a mono channel is playing (held or sustained, not releasing)."""
        cands = [v for v in self.voices if v.state != FREE and v.channel == ch and v.rel_len == 0 and not v.stolen]
        return max(cands, key=lambda v: v.order) if cands else None

    def _legato(self, cur: Voice, note: int, velocity: int, ch: int, t_event: float | None = None, ticket=None) -> None:
        """Move a mono line to ``note``: the old voice crossfades into a new one that glides from its pitch."""
        cur.release(self.config.steal_fade_s * self._sample_rate)
        glide_from = cur.note if self._glides else None
        self._start_voice(note, velocity, ch, glide_from=glide_from, t_event=t_event, ticket=ticket)

    def _mono_on(self, note: int, velocity: int, ch: int, t_event: float | None = None, ticket=None) -> None:
        keys = self._held_keys[ch]
        keys[:] = [k for k in keys if k[0] != note] + [(note, velocity)]
        cur = self._mono_voice(ch)
        if cur is None or cur.note == note:
            self._start_voice(note, velocity, ch, t_event=t_event, ticket=ticket)
        else:
            self._legato(cur, note, velocity, ch, t_event, ticket)

    def _mono_off(self, note: int, ch: int) -> bool:
        """Mono note-off; True if handled (the line went back to an earlier held key)."""
        keys = self._held_keys[ch]
        keys[:] = [k for k in keys if k[0] != note]
        cur = self._mono_voice(ch)
        if cur is None or cur.note != note or not cur.held:
            return False  # not the line's key: only a voice left from poly mode can still hold it
        if keys:  # last-note priority: return to the most recent key still held
            back_note, back_vel = keys[-1]
            self._legato(cur, back_note, back_vel, ch)
            return True
        return False

    def _start_voice(
        self,
        note: int,
        velocity: int,
        ch: int,
        glide_from: int | None = None,
        t_event: float | None = None,
        ticket: NoteTicket | None = None,
    ) -> None:
        sr = self._sample_rate
        for v in self.voices:  # retrigger: release the same key still sounding
            if v.state != FREE and v.note == note and v.channel == ch and (v.held or v.sustained):
                v.release(self.config.release_s * sr)
        sounding = [v for v in self.voices if v.state != FREE and not v.stolen]
        if len(sounding) >= self.config.max_voices:
            released = [v for v in sounding if v.rel_len > 0]
            victim = min(released or sounding, key=lambda v: v.order)
            victim.stolen = True
            if victim.state == WAITING:
                self._free(victim)
            else:
                victim.release(self.config.steal_fade_s * sr)
            self._stats.voices_stolen += 1
        free = next((v for v in self.voices if v.state == FREE), None)
        if free is None:  # every slot is fading: cut the oldest fading one
            free = min((v for v in self.voices), key=lambda v: v.order)
            self._free(free)
        v = free
        self._order += 1
        v.order, v.note, v.channel, v.velocity = self._order, note, ch, velocity
        v.gain = 1.0 if self.source.models_velocity else velocity / 127.0
        v.held, v.sustained, v.stolen = True, False, False
        v.rel_len, v.rel_pos, v.rel_level = 0, 0, 1.0
        v.resampler.reset()
        v.state = WAITING
        t_event = time.perf_counter() if t_event is None else t_event
        if ticket is not None and ticket.begun and glide_from is not None:
            self._commands.append(("end", ticket))  # begun without the glide chosen here: begin it again
            ticket = None
        if ticket is None:  # a note the audio side starts itself (a mono line going back to a held key)
            vec = self._channel_vecs[ch]
            vec = self._default_vec if vec is None else vec
            ticket = self._ticket(note, velocity, ch, t_event, glide_from, vec, False)
        if not ticket.begun:
            if glide_from is not None:
                ticket.glide_from, ticket.key = glide_from, None
            ticket.begun = True
            self._commands.append(("begin", ticket))
        v.ticket, v.ring_open = ticket, False

    # ------------------------------------------------------------------ worker side
    def _worker_loop(self) -> None:
        while self._running:
            try:
                t0 = time.perf_counter()
                did = self._work_once(self._ahead) or self._prime_when_idle()
                t1 = time.perf_counter()
                if did:
                    self._busy += t1 - t0
                else:
                    self._wake.wait(0.001)
                    self._wake.clear()
                span = t1 - self._busy_since
                if span >= 0.25:
                    self._load = min(1.0, self._busy / span)
                    self._busy, self._busy_since = 0.0, t1
            except Exception as exc:  # keep the instrument alive; report through worker_error
                self.worker_error = exc
                if is_gpu_failure(exc) and getattr(self.source, "fall_back_to_cpu", lambda: False)():
                    log.warning("GPU failed (%s); the engine continues on the CPU", str(exc).splitlines()[0])
                    self._stats.device_name = self.source.device_name
                    continue
                log.exception("engine worker failed")
                time.sleep(0.05)

    def _prime_when_idle(self) -> bool:
        """Let the source prepare its warm-up for one more chord size (1 to ``max_voices`` notes, once each), so that
        no note waits for the first call of a batch size (a SING warm-up creates its oneDNN kernels then, 1-2 ms).
        True if it did."""
        prime = getattr(self.source, "prime", None)
        if prime is None or self._prime_next > self.config.max_voices:
            return False
        prime(self._prime_next)
        self._prime_next += 1
        return True

    def _work_sync(self, frames: int) -> None:
        """Offline: produce what this chunk needs, synchronously."""
        bend = max(abs(b) for b in self._bend)
        rate = max(self.src_rate / self._sample_rate * 2.0 ** (bend / 12.0), *self._rates_prev)
        target = math.ceil(rate * frames) + self.config.resampler_taps + self.hop
        while self._work_once(target):
            pass

    def _fill(self, slot: int) -> int:
        """Computed samples of the (active) slot's note not yet read by the audio side."""
        ring = self.rings[slot]
        return ring.write_pos - max(ring.read_pos, self._slot_ticket[slot].start)

    def _ready_ahead(self, slot: int) -> int:
        """Samples the slot's note has ready ahead of playback (its cached start not yet played counts too)."""
        t = self._slot_ticket[slot]
        n = self._fill(slot)
        if t.cached is not None:
            n += max(0, len(t.cached.audio) - t.read)
        return n

    def _work_once(self, target: int) -> bool:
        """Apply commands, then step every slot below ``target`` once. True if work was done."""
        begins, self._waiting_begin = self._waiting_begin, []
        ended, self._ended_meanwhile = self._ended_meanwhile, []
        for ticket in ended:
            self._end_note(ticket)
        did = self._drain_commands(begins, self._end_note)
        if begins:
            self._begin_notes(begins)
            if self._commands:
                return True  # more notes came during the warm-up: start them before the sounding voices' next hop
        cap = self.rings[0].capacity
        ahead = {s: self._ready_ahead(s) for s in self._active}
        slots = [s for s, n in ahead.items() if n < target and cap - self._fill(s) >= self.hop]
        if not slots:
            return did
        slots.sort(key=lambda s: (ahead[s], s))  # the least ready first: a note that has just started has two hops
        for i in range(0, len(slots), STEP_CHUNK):
            if i and self._commands:
                break  # a new note waits for one chunk at most, not for every voice's hop
            self._step(slots[i : i + STEP_CHUNK], self._between)
        return True

    def _begin_between(self) -> None:
        """Half way through a step (the source calls it): begin the notes that came meanwhile, so that they wait for
        half a step, not a whole one. Their end commands wait for the step's end: a slot of the step half done must
        not be freed and given to a new note under it."""
        begins: list[NoteTicket] = []
        self._drain_commands(begins, self._ended_meanwhile.append)
        if begins:
            self._begin_notes(begins)

    def _drain_commands(self, begins: list[NoteTicket], end: Callable[[NoteTicket], None]) -> bool:
        """Pop every queued command: tickets to begin go to ``begins``, tickets to end to ``end``. True if any."""
        popped = False
        while self._commands:
            kind, ticket = self._commands.popleft()
            popped = True
            if kind == "begin":
                begins.append(ticket)
            else:
                end(ticket)
        return popped

    def _step(self, slots: list[int], between: Callable[[], None] | None = None) -> None:
        """One hop of every slot in ``slots`` into its ring (and into its note-cache capture); ``between``: see
        :meth:`_begin_between`."""
        out = self.source.step(slots) if between is None else self.source.step(slots, between)
        for i, s in enumerate(slots):
            self.rings[s].write(out[i])
            t_event = self._first_pending.pop(s, None)
            if t_event is not None:
                self._latency.add(time.perf_counter() - t_event, False)
            cap_state = self._capture[s]
            if cap_state is not None:
                key, buf, n = cap_state
                buf[n : n + self.hop] = out[i]
                n += self.hop
                if n >= len(buf):
                    self._cache.put(key, CachedNote(buf, self.source.save_state(s)))
                    self._capture[s] = None
                else:
                    cap_state[2] = n

    def _end_note(self, ticket: NoteTicket) -> None:
        """The audio side let go of the ticket's voice: free its source slot."""
        s = ticket.slot
        if s < 0:
            ticket.cancelled = True  # dropped before it was begun (it may still wait for a slot)
            return
        if self._slot_ticket[s] is not ticket:
            return
        self._slot_ticket[s] = None
        self._active.discard(s)
        self._capture[s] = None
        self._first_pending.pop(s, None)
        self._free_src.append(s)

    def _begin_notes(self, tickets: list[NoteTicket]) -> None:
        """Give each ticket a source slot; warm up the computed notes in one batch with their first two hops, then
        restore the cached notes' state (their voices are already playing the cached audio: they can wait)."""
        cold: list[tuple[int, NoteTicket]] = []
        cached: list[tuple[int, NoteTicket]] = []
        for t in tickets:
            if t.cancelled:
                continue
            if not self._free_src:
                self._waiting_begin.append(t)
                continue
            s = self._free_src.pop()
            t.start = self.rings[s].write_pos
            self._capture[s] = None
            entry = self._cache.get(t.key) if t.key is not None else None  # also keeps a hit's LRU place
            if entry is not None and t.cached is None:  # a hit the control side could not see (begun by the audio side)
                t.cached = entry
                self._latency.add(time.perf_counter() - t.t_event, True)
            if t.cached is not None:  # (still holds its entry if it was evicted since note_on found it)
                cached.append((s, t))
                continue
            cold.append((s, t))
            if t.key is not None:
                self._stats.cache_misses += 1
                self._capture[s] = [t.key, np.zeros(self._prefix, np.float32), 0]
            self._first_pending[s] = t.t_event
        if cold:
            slots = [s for s, _ in cold]
            args = (
                slots,
                np.stack([t.vec for _, t in cold]),
                [t.note for _, t in cold],
                [float(t.velocity) for _, t in cold],
                [self._sustain_step] * len(cold),
            )
            if self._glides:
                self.source.start_many(*args, glide_from=[t.glide_from for _, t in cold])
            else:
                self.source.start_many(*args)
            self._publish(cold)
            self._step(slots)  # the first hop (SING computed it in the warm-up): the voices may start
            # and a second one at once: a voice playing its first hop has only ~10 ms before the resampler runs dry
            self._step(slots)
        for s, t in cached:
            self.source.load_state(s, t.cached.state)
            self._stats.cache_hits += 1
        self._publish(cached)

    def _publish(self, begun: list[tuple[int, NoteTicket]]) -> None:
        for s, t in begun:
            self._slot_ticket[s] = t
            self._active.add(s)
            t.slot = s  # published last: the audio side may read the slot's ring from here on

    # ------------------------------------------------------------------ offline
    def reset(self) -> None:
        """Silence everything and drop queued notes (keeps instruments, gain, rate, cache)."""
        while self._events:
            ev = self._events.popleft()
            if ev[0] in ("vec", "gain", "rate", "mono"):
                self._apply(ev)
        self._commands.clear()
        for v in self.voices:
            v.state, v.ticket = FREE, None
        self._active.clear()
        self._free_src = list(range(self.n_src - 1, -1, -1))
        self._slot_ticket = [None] * self.n_src
        self._waiting_begin = []
        self._ended_meanwhile = []
        self._capture = [None] * self.n_src
        self._first_pending.clear()
        self._sustain_pedal = [False] * 16
        self._held_keys = [[] for _ in range(16)]
        self._bend = [0.0] * 16
        base = self.src_rate / self._sample_rate
        self._rates_prev = [base] * 16

    def render_offline(self, events, total_frames: int, progress=None) -> np.ndarray:
        """Render ``(frame, mido.Message)`` events (sorted) into ``total_frames`` samples.

        Runs the real-time voice code synchronously (no threads): deterministic.
        ``progress(frames_done)`` is called now and then if given.
        """
        if self._thread is not None:
            raise RuntimeError("render_offline needs a stopped engine (call stop() first)")
        total_frames = int(total_frames)
        out = np.zeros(total_frames, np.float32)
        self.reset()
        self._sync = True
        try:
            pos = 0
            for frame, msg in events:
                frame = min(max(int(frame), pos), total_frames)
                if frame > pos:
                    self.render(frame - pos, out[pos:frame])
                    pos = frame
                    if progress is not None:
                        progress(pos)
                self.handle_midi(msg)
            if total_frames > pos:
                self.render(total_frames - pos, out[pos:])
                if progress is not None:
                    progress(total_frames)
        finally:
            self._sync = False
            self.reset()
        return out


def _clamp_int(x, lo: int, hi: int) -> int:
    try:
        return int(min(max(int(x), lo), hi))
    except (TypeError, ValueError, OverflowError):
        return lo


def _ch(channel) -> int:
    return _clamp_int(channel if channel is not None else 0, 0, 15)
