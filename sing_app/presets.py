"""Instrument presets: a custom embedding vector with a name and the table instrument it started from.

Stored as small JSON files; no Qt here so the format can be used from scripts and tests.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth_core.atomic_file import atomic_write_text

PRESET_FORMAT = "neurosynth-preset"
PRESET_VERSION = 1


class PresetError(ValueError):
    """A preset file could not be read or does not describe a valid preset."""


@dataclass
class Preset:
    name: str
    vector: np.ndarray  # (dim,) float32 instrument embedding
    base_instrument: str | None = None

    def to_json(self) -> dict:
        return {
            "format": PRESET_FORMAT,
            "version": PRESET_VERSION,
            "name": self.name,
            "base_instrument": self.base_instrument,
            "vector": [float(v) for v in np.asarray(self.vector, dtype=np.float64).ravel()],
        }


def save_preset(path: str | os.PathLike, preset: Preset) -> Path:
    """Write ``preset`` as JSON atomically (a failed write never leaves a half file behind)."""
    path = Path(path)
    vec = np.asarray(preset.vector, dtype=np.float64).ravel()
    if not np.all(np.isfinite(vec)):
        raise PresetError("refusing to save a preset whose vector has NaN/inf values")
    text = json.dumps(preset.to_json(), indent=2)
    return atomic_write_text(path, text + "\n")


def load_preset(path: str | os.PathLike, dim: int | None = None) -> Preset:
    """Read a preset; raises :class:`PresetError` with a message saying what is wrong and where.

    ``dim``: expected embedding size (the engine's table width); checked when given.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PresetError(f"cannot read preset {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise PresetError(f"{path} is not a text (UTF-8 JSON) file") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PresetError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    return preset_from_json(data, dim=dim, where=str(path))


def preset_from_json(data: object, dim: int | None = None, where: str = "preset") -> Preset:
    if not isinstance(data, dict):
        raise PresetError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format", PRESET_FORMAT)
    if fmt != PRESET_FORMAT:
        raise PresetError(f"{where}: not a NeuroSynth preset (format {fmt!r})")
    version = data.get("version", PRESET_VERSION)
    if not isinstance(version, int) or version > PRESET_VERSION:
        raise PresetError(f"{where}: unsupported preset version {version!r} (this app reads <= {PRESET_VERSION})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PresetError(f"{where}: missing or empty 'name'")
    base = data.get("base_instrument")
    if base is not None and not isinstance(base, str):
        raise PresetError(f"{where}: 'base_instrument' must be a string or null")
    raw = data.get("vector")
    if not isinstance(raw, list) or not raw:
        raise PresetError(f"{where}: 'vector' must be a non-empty list of numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw):
        raise PresetError(f"{where}: 'vector' must contain only finite numbers")
    if dim is not None and len(raw) != dim:
        raise PresetError(f"{where}: 'vector' has {len(raw)} values, this instrument model needs {dim}")
    return Preset(name=name.strip(), vector=np.asarray(raw, dtype=np.float32), base_instrument=base)
