"""The audio side's mixing of one chunk: voices start once their first hop is ready, take their ready samples
(the note cache's audio first, then their source slot's ring), are resampled 16 kHz -> the output rate with their
channel's pitch bend (one pass per channel; the rate glides linearly across the chunk), get their gain or release
envelope, and are summed; then the master gain and the soft limiter (linear to the threshold, tanh knee above).
An MPE note (:mod:`.mpe`) with a bend of its own is resampled in a pass of its own at its channel's rate times its
bend, and its pressure's gain glides across the chunk too; a voice without either costs two comparisons more.

A sounding voice without enough ready samples is silent for that chunk and counted in ``stats().underruns``.
Only small per-chunk numpy temporaries; no lock, never waits.
"""

from __future__ import annotations

import time

import numpy as np

from .config import EngineConfig, EngineStats
from .note_ticket import StartLog
from .resampler import ResamplerBank
from .ring import SampleRing
from .voice import FREE, PLAYING, WAITING, Voice, release_curve

MAX_CHUNK = 1024  # the longest chunk mixed at once (render splits longer blocks)
NOTE_BEND_MIN, NOTE_BEND_MAX = -96.0, 24.0  # a note's whole bend (channel + its own), semitones: up to 4x the input


def soft_limit(mix: np.ndarray, threshold: float) -> None:
    """In place: linear up to ``threshold``, a tanh knee above it (never reaching 1)."""
    t = threshold
    peak = float(np.max(np.abs(mix))) if len(mix) else 0.0
    if peak > t:
        over = np.abs(mix) > t
        mag = np.abs(mix[over])
        mix[over] = np.sign(mix[over]) * (t + (1.0 - t) * np.tanh((mag - t) / (1.0 - t)))


class Mixer:
    def __init__(
        self,
        voices: list[Voice],
        resamplers: ResamplerBank,
        rings: list[SampleRing],
        free,
        config: EngineConfig,
        stats: EngineStats,
        hop: int,
        src_rate: int,
        sample_rate: int,
    ):
        self.voices = voices
        self._resamplers = resamplers
        self._rings = rings
        self._free = free  # VoiceAllocator.free: a voice whose release ended
        self._stats = stats
        self._hop = hop
        self._src_rate = src_rate
        self._threshold = config.limiter_threshold
        self.master = float(config.master_gain)
        self.starts = StartLog()  # note_on -> the audio block that starts it
        self._mix = np.zeros(MAX_CHUNK, np.float32)
        self._vout = np.zeros(len(voices) * MAX_CHUNK, np.float32)  # one row per voice rendered in a chunk
        self._ramp = np.arange(MAX_CHUNK + 1, dtype=np.float64)
        self.set_sample_rate(sample_rate)
        self.clear()

    def set_sample_rate(self, sample_rate: int) -> None:
        self._base = self._src_rate / sample_rate  # source samples per output sample, unbent

    def clear(self) -> None:
        """No bend on any channel."""
        self.bend = [0.0] * 16  # semitones per channel
        self.rates_prev = [self._base] * 16  # each channel's resampling rate at the end of the last chunk

    def max_rate(self) -> float:
        """The fastest resampling rate the next chunk can use (source samples per output sample)."""
        bend = max(abs(b) for b in self.bend)
        note = max((max(v.bend, v.bend_prev) for v in self.voices if v.state != FREE), default=0.0)
        if note > 0.0:  # an MPE note bent up: its own rate on top of its channel's
            bend = min(bend + note, NOTE_BEND_MAX)
        return max(self._base * 2.0 ** (bend / 12.0), *self.rates_prev)

    def _note_rates(self, v: Voice, r0: float, r1: float) -> tuple[float, float]:
        """The channel's rates ``r0, r1`` with the note's own bend (then and now), its whole bend clamped."""
        lo, hi = self._base * 2.0 ** (NOTE_BEND_MIN / 12.0), self._base * 2.0 ** (NOTE_BEND_MAX / 12.0)
        r0 = min(max(r0 * 2.0 ** (v.bend_prev / 12.0), lo), hi)
        r1 = min(max(r1 * 2.0 ** (v.bend / 12.0), lo), hi)
        return r0, r1

    def rates(self) -> list[float]:
        """Each channel's resampling rate at the end of the next chunk (its bend applied)."""
        base = self._base
        return [base * 2.0 ** (bend / 12.0) for bend in self.bend]

    def start_if_ready(self, v: Voice) -> bool:
        """A waiting voice starts playing once its note's first hop is ready (or its start is cached)."""
        t = v.ticket
        if t.cached is None and (t.slot < 0 or self._rings[t.slot].write_pos - t.start < self._hop):
            return False  # not started yet: the first hop is still being computed
        v.state = PLAYING
        self.starts.add(time.perf_counter() - t.t_event, t.cached is not None)
        return True

    def mix(self, out: np.ndarray) -> np.ndarray:
        """Mix the next ``len(out)`` (<= MAX_CHUNK) output samples into ``out``; returns them (a scratch view)."""
        frames = len(out)
        mix = self._mix[:frames]
        mix[:] = 0.0
        rates = self.rates()
        rates_prev = self.rates_prev
        ready: dict[int, tuple[float, float, list[Voice]]] = {}  # channel (or -1 - slot) -> r0, r1, voices ready
        for v in self.voices:
            if v.state == FREE or (v.state == WAITING and not self.start_if_ready(v)):
                continue
            key = ch = v.channel
            r0, r1 = rates_prev[ch], rates[ch]
            if v.bend != 0.0 or v.bend_prev != 0.0:  # an MPE note with a bend of its own: a pass of its own
                r0, r1 = self._note_rates(v, r0, r1)
                key = -1 - v.slot
                v.bend_prev = v.bend
            if self._refill(v, frames, r0, r1):
                group = ready.get(key)
                if group is None:
                    ready[key] = (r0, r1, [v])
                else:
                    group[2].append(v)
            else:
                self._stats.underruns += 1
        for r0, r1, voices in ready.values():  # one resampling pass per channel (its voices share the bend)
            self._mix_voices(voices, mix, r0, r1)
        rates_prev[:] = rates
        mix *= self.master
        soft_limit(mix, self._threshold)
        out[:] = mix
        return mix

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
                ring = self._rings[t.slot]
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
            g0, g1 = v.expr_gain_prev, v.expr_gain
            if g0 != 1.0 or g1 != 1.0:  # an MPE note's pressure: its gain glides across the chunk
                if g0 == g1:
                    vout *= g1
                else:
                    vout *= (g0 + (g1 - g0) * (self._ramp[1 : frames + 1] / frames)).astype(np.float32)
                v.expr_gain_prev = g1
            if v.rel_len > 0:
                x = (self._ramp[:frames] + v.rel_pos) / v.rel_len
                vout *= (v.rel_level * v.gain) * release_curve(x).astype(np.float32)
                v.rel_pos += frames
                if v.rel_pos >= v.rel_len:
                    self._free(v)
            elif v.gain != 1.0:
                vout *= v.gain
        mix += rows.sum(axis=0)
