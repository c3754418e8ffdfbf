"""The window shows human instrument names (the list, the morph pad's corner menus, the sound) and keeps the
ids where the model and presets need them."""

from __future__ import annotations

import numpy as np

from sing_app.main_window import MainWindow
from sing_app.widgets.settings_dialog import AudioMidiSettings
from synth_core.engine import SineSource
from synth_core.sing.checkpoint import InstrumentInfo

IDS = ["gm000_acoustic_grand_piano", "gm024_acoustic_guitar_nylon", "gm040_violin", "gm080_lead_1_square"]
FAMILIES = ["keyboard", "guitar", "string", "synth_lead"]


def test_the_window_shows_human_names(qtbot):
    source = SineSource(n_instruments=4)
    source.instruments = [InstrumentInfo(n, f) for n, f in zip(IDS, FAMILIES, strict=True)]
    source.instrument_table = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [])
    qtbot.addWidget(win)
    win.offline.stop()
    win.display_timer.stop()
    model = win.instrument_list.model
    rows = [(model.item(r, 0).text(), model.item(r, 1).text()) for r in range(model.rowCount())]
    assert rows == [("Acoustic Grand Piano", "Keyboard"), ("Acoustic Guitar (nylon)", "Guitar"),
                    ("Violin", "String"), ("Lead 1 (square)", "Synth lead")]  # fmt: skip
    assert "gm024_acoustic_guitar_nylon" in model.item(1, 0).toolTip()
    win.instrument_list.set_filter("gm040")  # the old id still finds it
    assert win.instrument_list.visible_indices() == [2]
    win.instrument_list.set_filter("")
    combo = win.morph.combos[0]
    assert [combo.itemText(k) for k in range(combo.count())] == [r[0] for r in rows]
    win.instrument_list.select(2)
    assert win.sound.name == "Violin" and win.sound.base_name() == "gm040_violin"  # presets keep the id
    win.morph.set_corner(0, 2)
    win.morph.set_corner(1, 1)
    win.morph.pad.set_position(0.25, 0.0)  # mostly the top-left corner
    assert win.sound.name == "Violin + Acoustic Guitar (nylon) morph"
    # new rows (e.g. a new instrument) keep the corners by instrument, not by the text shown
    win.refresh_instruments()
    assert [c.currentText() for c in win.morph.combos[:2]] == ["Violin", "Acoustic Guitar (nylon)"]
    win.shutdown()
