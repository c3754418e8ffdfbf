"""Note datasets for SING training: NSynth folders and custom sample packs.

Both readers produce :class:`NoteDataset` objects whose items are :class:`NoteItem`
(4 s mono float32 waveform at 16 kHz, instrument index, MIDI pitch, MIDI velocity) and
share an :class:`InstrumentVocab` that maps names to embedding rows. Bad files are
logged, listed in ``dataset.skipped`` as ``(path, reason)`` and left out. Reading and checking a note file
(names, pitches, too short / corrupt / silent files) is ``synth_core.sing.samples``'s, shared with the app.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from synth_core.sing.checkpoint import InstrumentInfo
from synth_core.sing.samples import (  # noqa: F401 - re-exported: the note readers live in synth_core
    AUDIO_EXTENSIONS,
    DEFAULT_VELOCITY,
    MAX_PITCH,
    MIN_NOTE_HOPS,
    MIN_NOTE_SECONDS,
    NOTE_SAMPLES,
    SAMPLE_RATE,
    SILENCE_DB,
    Candidate,
    NoPitchInName,
    NoteRecord,
    UnusableAudio,
    check_note_audio,
    decode_notes,
    load_note_audio,
    note_name,
    parse_note_filename,
    parse_pitch,
    parse_velocity,
    sample_candidates,
)
from training.split import sing_split

log = logging.getLogger(__name__)


class NoteItem(NamedTuple):
    """One training note; DataLoader's default collate batches each field."""

    wav: torch.Tensor  # float32 [note_samples]
    instrument: int
    pitch: int
    velocity: int


@dataclass
class InstrumentVocab:
    """Instrument names -> embedding rows (in order of first appearance), with families."""

    names: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def index(self, name: str) -> int:
        return self._index[name]

    def add(self, name: str, family: str = "unknown") -> int:
        """Index of ``name``, appending it when new."""
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
            self.families.append(family or "unknown")
        return self._index[name]

    def infos(self) -> list[InstrumentInfo]:
        return [InstrumentInfo(n, f) for n, f in zip(self.names, self.families, strict=True)]

    @classmethod
    def from_infos(cls, infos: Iterable[InstrumentInfo]) -> InstrumentVocab:
        infos = list(infos)
        return cls([i.name for i in infos], [i.family for i in infos])


class NoteDataset(Dataset):
    """Notes with an instrument vocabulary; optionally caches decoded audio as int16."""

    def __init__(
        self,
        records: Sequence[NoteRecord],
        vocab: InstrumentVocab | None = None,
        cache: bool = False,
        sample_rate: int = SAMPLE_RATE,
        note_samples: int = NOTE_SAMPLES,
        skipped: list[tuple[str, str]] | None = None,
        _cache_store: dict[Path, np.ndarray] | None = None,
    ):
        self.records = list(records)
        self.vocab = vocab if vocab is not None else InstrumentVocab()
        for r in self.records:
            self.vocab.add(r.instrument, r.family)
        self.cache = cache
        self.sample_rate = sample_rate
        self.note_samples = note_samples
        self.skipped: list[tuple[str, str]] = skipped if skipped is not None else []
        self._store: dict[Path, np.ndarray] = _cache_store if _cache_store is not None else {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def pairs(self) -> list[tuple[str, int]]:
        return [(r.instrument, r.pitch) for r in self.records]

    def skip(self, path: str | Path, reason: str) -> None:
        log.warning("skipping %s: %s", path, reason)
        self.skipped.append((str(path), reason))

    def store(self, path: Path, wav: np.ndarray) -> None:
        """Keep decoded audio in memory (int16; values are clipped to [-1, 1])."""
        self._store[path] = np.round(np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16)

    def audio(self, index: int) -> np.ndarray:
        """float32 [note_samples] of record ``index`` (from the cache when present)."""
        rec = self.records[index]
        hit = self._store.get(rec.path)
        if hit is not None:
            return hit.astype(np.float32) / 32767.0
        wav = load_note_audio(rec.path, self.sample_rate, self.note_samples)
        if self.cache:
            self.store(rec.path, wav)
        return wav

    def __getitem__(self, index: int) -> NoteItem:
        for attempt in range(len(self.records)):
            i = (index + attempt) % len(self.records)
            try:
                wav = self.audio(i)
            except Exception as exc:  # a file broke after scanning: use the next note
                self.skip(self.records[i].path, f"unreadable: {exc}")
                continue
            r = self.records[i]
            return NoteItem(torch.from_numpy(wav), self.vocab.index(r.instrument), r.pitch, r.velocity)
        raise RuntimeError("no readable note left in the dataset")

    def subset(self, indices: Iterable[int]) -> NoteDataset:
        """A view on some records sharing vocabulary, cache and skipped list."""
        return NoteDataset(
            [self.records[i] for i in indices],
            self.vocab,
            self.cache,
            self.sample_rate,
            self.note_samples,
            self.skipped,
            self._store,
        )

    def split(self, seed: int = 0, p_valid: float = 0.1, p_test: float = 0.1) -> dict[str, NoteDataset]:
        """SING split by (instrument, pitch) pair: {'train', 'valid', 'test'}."""
        assignment = sing_split(self.pairs, seed=seed, p_valid=p_valid, p_test=p_test)
        parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
        for i, pair in enumerate(self.pairs):
            parts[assignment[pair]].append(i)
        return {name: self.subset(idx) for name, idx in parts.items()}

    def preload(self) -> None:
        """Decode every note into the int16 cache now (bad files are skipped and dropped)."""
        self.cache = True
        good = []
        for i, rec in enumerate(self.records):
            try:
                self.audio(i)
            except Exception as exc:
                self.skip(rec.path, f"unreadable: {exc}")
                continue
            good.append(rec)
        self.records = good


def _choose(records: list[NoteRecord], max_notes: int | None, seed: int) -> list[NoteRecord]:
    if max_notes is None or len(records) <= max_notes:
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), max_notes))
    return [records[i] for i in keep]


def load_nsynth(
    root: str | Path,
    families: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    pitch_range: tuple[int, int] | None = None,
    velocities: Iterable[int] | None = None,
    instruments: Iterable[str] | None = None,
    max_notes: int | None = None,
    cache: bool = False,
    seed: int = 0,
    vocab: InstrumentVocab | None = None,
    sample_rate: int = SAMPLE_RATE,
    note_samples: int = NOTE_SAMPLES,
) -> NoteDataset:
    """Read an NSynth folder (``examples.json`` + ``audio/<note_str>.wav``) with filters.

    Missing audio files and malformed entries are skipped and listed in ``.skipped``.
    ``max_notes`` keeps a seeded random subset. ``cache`` keeps audio in memory after first use.
    """
    root = Path(root)
    meta_path = root / "examples.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_path}: cannot read NSynth metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object keyed by note_str")
    audio_dir = root / "audio"
    present = {p.name for p in audio_dir.iterdir()} if audio_dir.is_dir() else set()
    fam = {f.lower() for f in families} if families else None
    src = {s.lower() for s in sources} if sources else None
    vel = {int(v) for v in velocities} if velocities else None
    names = set(instruments) if instruments else None
    skipped: list[tuple[str, str]] = []
    records = []
    for key in sorted(meta):
        entry = meta[key]
        try:
            note_str = str(entry.get("note_str", key))
            inst = str(entry["instrument_str"])
            pitch = int(entry["pitch"])
            velocity = int(entry["velocity"])
            family = str(entry.get("instrument_family_str", "unknown"))
            source = str(entry.get("instrument_source_str", "unknown"))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            log.warning("skipping NSynth entry %s: malformed (%s)", key, exc)
            skipped.append((key, f"malformed metadata: {exc}"))
            continue
        if fam is not None and family.lower() not in fam:
            continue
        if src is not None and source.lower() not in src:
            continue
        if pitch_range is not None and not pitch_range[0] <= pitch <= pitch_range[1]:
            continue
        if vel is not None and velocity not in vel:
            continue
        if names is not None and inst not in names:
            continue
        path = audio_dir / f"{note_str}.wav"
        if not 0 <= pitch <= MAX_PITCH:
            log.warning("skipping %s: pitch %d outside 0..%d", path, pitch, MAX_PITCH)
            skipped.append((str(path), f"pitch {pitch} outside 0..{MAX_PITCH}"))
            continue
        if path.name not in present:
            log.warning("skipping %s: audio file missing", path)
            skipped.append((str(path), "audio file missing"))
            continue
        records.append(NoteRecord(path, inst, pitch, parse_velocity(velocity), family, source))
    records = _choose(records, max_notes, seed)
    return NoteDataset(records, vocab, cache, sample_rate, note_samples, skipped)


def _manifest_rows(manifest: Path, skipped: list[tuple[str, str]]) -> list[dict[str, str]]:
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        missing = {"file", "instrument", "pitch"} - columns
        if missing:
            raise ValueError(f"{manifest}: missing columns {sorted(missing)} (need file, instrument, pitch, velocity)")
        return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]


def load_pack(
    root: str | Path,
    cache: bool = True,
    vocab: InstrumentVocab | None = None,
    sample_rate: int = SAMPLE_RATE,
    note_samples: int = NOTE_SAMPLES,
    instrument: str | None = None,
) -> NoteDataset:
    """Read a sample pack folder of WAV/FLAC notes.

    With ``pack.csv`` (columns file, instrument, pitch, velocity[, family]) the manifest
    describes the notes; without it, file names ``<instrument>_<pitch or note name>_<velocity>``
    do. A file whose name (or manifest row) gives no pitch has it estimated from the audio
    (logged; ``NoteRecord.pitch_estimated``) and belongs to the instrument named after its folder.
    ``instrument`` names every note's instrument instead. Every file is decoded once here so
    corrupt, empty, too short (:data:`MIN_NOTE_SECONDS`), silent or unreadable files, and unpitched ones
    without a label, are reported (``.skipped``) and left out; ``cache`` keeps the decoded audio (int16) for
    training.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: sample pack folder not found")
    skipped: list[tuple[str, str]] = []
    candidates: list[Candidate] = []
    manifest = root / "pack.csv"
    if manifest.is_file():
        for n, row in enumerate(_manifest_rows(manifest, skipped), start=2):
            path = root / row.get("file", "")
            if not row.get("file") or not (row.get("instrument") or instrument):
                log.warning("skipping %s line %d: file or instrument missing", manifest, n)
                skipped.append((f"{manifest}:{n}", "file or instrument missing"))
                continue
            name = instrument or row["instrument"]
            candidates.append((path, name, row.get("pitch", ""), row.get("velocity"), row.get("family")))
    else:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS):
            try:
                inst, pitch, velocity = parse_note_filename(path)
            except NoPitchInName:
                candidates.append((path, instrument or path.parent.name, "", None, None))
                continue
            except ValueError as exc:
                log.warning("skipping %s: %s", path, exc)
                skipped.append((str(path), str(exc)))
                continue
            candidates.append((path, instrument or inst, pitch, str(velocity), None))
    ds = NoteDataset([], vocab, cache, sample_rate, note_samples, skipped)
    _decode(ds, candidates)
    return ds


def load_samples(
    paths: Iterable[str | Path],
    instrument: str,
    sample_rate: int = SAMPLE_RATE,
    note_samples: int = NOTE_SAMPLES,
) -> NoteDataset:
    """Audio files (and the audio files inside folders) as the notes of one ``instrument`` (cached).

    Pitches and velocities come from file names when they end in ``_<pitch>[_<velocity>]``; otherwise the pitch
    is estimated and the velocity is 100. Files that are not audio, unreadable, too short, silent or unpitched
    are reported in ``.skipped``, as in :func:`load_pack` (``synth_core.sing.samples.read_samples`` reads the
    same notes without a dataset, for the app).
    """
    ds = NoteDataset([], None, True, sample_rate, note_samples, [])
    _decode(ds, sample_candidates(paths, instrument))
    return ds


def _decode(ds: NoteDataset, candidates: list[Candidate]) -> None:
    """Read each candidate (path, instrument, pitch text, velocity text, family) into ``ds`` or its skipped list."""
    for rec, wav in decode_notes(candidates, ds.sample_rate, ds.note_samples, ds.skip):
        ds.records.append(rec)
        ds.vocab.add(rec.instrument, rec.family)
        if ds.cache:
            ds.store(rec.path, wav)
