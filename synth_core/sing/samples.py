"""Notes from audio files: the reading, checks and pitch labels shared by the app's instrument fit and training.

A note file is any WAV/FLAC (any rate, any channels): mixed to mono, resampled to the model's rate, trimmed or
zero-padded to the note length. Its pitch and velocity come from its name (``<instrument>_<pitch or note
name>[_<velocity>]``, or a pack manifest), else the pitch is estimated from the audio. Files that do not decode,
hold NaN/inf samples, are too short to hold a note's attack (:data:`MIN_NOTE_SECONDS`), silent, a constant, or
unpitched without a label are reported ``(path, reason)`` and left out; nothing else is lost.
:func:`read_samples` is what "New instrument from samples" reads; ``training.datasets`` builds its training
datasets on the same functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from synth_core.dsp import estimate_note_pitch, peak_db, resample
from synth_core.sing.model import SINGConfig

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NOTE_SAMPLES = 64000
MAX_PITCH = 120
AUDIO_EXTENSIONS = (".wav", ".flac")
DEFAULT_VELOCITY = 100
#: The shortest sample taken as a note, in model hops. The model decodes (and its loss compares) 1024-sample
#: frames 256 apart (``SINGConfig.frame`` / ``hop``: 64 ms / 16 ms at 16 kHz). 6 hops (96 ms) give the loss 3
#: frames: the fewest in which a note's onset and what follows it are both seen. A shorter file (a truncated
#: download or copy: a header and a few samples) holds no attack to learn from: zero-padded to the note length
#: it would teach the fit a click and 4 s of silence at the pitch in its name.
MIN_NOTE_HOPS = 6
MIN_NOTE_SECONDS = MIN_NOTE_HOPS * SINGConfig.hop / SINGConfig.sample_rate
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_NOTE_NAME = re.compile(r"^([A-Ga-g])([#b♯♭s]?)(-?\d+)$")
_SEMITONES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True)
class NoteRecord:
    """Where a note's audio lives and what it is (before loading)."""

    path: Path
    instrument: str
    pitch: int
    velocity: int
    family: str = "unknown"
    source: str = "unknown"
    pitch_estimated: bool = False  # no pitch in the file name or manifest: estimated from the audio


def parse_pitch(text: str | int) -> int:
    """MIDI pitch from a number ("60") or a note name ("C4" = 60, "A#3", "Eb2", "Cs4").

    Raises ValueError when unparsable or outside 0..120.
    """
    s = str(text).strip()
    try:
        pitch = int(float(s)) if re.fullmatch(r"-?\d+(\.0*)?", s) else None
    except ValueError:
        pitch = None
    if pitch is None:
        m = _NOTE_NAME.match(s)
        if not m:
            raise ValueError(f"not a MIDI pitch or note name: {s!r}")
        letter, accidental, octave = m.groups()
        shift = {"#": 1, "♯": 1, "s": 1, "b": -1, "♭": -1}.get(accidental, 0)
        pitch = 12 * (int(octave) + 1) + _SEMITONES[letter.lower()] + shift
    if not 0 <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch {pitch} outside 0..{MAX_PITCH}")
    return pitch


def parse_velocity(text: str | int | None) -> int:
    """MIDI velocity clamped to 1..127 (missing -> 100)."""
    if text is None or str(text).strip() == "":
        return DEFAULT_VELOCITY
    return int(min(127, max(1, round(float(str(text).strip())))))


def _looks_like_pitch(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", text) or _NOTE_NAME.match(text))


class NoPitchInName(ValueError):
    """A file name that does not end in a pitch (the note's pitch is estimated from its audio instead)."""


def note_name(pitch: int) -> str:
    """MIDI pitch -> note name (60 -> 'C4')."""
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


def parse_note_filename(path: str | Path) -> tuple[str, int, int]:
    """``<instrument>_<pitch or note name>[_<velocity>].wav`` -> (instrument, pitch, velocity).

    Raises :class:`NoPitchInName` for names that do not fit, ValueError for pitches outside 0..120.
    """
    stem = Path(path).stem
    parts = stem.rsplit("_", 2)
    if len(parts) == 3 and parts[0] and _looks_like_pitch(parts[1]) and re.fullmatch(r"\d+", parts[2]):
        return parts[0], parse_pitch(parts[1]), parse_velocity(parts[2])
    parts = stem.rsplit("_", 1)
    if len(parts) == 2 and parts[0] and _looks_like_pitch(parts[1]):
        return parts[0], parse_pitch(parts[1]), DEFAULT_VELOCITY
    raise NoPitchInName(f"file name {Path(path).name!r} is not <instrument>_<pitch>_<velocity>")


def load_note_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, n_samples: int = NOTE_SAMPLES, min_seconds: float = 0.0
) -> np.ndarray:
    """Read any sample rate/channel count, mix to mono, resample, trim/pad: float32 [n_samples].

    Raises ValueError for empty or non-finite audio, :class:`UnusableAudio` for audio shorter than
    ``min_seconds`` (soundfile errors pass through).
    """
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if data.size == 0:
        raise ValueError("no audio frames")
    if len(data) < min_seconds * sr:
        raise UnusableAudio(
            f"too short to hold a note: {1000 * len(data) / sr:.0f} ms of audio, at least "
            f"{1000 * min_seconds:.0f} ms needed (a truncated file?)"
        )
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise ValueError("audio contains NaN or infinite samples")
    mono = resample(mono, sr, sample_rate)
    out = np.zeros(n_samples, dtype=np.float32)
    n = min(n_samples, len(mono))
    out[:n] = mono[:n]
    return out


class UnusableAudio(ValueError):
    """A readable file that holds no note to learn from (too short, silent, or a constant / flat-clipped signal)."""


#: Peaks below this (dBFS) count as silent.
SILENCE_DB = -80.0


def check_note_audio(wav: np.ndarray) -> None:
    """Raise :class:`UnusableAudio` for silent audio or audio that is only a constant (DC or clipped flat)."""
    level = peak_db(wav)
    if level < SILENCE_DB:
        raise UnusableAudio(f"silent (peak {level:.0f} dBFS)")
    peak = 10 ** (level / 20)
    if float(np.std(wav[np.abs(wav) > 0])) < 1e-4 * peak + 1e-9:
        raise UnusableAudio("no signal: a constant value (DC offset or a flat, clipped recording)")


#: (path, instrument, pitch text ("" = estimate it), velocity text (None = default), family (None = unknown))
Candidate = tuple[Path, str, str | int, str | None, str | None]


def decode_notes(
    candidates: Iterable[Candidate],
    sample_rate: int,
    note_samples: int,
    skip: Callable[[Path, str], None],
) -> Iterator[tuple[NoteRecord, np.ndarray]]:
    """Read each candidate: (record, float32 [note_samples]) for a usable note, else ``skip(path, reason)``."""
    for path, inst, pitch_text, vel_text, family in candidates:
        try:
            pitch = parse_pitch(pitch_text) if str(pitch_text).strip() else None
            velocity = parse_velocity(vel_text)
        except ValueError as exc:
            skip(path, str(exc))
            continue
        if not path.is_file():
            skip(path, "file not found")
            continue
        try:
            wav = load_note_audio(path, sample_rate, note_samples, MIN_NOTE_SECONDS)
            check_note_audio(wav)
        except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError for corrupt files
            skip(path, f"unreadable: {exc}" if not isinstance(exc, UnusableAudio) else str(exc))
            continue
        estimated = pitch is None
        if estimated:
            pitch, f0, ratio = estimate_note_pitch(wav, sample_rate)
            if pitch is None or pitch > MAX_PITCH:
                skip(
                    path,
                    f"no pitch in its name and none could be estimated ({100 * ratio:.0f} % of the energy on the "
                    f"harmonics of {f0:.1f} Hz): name it <instrument>_<pitch>.wav or list it in pack.csv",
                )
                continue
            log.info("%s: no pitch in its name; estimated %d (%s, %.1f Hz)", path.name, pitch, note_name(pitch), f0)
        yield NoteRecord(path, inst, pitch, velocity, family or "unknown", pitch_estimated=estimated), wav


def sample_candidates(paths: Iterable[str | Path], instrument: str) -> list[Candidate]:
    """Audio files (and the audio files inside folders) as candidate notes of one ``instrument``.

    Pitches and velocities come from file names when they end in ``_<pitch>[_<velocity>]``; otherwise (or for a
    pitch out of range) the pitch is estimated and the velocity is 100.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            files.append(p)
    candidates: list[Candidate] = []
    for path in files:
        try:
            _, pitch, velocity = parse_note_filename(path)
            candidates.append((path, instrument, pitch, str(velocity), None))
        except ValueError:  # no pitch in the name (or one out of range): estimated from the audio
            candidates.append((path, instrument, "", None, None))
    return candidates


@dataclass
class SampleNotes:
    """Decoded notes (``records[i]`` plays ``audio(i)``) and the files left out, as ``(path, reason)``."""

    records: list[NoteRecord] = field(default_factory=list)
    waves: list[np.ndarray] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def audio(self, index: int) -> np.ndarray:
        return self.waves[index]

    def skip(self, path: str | Path, reason: str) -> None:
        log.warning("skipping %s: %s", path, reason)
        self.skipped.append((str(path), reason))


def read_samples(
    paths: Iterable[str | Path], instrument: str, sample_rate: int = SAMPLE_RATE, note_samples: int = NOTE_SAMPLES
) -> SampleNotes:
    """The notes of one ``instrument`` in audio files and folders (see :func:`sample_candidates`); files that are
    not audio, unreadable, too short, silent or unpitched are reported in ``.skipped``."""
    notes = SampleNotes()
    for rec, wav in decode_notes(sample_candidates(paths, instrument), sample_rate, note_samples, notes.skip):
        notes.records.append(rec)
        notes.waves.append(wav)
    return notes
