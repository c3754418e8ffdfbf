"""The app's synths (no Qt): SING (instrument embeddings) and the WaveRNN Voice (timbre presets)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SING, VOICE = "sing", "voice"


@dataclass(frozen=True)
class SynthKind:
    """How the window presents one synth and sizes its engine."""

    key: str
    label: str  # toolbar entry
    title: str  # window title
    table_name: str  # what the table rows are called
    vector_name: str  # caption of the per-dimension faders ({dim} is filled in)
    max_voices: int
    glides: bool  # has the Voice panel (mono/poly, glide, vibrato, ADSR)


SYNTHS = {
    SING: SynthKind(SING, "SING", "NeuroSynth — SING neural instrument", "Instruments", "Embedding ({dim} dims)",
                    16, False),
    VOICE: SynthKind(VOICE, "Voice", "NeuroSynth — WaveRNN voice", "Timbre presets",
                     "Spectral envelope ({dim} mel-cepstra)", 4, True),
}  # fmt: skip


def load_voice_source(path: str | os.PathLike | None = None, device: str | None = "auto"):
    """The WaveRNN voice from ``path`` (default ``assets/voice_default.pt`` or ``$NEUROSYNTH_VOICE_CHECKPOINT``).

    Raises FileNotFoundError / CheckpointError for missing or bad weights and RuntimeError when this build
    has no WaveRNN sampler; every message says what is wrong.
    """
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"voice checkpoint not found: {path}")
    try:
        from synth_core.engine.wavernn_source import load_default_voice
    except ImportError as e:
        raise RuntimeError(f"the WaveRNN voice is not available in this build ({e})") from e
    return load_default_voice(device=device, path=path or None)
