"""Keyboard control of a WaveRNN voice: MIDI pitch, velocity and an ADSR become frame features.

One :class:`VoiceLines` object keeps the control state of many voice slots (pitch with glide and
delayed vibrato, loudness attack/decay/sustain from the velocity, a timbre envelope from a
preset) and emits the next conditioning frame of each slot. The release is the engine's output
envelope, so a slot only ever attacks, glides and sustains here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .features import control_frames


@dataclass
class VoiceSettings:
    """How the keyboard drives the voice (times in seconds, levels in dB)."""

    attack_s: float = 0.04
    decay_s: float = 0.25
    sustain_db: float = -4.0  # below the peak
    floor_db: float = -60.0  # level the attack starts from
    quiet_db: float = -34.0  # peak level at velocity 1
    loud_db: float = -12.0  # peak level at velocity 127
    # the quietest peak the model is conditioned on: its sampling noise does not follow the loudness feature
    # (at velocity 30, conditioned at -29 dB, half the energy was noise), so quieter notes are played at this
    # level and scaled down, noise and all
    clean_db: float = -17.0
    glide_s: float = 0.08  # legato portamento time
    vibrato_cents: float = 15.0
    vibrato_hz: float = 5.5
    vibrato_delay_s: float = 0.4
    # sampling temperature of the dual softmax: 1 is the model's own distribution (breathier), lower is
    # cleaner and more tonal; a small voice trained briefly sounds best below 1
    temperature: float = 0.7

    def peak_db(self, velocity: float) -> float:
        v = min(max(float(velocity), 1.0), 127.0) / 127.0
        return self.quiet_db + (self.loud_db - self.quiet_db) * v

    def conditioned_peak_db(self, velocity: float) -> float:
        """The peak level the model is asked for (never below ``clean_db``)."""
        return max(self.peak_db(velocity), self.clean_db)

    def output_gain(self, velocity: float) -> float:
        """The linear gain from the conditioned level down to the velocity's level (1 from ``clean_db`` up)."""
        return float(10.0 ** ((self.peak_db(velocity) - self.conditioned_peak_db(velocity)) / 20.0))


class VoiceLines:
    """Control state of ``n_slots`` voice slots; ``next_frames(slots)`` advances them by one frame."""

    def __init__(self, n_slots: int, frame_s: float, n_envelope: int = 20, settings: VoiceSettings | None = None):
        self.settings = settings or VoiceSettings()
        self.frame_s = float(frame_s)
        self.t = np.zeros(n_slots)  # seconds since the note started
        self.pitch_from = np.zeros(n_slots)
        self.pitch_to = np.zeros(n_slots)
        self.peak_db = np.zeros(n_slots)
        self.gain = np.ones(n_slots, np.float32)  # output gain below the clean level (see VoiceSettings)
        self.legato = np.zeros(n_slots, bool)  # started from another note: no attack
        self.envelope = np.zeros((n_slots, n_envelope), np.float32)

    def start(
        self, slot: int, pitch: float, velocity: float, envelope: np.ndarray, glide_from: float | None = None
    ) -> None:
        self.t[slot] = 0.0
        self.pitch_to[slot] = float(pitch)
        self.pitch_from[slot] = float(pitch if glide_from is None else glide_from)
        self.peak_db[slot] = self.settings.conditioned_peak_db(velocity)
        self.gain[slot] = self.settings.output_gain(velocity)
        self.legato[slot] = glide_from is not None
        self.envelope[slot] = np.asarray(envelope, np.float32).reshape(-1)[: self.envelope.shape[1]]

    def pitch(self, slots: np.ndarray, t: np.ndarray) -> np.ndarray:
        s = self.settings
        glide = np.clip(t / max(s.glide_s, 1e-6), 0.0, 1.0)
        glide = glide * glide * (3 - 2 * glide)  # smoothstep: no corner at either end
        midi = self.pitch_from[slots] + (self.pitch_to[slots] - self.pitch_from[slots]) * glide
        depth = np.clip((t - s.vibrato_delay_s) / 0.3, 0.0, 1.0) * s.vibrato_cents / 100.0
        return midi + depth * np.sin(2 * np.pi * s.vibrato_hz * t)

    def loudness_db(self, slots: np.ndarray, t: np.ndarray) -> np.ndarray:
        s = self.settings
        peak = self.peak_db[slots]
        sustain = peak + s.sustain_db
        a = np.clip(t / max(s.attack_s, 1e-6), 0.0, 1.0)
        attack = s.floor_db + (peak - s.floor_db) * np.sqrt(a)
        d = np.clip((t - s.attack_s) / max(s.decay_s, 1e-6), 0.0, 1.0)
        decay = peak + (sustain - peak) * d
        level = np.where(t < s.attack_s, attack, decay)
        return np.where(self.legato[slots], np.maximum(level, sustain), level)

    def next_frames(self, slots: Sequence[int]) -> np.ndarray:
        """The next conditioning frame of each slot: float32 [len(slots), 1, n_features]."""
        idx = np.asarray(list(slots), dtype=np.int64)
        t = self.t[idx]
        # one control frame per slot: the slots stand in for control_frames' time axis
        frames = control_frames(self.pitch(idx, t), self.loudness_db(idx, t), self.envelope[idx])
        self.t[idx] += self.frame_s
        return np.asarray(frames, np.float32)[:, None, :]

    def frames_ahead(self, slot: int, n: int) -> np.ndarray:
        """The slot's next ``n`` frames at once, float32 [n, n_features]: what ``n`` calls of ``next_frames([slot])``
        return, one array operation each (offline, where a note's frames are all known before it is sampled)."""
        steps = np.full(max(0, int(n)), self.frame_s)
        if not len(steps):
            return np.zeros((0, 3 + self.envelope.shape[1]), np.float32)
        steps[0] = self.t[slot]
        t = np.cumsum(steps)  # sequential sums: the same times as adding frame_s call after call
        idx = np.full(len(t), int(slot), np.int64)
        frames = control_frames(self.pitch(idx, t), self.loudness_db(idx, t), self.envelope[idx])
        self.t[slot] = t[-1] + self.frame_s
        return np.asarray(frames, np.float32)

    def snapshot(self, slot: int) -> tuple:
        return (
            self.t[slot],
            self.pitch_from[slot],
            self.pitch_to[slot],
            self.peak_db[slot],
            self.gain[slot],
            self.legato[slot],
            self.envelope[slot].copy(),
        )

    def restore(self, slot: int, snap: tuple) -> None:
        (
            self.t[slot],
            self.pitch_from[slot],
            self.pitch_to[slot],
            self.peak_db[slot],
            self.gain[slot],
            self.legato[slot],
            self.envelope[slot],
        ) = snap
