"""The sound state behind the window: rows, the chosen one, and the sound (vector, gain, name) made from it."""

from __future__ import annotations

import numpy as np
import pytest

from sing_app.widgets.sound_view_model import SoundViewModel, morph_name
from synth_core.sing import InstrumentInfo

NAMES = ["Violin", "Trumpet", "Flute", "My Cello"]


def rows(names=NAMES):
    table = np.arange(len(names) * 4, dtype=np.float32).reshape(len(names), 4)
    gains = np.array([1.0, 1.0, 1.0, 2.0][: len(names)], np.float32)
    return [InstrumentInfo(n, "x") for n in names], table, gains


def test_select_edit_morph_and_preset_say_what_the_sound_is():
    vm = SoundViewModel()
    vm.set_rows(*rows())
    s = vm.select(3)
    assert (s.name, s.gain) == ("My Cello", 2.0) and np.array_equal(s.vector, vm.table[3])
    s = vm.edited(np.zeros(4))
    assert (s.name, s.gain) == ("My Cello (edited)", 2.0)  # an edit keeps the instrument's level
    s = vm.morphed(np.zeros(4), [0, 1, 3, 3], np.array([0.1, 0.2, 0.3, 0.4]))
    assert s.name == "My Cello + Trumpet morph" and s.gain == pytest.approx(0.1 + 0.2 + 0.7 * 2.0)
    s = vm.preset(np.ones(4), "Warm pad", "Trumpet")
    assert (s.name, vm.base, s.gain) == ("Warm pad", 1, 1.0)


def test_morph_names():
    assert morph_name(["A", "B", "C", "D"], [0.05, 0.05, 0.0, 0.9]) == "D"
    assert morph_name(["A", "A", "B", "B"], [0.3, 0.3, 0.2, 0.2]) == "A + B morph"


def test_new_rows_keep_the_chosen_instrument_by_name():
    vm = SoundViewModel()
    vm.set_rows(*rows())
    vm.select(2)
    vm.set_rows(*rows(["Trumpet", "Flute"]))
    assert vm.base == 1 and vm.base_name() == "Flute"
    vm.set_rows(*rows(["Violin"]))
    assert vm.base is None and vm.edited(np.zeros(4)).name == "Custom sound"
