"""MIDI learn: map a controller (channel + CC) to any fader, the volume or a morph-pad axis; saved, removable."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest
from PyQt6.QtCore import QCoreApplication, Qt

from sing_app.main_window import MainWindow
from sing_app.midi_map import MidiMap
from sing_app.widgets.settings_dialog import AudioMidiSettings
from sing_app.widgets.xy_pad import bilinear_blend
from synth_core.engine import SineSource


def cc(control: int, value: int, ch: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=ch)


def test_the_map_binds_forgets_saves_and_keeps_one_control_per_controller(tmp_path):
    path = tmp_path / "midi_map.json"
    m = MidiMap(path)
    assert m.bindings == {"morph.x": (None, 1)} and m.controls_for(5, 1) == ["morph.x"]  # the mod wheel, any channel
    m.bind("volume", 2, 74)
    assert m.controls_for(2, 74) == ["volume"] and m.controls_for(3, 74) == []
    m.bind("embed.1", 2, 74)  # the same controller moves one control
    assert m.controls_for(2, 74) == ["embed.1"] and "volume" not in m.bindings
    m.bind("timbre.1", 4, 1)  # CC1 on channel 5 now: the any-channel default gives way
    assert m.controls_for(4, 1) == ["timbre.1"] and "morph.x" not in m.bindings
    m.forget("embed.1")
    again = MidiMap(path)
    assert again.bindings == {"timbre.1": (4, 1)} and MidiMap.describe((4, 1)) == "CC1 ch5"
    assert MidiMap.describe((None, 1)) == "CC1"


@pytest.mark.parametrize(
    "content", ["{", '{"bindings": {"volume": {"channel": 3, "cc": 300}}}', '{"bindings": 5}', "[]"]
)
def test_a_damaged_map_file_falls_back_to_the_defaults(tmp_path, content):
    path = tmp_path / "midi_map.json"
    path.write_text(content)
    m = MidiMap(path)
    assert m.bindings == {"morph.x": (None, 1)} and "damaged MIDI map" in m.problem


@pytest.fixture
def window(qtbot, tmp_path):
    wins = []

    def make(path=tmp_path / "midi_map.json"):
        source = SineSource(n_instruments=4)
        source.instrument_table = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
        win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [],
                         list_ports=lambda: [], midi_map=MidiMap(path))  # fmt: skip
        qtbot.addWidget(win)
        win.offline.stop()
        win.display_timer.stop()
        wins.append(win)
        return win

    yield make
    for w in wins:
        w.shutdown()


def send(qtbot, win: MainWindow, msg: mido.Message) -> None:
    """Through the window's MIDI input as a device would (MIDI thread -> engine, a copy to the GUI)."""
    handled = []
    win.devices.midiMessage.connect(
        lambda m: handled.append(m), Qt.ConnectionType.QueuedConnection
    )  # after the window's
    win.midi.feed(msg)
    for _ in range(100):  # processEvents, not qtbot.wait: another test's app.quit() can leave Qt's waits idle
        QCoreApplication.processEvents()
        if handled:
            return
    raise AssertionError("the MIDI message never reached the GUI thread")


def test_learn_a_fader_move_it_from_midi_and_forget_it(qtbot, window, tmp_path):
    win = window()
    menu = win.midi_learn.show_menu(["volume"], win.volume, win.volume.rect().center())
    assert [a.text() for a in menu.actions()] == ["MIDI learn: Volume"]
    menu.actions()[0].trigger()
    assert win.midi_learn.learning == "volume"
    send(qtbot, win, cc(74, 10, ch=2))  # the knob the user moves
    assert win.midi_learn.map.bindings["volume"] == (2, 74) and "MIDI: CC74 ch3" in win.volume.toolTip()
    send(qtbot, win, cc(74, 127, ch=2))
    assert win.volume.value() == win.volume.maximum()
    send(qtbot, win, cc(74, 0, ch=3))  # another channel: not this mapping
    assert win.volume.value() == win.volume.maximum()
    send(qtbot, win, cc(74, 0, ch=2))
    assert win.volume.value() == 0
    win.engine.render(64)
    assert win.engine.master_gain == 0.0  # the mapped fader drives the sound
    saved = json.loads((tmp_path / "midi_map.json").read_text())
    assert saved["bindings"]["volume"] == {"channel": 2, "cc": 74}
    # a new session has it; forgetting removes it everywhere
    again = window()
    assert again.midi_learn.map.bindings["volume"] == (2, 74)
    menu = again.midi_learn.show_menu(["volume"], again.volume, again.volume.rect().center())
    assert [a.text() for a in menu.actions()] == ["MIDI learn: Volume", "Forget CC74 ch3 (Volume)"]
    menu.actions()[1].trigger()
    assert "volume" not in again.midi_learn.map.bindings and "MIDI: " not in again.volume.toolTip()
    assert "volume" not in json.loads((tmp_path / "midi_map.json").read_text())["bindings"]


def test_embedding_faders_follow_their_controller_and_show_it(qtbot, window):
    win = window()
    fader = win.embedding.dim_faders[2]
    win.midi_learn.learn("embed.3")
    send(qtbot, win, cc(20, 64, ch=0))
    assert fader.caption.text() == "3\nCC20 ch1"
    send(qtbot, win, cc(20, 127, ch=0))
    assert fader.value() == pytest.approx(fader.hi)
    assert win.engine.instrument_vector()[2] == pytest.approx(fader.hi)
    win.midi_learn.learn("voice.glide_s")
    send(qtbot, win, cc(21, 5))  # binds
    send(qtbot, win, cc(21, 127))
    glide = win.voice_panel.sliders["glide_s"].slider
    assert glide.value() == glide.maximum()
    assert win.voice_panel.sliders["glide_s"].caption.text() == "Glide · CC21 ch1"  # one line: the row keeps its height


def test_the_mod_wheel_sweeps_the_morph_pad_by_default(qtbot, window):
    win = window()
    send(qtbot, win, cc(1, 127, ch=9))
    assert win.morph.pad.position() == (1.0, 0.5)
    want = bilinear_blend(win.morph.corner_vectors(), 1.0, 0.5)
    np.testing.assert_allclose(win.engine.instrument_vector(), want, atol=1e-6)
    win.midi_learn.learn("morph.y")
    send(qtbot, win, cc(2, 0))
    send(qtbot, win, cc(2, 127))
    assert win.morph.pad.position() == (1.0, 1.0)
    menu = win.midi_learn.show_menu(["morph.x", "morph.y"], win.morph.pad, win.morph.pad.rect().center())
    assert [a.text() for a in menu.actions()] == [
        "MIDI learn: Morph pad X", "Forget CC1 (Morph pad X)", "MIDI learn: Morph pad Y", "Forget CC2 ch1 (Morph pad Y)"
    ]  # fmt: skip
