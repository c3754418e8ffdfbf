"""The computer keyboard plays unless a text field was clicked; Esc or a click elsewhere gives it back."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtWidgets import QApplication

from sing_app.main_window import MainWindow
from sing_app.widgets.settings_dialog import AudioMidiSettings
from synth_core.engine import SineSource
from synth_core.sing import InstrumentInfo

NAMES = [("Acoustic Grand Piano", "keyboard"), ("Flute", "flute"), ("Violin", "string"), ("Bass", "bass")]


def activate(win) -> None:
    """Make ``win`` the active window (processEvents, not qtbot.waitUntil: another test's app.quit() can leave Qt's
    waits idle in this process)."""
    win.activateWindow()
    for _ in range(200):
        QApplication.processEvents()
        if win.isActiveWindow():
            return
        time.sleep(0.005)
    raise AssertionError("the window never became active")


@pytest.fixture
def window(qtbot):
    source = SineSource(n_instruments=4)
    source.instruments = [InstrumentInfo(n, f) for n, f in NAMES]
    source.instrument_table = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [])
    qtbot.addWidget(win)
    win.offline.stop()
    win.display_timer.stop()
    win.show()
    activate(win)
    played: list[int] = []
    win.piano.noteOn.connect(lambda n, v: played.append(n))
    win.played = played
    yield win
    win.shutdown()


def press(qtbot, win, key=Qt.Key.Key_A) -> None:
    """A key pressed and released where the focus is, as the keyboard sends it."""
    target = QApplication.focusWidget() or win
    qtbot.keyClick(target, key)


def click_filter(qtbot, win) -> None:
    edit = win.instrument_list.filter_edit
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is edit


def test_the_piano_has_the_keyboard_at_start(qtbot, window):
    assert QApplication.focusWidget() is window.piano
    press(qtbot, window, Qt.Key.Key_D)
    assert window.played == [64]


def test_typing_in_the_filter_keeps_the_sound_and_plays_nothing(qtbot, window):
    window.instrument_list.select(2)  # Violin
    before = window.engine.instrument_vector()
    click_filter(qtbot, window)
    qtbot.keyClicks(window.instrument_list.filter_edit, "fla")  # 'a' would be a note on the piano
    assert window.instrument_list.filter_edit.text() == "fla" and window.played == []
    assert window.instrument_list.visible_indices() == []
    qtbot.keyClick(window.instrument_list.filter_edit, Qt.Key.Key_Backspace)
    assert window.instrument_list.visible_indices() == [1]  # "fl": Flute shown, not chosen
    np.testing.assert_array_equal(window.engine.instrument_vector(), before)
    assert window.base_instrument == 2 and window.instrument_list.current_index() == 2
    qtbot.keyClick(window.instrument_list.filter_edit, Qt.Key.Key_Return)  # Enter picks the first match
    assert window.base_instrument == 1 and QApplication.focusWidget() is window.piano
    np.testing.assert_array_equal(window.engine.instrument_vector(), window.table[1])


def test_esc_leaves_the_field_and_the_keys_play_again(qtbot, window):
    click_filter(qtbot, window)
    qtbot.keyClicks(window.instrument_list.filter_edit, "vi")
    window.piano.set_external_note(40, True)  # a MIDI note sounding
    qtbot.keyClick(window.instrument_list.filter_edit, Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is window.piano
    assert 40 in window.piano.active_notes()  # Esc in a field leaves it: not the panic
    assert window.instrument_list.filter_edit.text() == "vi"
    press(qtbot, window, Qt.Key.Key_A)
    assert window.played == [60]
    press(qtbot, window, Qt.Key.Key_Escape)  # Esc outside a field: the panic, as ever
    assert 40 not in window.piano.active_notes()


def test_a_click_elsewhere_gives_the_keyboard_back(qtbot, window):
    click_filter(qtbot, window)
    pad = window.morph.pad
    qtbot.mouseClick(pad, Qt.MouseButton.LeftButton, pos=pad.rect().center())  # the pad takes no focus itself
    assert QApplication.focusWidget() is window.piano
    press(qtbot, window, Qt.Key.Key_S)
    assert window.played == [62]
    click_filter(qtbot, window)
    piano = window.piano
    r = piano.key_rect(67)
    qtbot.mouseClick(piano, Qt.MouseButton.LeftButton, pos=QPoint(int(r.center().x()), int(r.bottom() - 5)))
    assert QApplication.focusWidget() is piano and window.played[-1] == 67
    press(qtbot, window, Qt.Key.Key_D)
    assert window.played[-1] == 64


def test_letters_never_search_the_list_or_change_the_sound(qtbot, window):
    window.instrument_list.select(0)
    view = window.instrument_list.view
    view.setFocus()
    before = window.engine.instrument_vector()
    for key in (Qt.Key.Key_B, Qt.Key.Key_N, Qt.Key.Key_R):  # not piano keys ("B": type-to-search finds Bass)
        qtbot.keyClick(view, key)
    assert window.base_instrument == 0
    np.testing.assert_array_equal(window.engine.instrument_vector(), before)
    qtbot.keyClick(view, Qt.Key.Key_A)  # piano keys still play with the list focused
    assert window.played == [60]
    qtbot.keyClick(view, Qt.Key.Key_Down)  # arrows still move through the list
    assert window.base_instrument == 1
