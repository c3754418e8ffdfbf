"""Engine settings and the monitoring snapshot the GUI reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EngineConfig:
    """Settings of an :class:`~synth_core.engine.Engine`.

    ``channel`` None listens to every MIDI channel (omni), else only to that channel (0..15).
    ``sustain_s``: notes held longer than the model's note are kept sounding by freezing the
    model's time embedding at this point of the note (just before the learned release of
    NSynth notes at 3 s); ``None`` follows the learned time course (the note then dies out).
    ``mono``: a new key while one is held moves the line there without a new attack (the old
    voice crossfades in ``steal_fade_s`` into one that glides from the old pitch, for sources with
    ``supports_glide``); releasing it goes back to the latest key still held.
    """

    sample_rate: int = 48000
    block_size: int = 256
    max_voices: int = 16
    release_s: float = 0.3
    channel: int | None = None
    bend_range: float = 2.0  # semitones for a full pitch-wheel throw
    sustain_s: float | None = 2.5
    steal_fade_s: float = 0.01  # fade of a stolen voice (short, but not a click)
    panic_fade_s: float = 0.003  # fade for all_sound_off
    master_gain: float = 1.0
    limiter_threshold: float = 0.8  # soft limiter: linear below, tanh knee above
    render_ahead_s: float = 0.25  # how far ahead of playback the worker keeps each voice (model time)
    cache_entries: int = 256  # rendered-note cache size (LRU); 0 disables the cache
    cache_prefix_s: float = 0.25  # audio kept per cached note (plus the model state to continue from)
    resampler_taps: int = 24  # 16 kHz -> 48 kHz images below -60 dB
    scope_s: float = 1.0  # output history kept for scope()
    mono: bool = False  # one line per channel, last-note priority, legato (glide where the source supports it)
    mpe: bool = False  # MPE from the start on all 16 channels (lower zone; see Engine.set_mpe)
    mpe_pressure_db: float = 24.0  # an MPE note's loudness from its pressure: 0 dB at full pressure, -this at none
    mpe_slide_ahead_s: float = 0.1  # how far ahead the worker computes notes that slide moves (what delays a slide)


@dataclass
class EngineStats:
    """A snapshot of the engine for status bars and meters."""

    active_voices: int = 0
    max_voices: int = 0
    underruns: int = 0
    device_name: str = ""
    sample_rate: int = 0
    block_size: int = 0
    output_latency_s: float = 0.0
    render_load: float = 0.0
    cache_hits: int = 0
    # additions beyond the contract
    cache_misses: int = 0
    voices_stolen: int = 0
    note_latency_s: float = 0.0  # last note-on to first-sample compute latency (worker side)
