"""The user's own instruments: fitted embedding vectors kept as small JSON files in a per-user folder.

An instrument file holds a name, the vector (one row of the model's instrument table) and the fingerprint of
the model it was fitted to: a vector means nothing to another model, so each model sees only its own. Files
are written atomically; a damaged file is reported and skipped, never loaded half.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth_core.atomic_file import atomic_write_text

log = logging.getLogger(__name__)
FORMAT = "neurosynth-instrument"
VERSION = 1
SUFFIX = ".nsinst"
MAX_NAME = 64


class InstrumentFileError(ValueError):
    """An instrument file that cannot be read, or an operation the store refuses (a clash, a bad name)."""


APP_NAME = "NeuroSynth"  # the application name Qt's per-user folders are named after


def default_data_dir() -> Path:
    """The user's NeuroSynth data folder (Qt's AppDataLocation for the app, e.g. ~/.local/share/NeuroSynth), the
    same from sing-app, sing-render or a script whatever application name (or none) the caller set."""
    from PyQt6.QtCore import QCoreApplication, QStandardPaths

    name = QCoreApplication.applicationName()
    QCoreApplication.setApplicationName(APP_NAME)
    try:
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    finally:
        QCoreApplication.setApplicationName(name)
    return Path(base or Path.home() / ".neurosynth")


def default_custom_dir() -> Path:
    """The per-user folder of custom instruments."""
    return default_data_dir() / "instruments"


def model_fingerprint(table: np.ndarray) -> str:
    """Identifies a model by its instrument table (shape and values, as float32): 16 hex digits."""
    t = np.ascontiguousarray(np.asarray(table, dtype=np.float32))
    return hashlib.sha1(str(t.shape).encode() + t.tobytes()).hexdigest()[:16]


@dataclass
class CustomInstrument:
    name: str
    vector: np.ndarray
    model: str  # model_fingerprint of the model it belongs to
    created: float = field(default_factory=time.time)
    info: dict = field(default_factory=dict)  # how it was made (the fit report, without the vector)
    gain_db: float = 0.0  # plays with this gain: its nearest instrument's level (synth_core.level.match_level)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "vector": [float(v) for v in self.vector],
            "model": self.model,
            "created": self.created,
            "info": self.info,
            "gain_db": self.gain_db,
        }

    @classmethod
    def from_json(cls, data: object, source: str = "instrument file") -> CustomInstrument:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InstrumentFileError(f"{source}: not a NeuroSynth instrument file")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise InstrumentFileError(f"{source}: instrument file version {data.get('version')!r} is not supported")
        try:
            name = check_name(str(data["name"]))
            vector = np.asarray(data["vector"], dtype=np.float32).reshape(-1)
            model = str(data["model"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InstrumentFileError(f"{source}: damaged instrument file ({exc})") from exc
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise InstrumentFileError(f"{source}: the instrument's vector is empty or not finite")
        info = data.get("info") if isinstance(data.get("info"), dict) else {}
        created = float(data["created"]) if isinstance(data.get("created"), (int, float)) else time.time()
        gain = data.get("gain_db", 0.0)  # files written before the level match play at the model's own level
        if not isinstance(gain, (int, float)) or not math.isfinite(gain) or abs(gain) > 60:
            raise InstrumentFileError(f"{source}: the instrument's gain_db {gain!r} is not a level in dB")
        return cls(name, vector, model, created, info, float(gain))


def check_name(name: str) -> str:
    """A usable instrument name (stripped); InstrumentFileError for empty or over-long names."""
    name = " ".join(name.split())
    if not name:
        raise InstrumentFileError("the instrument needs a name")
    if len(name) > MAX_NAME:
        raise InstrumentFileError(f"instrument names are at most {MAX_NAME} characters")
    return name


def file_slug(name: str) -> str:
    """A file-name-safe form of an instrument name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "instrument"


class CustomInstrumentStore:
    """The instrument files of one folder; ``for_model`` lists those of one model, sorted by creation."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.problems: list[str] = []  # files skipped by the last scan, and why

    def _scan(self) -> list[tuple[Path, CustomInstrument]]:
        self.problems = []
        found = []
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                found.append((path, read_instrument(path)))
            except InstrumentFileError as exc:
                log.warning("%s", exc)
                self.problems.append(str(exc))
        return found

    def for_model(self, fingerprint: str) -> list[CustomInstrument]:
        return sorted((i for _, i in self._scan() if i.model == fingerprint), key=lambda i: (i.created, i.name))

    def _path_of(self, name: str, fingerprint: str) -> Path | None:
        for path, inst in self._scan():
            if inst.model == fingerprint and inst.name.lower() == name.lower():
                return path
        return None

    def add(self, inst: CustomInstrument, taken: set[str] | frozenset[str] = frozenset()) -> Path:
        """Save a new instrument; InstrumentFileError when its name is taken (here or in ``taken``, any case)."""
        inst.name = check_name(inst.name)
        if inst.name.lower() in {t.lower() for t in taken} or self._path_of(inst.name, inst.model) is not None:
            raise InstrumentFileError(f"an instrument named {inst.name!r} exists already: pick another name")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{file_slug(inst.name)}-{inst.model[:8]}{SUFFIX}"
        n = 2
        while path.exists():
            path = self.folder / f"{file_slug(inst.name)}-{inst.model[:8]}-{n}{SUFFIX}"
            n += 1
        return write_instrument(path, inst)

    def rename(
        self, name: str, new_name: str, fingerprint: str, taken: set[str] | frozenset[str] = frozenset()
    ) -> None:
        path = self._require(name, fingerprint)
        inst = read_instrument(path)
        new_name = check_name(new_name)
        clash = self._path_of(new_name, fingerprint)
        if new_name.lower() in {t.lower() for t in taken} or (clash is not None and clash != path):
            raise InstrumentFileError(f"an instrument named {new_name!r} exists already: pick another name")
        inst.name = new_name
        write_instrument(path, inst)

    def remove(self, name: str, fingerprint: str) -> None:
        self._require(name, fingerprint).unlink()

    def export(self, name: str, fingerprint: str, dest: str | Path) -> Path:
        return write_instrument(dest, read_instrument(self._require(name, fingerprint)))

    def import_file(
        self, path: str | Path, fingerprint: str, dim: int, taken: set[str] | frozenset[str] = frozenset()
    ) -> CustomInstrument:
        """Add the instrument of file ``path``; InstrumentFileError when it is damaged, for another model or of
        another vector size, or its name is taken."""
        inst = read_instrument(path)
        if inst.vector.size != dim:
            raise InstrumentFileError(f"{path}: a vector of {inst.vector.size} numbers; this model's have {dim}")
        if inst.model != fingerprint:
            raise InstrumentFileError(f"{path}: made for another model ({inst.model}); this one is {fingerprint}")
        self.add(inst, taken)
        return inst

    def _require(self, name: str, fingerprint: str) -> Path:
        path = self._path_of(name, fingerprint)
        if path is None:
            raise InstrumentFileError(f"no instrument named {name!r}")
        return path


def read_instrument(path: str | Path) -> CustomInstrument:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InstrumentFileError(f"{path}: not a readable instrument file ({exc})") from exc
    return CustomInstrument.from_json(data, str(path))


def write_instrument(path: str | Path, inst: CustomInstrument) -> Path:
    return atomic_write_text(path, json.dumps(inst.to_json(), indent=1) + "\n")
