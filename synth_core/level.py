"""How loud an instrument vector plays, and the gain that makes it play at the level of its nearest instrument.

A new instrument (an embedding fitted to the player's samples) can play far quieter than the model's own: its
level is measured by rendering a few notes through the source (``render_notes``, the offline path: the notes the
engine would play) for the new vector and for the nearest row of the instrument table, and the difference is the
gain it plays with (``LevelMatch.gain``, given to ``Engine.set_instrument_vector``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PITCHES = tuple(range(42, 79, 3))  # F#2..F#5 in minor thirds: a fitted vector's level can change with the pitch
VELOCITIES = (64, 100, 127)
SECONDS = 1.0  # from the onset: the attack and the start of the sustain, where a note's level is heard
MAX_GAIN_DB = 30.0  # a vector that renders (nearly) silence is not boosted into noise


def level_db(audio: np.ndarray) -> float:
    """RMS level of ``audio`` in dBFS (-120 for silence)."""
    x = np.asarray(audio, dtype=np.float64)
    ms = float(np.mean(np.square(x))) if x.size else 0.0
    return 10.0 * np.log10(ms) if ms > 1e-12 else -120.0


def render_probe(
    source,
    vec: np.ndarray,
    pitches: Sequence[int] = PITCHES,
    velocities: Sequence[int] = VELOCITIES,
    seconds: float = SECONDS,
) -> list[np.ndarray]:
    """The first ``seconds`` of one note per pitch and velocity played with ``vec`` (the source's rate, float32)."""
    grid = [(p, v) for v in velocities for p in pitches]
    n, k = int(round(seconds * source.sample_rate)), len(grid)
    vecs = np.repeat(np.asarray(vec, np.float32).reshape(1, -1), k, axis=0)
    return source.render_notes(vecs, [p for p, _ in grid], [float(v) for _, v in grid], [None] * k, [n] * k)


def vector_level_db(
    source,
    vec: np.ndarray,
    pitches: Sequence[int] = PITCHES,
    velocities: Sequence[int] = VELOCITIES,
    seconds: float = SECONDS,
) -> float:
    """RMS level (dBFS) of the notes of :func:`render_probe`, pooled."""
    return level_db(np.concatenate(render_probe(source, vec, pitches, velocities, seconds)))


def nearest_row(table: np.ndarray, vec: np.ndarray) -> int:
    """Index of the table row nearest to ``vec`` (Euclidean)."""
    table = np.asarray(table, np.float32)
    if table.ndim != 2 or not len(table):
        raise ValueError("the instrument table is empty")
    return int(np.argmin(np.linalg.norm(table - np.asarray(vec, np.float32).reshape(1, -1), axis=1)))


@dataclass(frozen=True)
class LevelMatch:
    nearest: int  # the row of the table it was matched to
    level_db: float  # the vector's own level (dBFS RMS of the probe notes)
    target_db: float  # the nearest row's
    gain_db: float  # plays at target_db with this gain (clamped to +-MAX_GAIN_DB)

    @property
    def gain(self) -> float:
        return float(10.0 ** (self.gain_db / 20.0))

    def to_json(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def match_level(source, vec: np.ndarray, table: np.ndarray | None = None, **probe) -> LevelMatch:
    """The gain that makes ``vec`` play at the level of its nearest row of ``table`` (default: the source's
    instrument table). ``probe``: :func:`render_probe`'s pitches / velocities / seconds.

    The level is the RMS of all the probe's notes together (what a player hears over a range): measured on 13
    pitches and 3 velocities, the gain found for fitted instruments kept other notes within 0.6 dB of their
    nearest instrument (5 pitches at one velocity: up to 5.8 dB off).
    """
    table = np.asarray(source.instrument_table if table is None else table, np.float32)
    near = nearest_row(table, vec)
    own, target = vector_level_db(source, vec, **probe), vector_level_db(source, table[near], **probe)
    gain = float(np.clip(target - own, -MAX_GAIN_DB, MAX_GAIN_DB))
    return LevelMatch(near, float(own), float(target), gain)
