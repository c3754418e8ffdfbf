"""What new notes play: the instrument rows (names, vectors, gains), the chosen row, and the sound made from it.

A sound is a vector, the gain it plays with (an instrument's own level, ``synth_core.level``) and a name that says
what it is, in human names (``synth_core.sing.instrument_names``): the instrument ("Violin"), an edit of it ("Violin
(edited)"), a morph of the pad's corners ("Trumpet + Violin morph") or a preset's name. The name titles the window's
sound label, recordings and presets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth_core.sing.checkpoint import InstrumentInfo
from synth_core.sing.instrument_names import display_name


@dataclass(frozen=True)
class Sound:
    vector: np.ndarray
    gain: float
    name: str


def morph_name(names: Sequence[str], weights: Sequence[float]) -> str:
    """ "A + B morph" after the two corners weighing most (a corner repeated counts once, its weights added);
    "A" alone when it holds 90 % or more."""
    total: dict[str, float] = {}
    for name, w in zip(names, weights, strict=True):
        total[name] = total.get(name, 0.0) + float(w)
    ranked = sorted(total.items(), key=lambda kv: -kv[1])
    if len(ranked) == 1 or ranked[0][1] >= 0.9:
        return ranked[0][0]
    return f"{ranked[0][0]} + {ranked[1][0]} morph"


class SoundViewModel:
    def __init__(self) -> None:
        self.instruments: list[InstrumentInfo] = []
        self.table = np.zeros((0, 16), np.float32)
        self.gains = np.ones(0, np.float32)
        self.base: int | None = None  # the chosen row: what edits start from
        self.sound: Sound | None = None

    @property
    def name(self) -> str:
        return self.sound.name if self.sound is not None else ""

    def names(self) -> list[str]:
        return [i.name for i in self.instruments]

    def index_of(self, name: str | None) -> int | None:
        names = self.names()
        return names.index(name) if name in names else None

    def set_rows(self, instruments: Sequence[InstrumentInfo], table: np.ndarray, gains: np.ndarray) -> None:
        """New rows (the chosen one follows its name; None when it is gone)."""
        base = self.instruments[self.base].name if self.base is not None and self.base < len(self.instruments) else None
        self.instruments = list(instruments)
        self.table = np.asarray(table, np.float32)
        self.gains = np.asarray(gains, np.float32)
        self.base = self.index_of(base)

    def base_name(self) -> str | None:
        """The chosen row's name as the model knows it (its id: what presets keep as their base instrument)."""
        return self.instruments[self.base].name if self.base is not None else None

    def select(self, index: int) -> Sound:
        """Row ``index`` as it is."""
        self.base = index
        self.sound = Sound(
            self.table[index].copy(), float(self.gains[index]), display_name(self.instruments[index].name)
        )
        return self.sound

    def edited(self, vec: np.ndarray) -> Sound:
        """An edit of the chosen row (it keeps that row's level)."""
        gain = float(self.gains[self.base]) if self.base is not None else 1.0
        base = self.base_name()
        name = f"{display_name(base)} (edited)" if base else "Custom sound"
        self.sound = Sound(np.asarray(vec, np.float32), gain, name)
        return self.sound

    def morphed(self, vec: np.ndarray, corners: Sequence[int], weights: np.ndarray) -> Sound:
        """The pad's blend of rows ``corners`` with ``weights``: their gains blend as their vectors do."""
        gain = float(np.asarray(weights) @ self.gains[list(corners)])
        name = morph_name([display_name(self.instruments[c].name) for c in corners], weights)
        self.sound = Sound(np.asarray(vec, np.float32), gain, name)
        return self.sound

    def preset(self, vec: np.ndarray, name: str, base: str | None) -> Sound:
        """A preset's sound; its base instrument becomes the chosen row when it exists here."""
        index = self.index_of(base)
        if index is not None:
            self.base = index
        gain = float(self.gains[self.base]) if self.base is not None else 1.0
        self.sound = Sound(np.asarray(vec, np.float32), gain, name)
        return self.sound
