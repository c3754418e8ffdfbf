"""A stand-in for the WaveRNN voice source (tests, screenshots): a sine line with glide, vibrato and ADSR.

It has what the app and ``sing-render`` use of :class:`~synth_core.engine.wavernn_source.WaveRNNSource`:
``supports_glide``, ``settings`` / ``set_settings(**changes)`` and timbre presets as 20-dim "envelopes".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..sing.checkpoint import InstrumentInfo
from .sources import SineSource


@dataclass
class SineVoiceSettings:
    """The VoiceSettings fields the stand-in follows (same names and units)."""

    attack_s: float = 0.04
    decay_s: float = 0.25
    sustain_db: float = -4.0
    glide_s: float = 0.08
    vibrato_cents: float = 15.0
    vibrato_hz: float = 5.5
    vibrato_delay_s: float = 0.4
    temperature: float = 0.7  # accepted so the panel can set it; a sine has no noise to shape


class SineVoiceSource(SineSource):
    """Harmonic tone whose pitch glides from ``glide_from`` to the note (smoothstep over ``glide_s``)."""

    supports_glide = True

    def __init__(self, n_presets: int = 4, dim: int = 20, hop: int = 160, names: list[str] | None = None):
        super().__init__(hop=hop, n_instruments=n_presets, dim=dim)
        names = names or [f"preset {i + 1}" for i in range(n_presets)]
        self.instruments = [InstrumentInfo(n, "vocal") for n in names[:n_presets]]
        rng = np.random.default_rng(1)
        self.instrument_table = (0.3 * rng.standard_normal((n_presets, dim)) / np.arange(1, dim + 1)).astype(np.float32)
        self.device_name = "CPU (sine voice stand-in)"
        self.settings = SineVoiceSettings()

    def set_settings(self, **changes: Any) -> None:
        """Change glide, vibrato, ADSR (unknown names raise TypeError, like the real voice)."""
        self.settings = replace(self.settings, **changes)

    def prepare(self, n_slots: int) -> None:
        super().prepare(n_slots)
        self.pitch_from = np.zeros(n_slots)
        self.pitch_to = np.zeros(n_slots)
        self.phase = np.zeros(n_slots)
        self.legato = np.zeros(n_slots, bool)

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None, glide_from=None) -> None:
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)
        glide_from = glide_from or [None] * len(slots)
        for s, p, g in zip(slots, pitches, glide_from, strict=True):
            self.pitch_to[s] = float(p)
            self.pitch_from[s] = float(p if g is None else g)
            self.legato[s] = g is not None
            self.phase[s] = 0.0

    def step(self, slots) -> np.ndarray:
        s = self.settings
        idx = np.asarray(list(slots), dtype=np.int64)
        t = (self.n[idx, None] + np.arange(self.hop)) / self.sample_rate  # [slots, hop] seconds into the note
        g = np.clip(t / max(s.glide_s, 1e-6), 0.0, 1.0)
        g = g * g * (3 - 2 * g)
        midi = self.pitch_from[idx, None] + (self.pitch_to - self.pitch_from)[idx, None] * g
        depth = np.clip((t - s.vibrato_delay_s) / 0.3, 0.0, 1.0) * s.vibrato_cents / 100.0
        midi = midi + depth * np.sin(2 * np.pi * s.vibrato_hz * t)
        inc = 2 * np.pi * 440.0 * 2.0 ** ((midi - 69.0) / 12.0) / self.sample_rate
        phase = self.phase[idx, None] + np.cumsum(inc, axis=1) - inc[:, :1]
        self.phase[idx] = phase[:, -1] + inc[:, -1]
        sustain = 10.0 ** (s.sustain_db / 20.0)
        attack = np.clip(t / max(s.attack_s, 1e-6), 0.0, 1.0)
        decay = 1.0 + (sustain - 1.0) * np.clip((t - s.attack_s) / max(s.decay_s, 1e-6), 0.0, 1.0)
        env = np.where(t < s.attack_s, attack, decay)
        env = np.where(self.legato[idx, None], np.maximum(env, sustain), env)
        out = sum(np.sin(k * phase) / k for k in range(1, self.harmonics + 1))
        self.n[idx] += self.hop
        return (self.amp[idx, None] * env * out).astype(np.float32)

    def save_state(self, slot: int) -> Any:
        return (*super().save_state(slot), self.pitch_from[slot], self.pitch_to[slot], self.phase[slot],
                self.legato[slot])  # fmt: skip

    def load_state(self, slot: int, state: Any) -> None:
        super().load_state(slot, state[:3])
        self.pitch_from[slot], self.pitch_to[slot], self.phase[slot], self.legato[slot] = state[3:]
