"""The window fits a 1280x800 screen and grows on larger ones; every control has a tooltip; the small defects."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QRect, Qt
from PyQt6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QComboBox,
    QLineEdit,
    QScrollArea,
    QScrollBar,
    QSpinBox,
    QToolBar,
    QWidget,
)

from sing_app.main_window import MainWindow
from sing_app.widgets.settings_dialog import AudioMidiSettings
from sing_app.window_size import initial_size
from synth_core.engine import SineSource
from synth_core.sing import InstrumentInfo

GM = ["Acoustic Grand Piano", "Electric Grand Piano", "Acoustic Guitar (nylon)", "Electric Bass (finger)",
      "String Ensemble 1", "Lead 2 (sawtooth)", "Pizzicato Strings", "Orchestral Harp"]  # fmt: skip
FAMILIES = ["keyboard", "keyboard", "guitar", "bass", "string", "synth_lead", "string", "string"]


@pytest.fixture
def window(qtbot):
    source = SineSource(n_instruments=len(GM))
    source.instruments = [InstrumentInfo(n, f) for n, f in zip(GM, FAMILIES, strict=True)]
    source.instrument_table = np.random.default_rng(0).standard_normal((len(GM), 16)).astype(np.float32)
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [])
    qtbot.addWidget(win)
    win.offline.stop()
    win.display_timer.stop()
    yield win
    win.shutdown()


class FakeScreen:
    def __init__(self, w: int, h: int):
        self._rect = QRect(0, 0, w, h)

    def availableGeometry(self) -> QRect:  # noqa: N802 - QScreen's name
        return self._rect


def test_the_first_size_comes_from_the_screen():
    assert initial_size(1280, 800) == (1264, 752, True)  # too small for the preferred size: maximized
    assert initial_size(1920, 1080) == (1728, 972, False)
    assert initial_size(1440, 900) == (1424, 852, True)
    assert initial_size(2560, 1440) == (1760, 1040, False)


def inside(win: QWidget, w: QWidget) -> bool:
    top_left = w.mapTo(win, QPoint(0, 0))
    return win.rect().contains(QRect(top_left, w.size()))


def use_voice(window) -> None:
    from synth_core.engine.sine_voice import SineVoiceSource

    window.synths.factories["voice"] = lambda: SineVoiceSource(n_presets=8, names=[f"bright {k}" for k in range(8)])
    window._load_synth("voice")
    assert window.set_synth("voice")


def settle(qtbot) -> None:
    from PyQt6.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()


@pytest.mark.parametrize("synth", ["sing", "voice"])
def test_everything_shows_in_a_1280x800_screen_without_scrolling(qtbot, window, synth):
    if synth == "voice":
        use_voice(window)
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.fit_to_screen(FakeScreen(1280, 800))
    assert window.isMaximized() or window.windowState() & Qt.WindowState.WindowMaximized
    hint = window.minimumSizeHint()
    assert hint.width() <= 1264 and hint.height() <= 752, hint
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(1264, 752)  # the room a window manager leaves on 1280x800
    window.show()
    qtbot.waitExposed(window)
    assert window.size().width() == 1264 and window.size().height() == 752
    settle(qtbot)  # the panels share the width out
    for w in (window.piano, window.morph.pad, window.status, window.meter, window.instrument_list,
              *window.morph.combos, *window.embedding.dim_faders):  # fmt: skip
        assert w.isVisible() and inside(window, w), w
    scroll = window.findChild(QScrollArea)
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()  # the faders fit unscrolled
    toolbar = window.findChild(QToolBar)
    assert all(inside(window, toolbar.widgetForAction(a)) for a in toolbar.actions() if toolbar.widgetForAction(a))
    assert inside(window, window.tools.octave_label)  # the last toolbar item ("Keys: C4-F5") is not cut off
    pad = window.morph.pad
    r = pad.pad_rect()
    assert r.width() >= 240 and r.height() >= 240  # a pad you can play
    assert window.status.audio_label.text() and not window.status.midi_label.elided()


def controls(win: QWidget) -> list[QWidget]:
    kinds = (QAbstractSlider, QAbstractButton, QComboBox, QLineEdit, QSpinBox)
    out = []
    for w in win.findChildren(QWidget):
        if not w.isVisibleTo(win) or isinstance(w, QScrollBar):
            continue
        if isinstance(w, QLineEdit) and isinstance(w.parentWidget(), (QSpinBox, QComboBox)):
            continue  # the spin box / combo box has the tooltip
        if isinstance(w, kinds) or type(w).__name__ in ("XYPad", "PianoWidget", "ScopeWidget", "LevelMeter"):
            out.append(w)
    return out


def tooltip_of(w: QWidget) -> str:
    if w.toolTip():
        return w.toolTip()
    if isinstance(w, QAbstractButton) and hasattr(w, "defaultAction") and w.defaultAction() is not None:
        return w.defaultAction().toolTip() if w.defaultAction().toolTip() != w.defaultAction().text() else ""
    return ""


@pytest.mark.parametrize("synth", ["sing", "voice"])
def test_every_control_and_status_field_has_a_tooltip(qtbot, window, synth):
    if synth == "voice":
        from synth_core.engine.sine_voice import SineVoiceSource

        window.synths.factories["voice"] = lambda: SineVoiceSource(n_presets=3, names=["a", "b", "c"])
        window._load_synth("voice")
        assert window.set_synth("voice")
    window.resize(1264, 752)
    window.show()
    qtbot.waitExposed(window)
    window.update_status()
    missing = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()}" for w in controls(window) if not tooltip_of(w)]
    assert not missing, missing
    bar = window.status
    for label in (bar.audio_label, bar.midi_label, bar.device_label, bar.rate_label, bar.latency_label,
                  bar.voices_label, bar.load_label, bar.dropouts_label):  # fmt: skip
        assert label.toolTip(), label.text()
    assert all(f.toolTip() for f in window.embedding.dim_faders)  # the 16 embedding faders
    assert "corner" in window.morph.pad.toolTip()


def test_a_status_message_never_covers_the_audio_and_midi_fields(qtbot, window):
    window.resize(1264, 752)
    window.show()
    qtbot.waitExposed(window)
    window.status.showMessage("MIDI input 'tester' not found; available: RtMidiOut Client:tester " * 3)
    for label in (window.status.audio_label, window.status.midi_label):
        assert label.isVisible()
        msg = window.status.message_label
        a, b = label.geometry(), msg.geometry()
        assert not a.intersects(b), (label.text(), a, b)
    assert window.status.message_label.toolTip().startswith("MIDI input 'tester'")  # the whole text, on hover


def test_the_clip_light_goes_out_by_itself_and_on_a_synth_switch(qtbot, window):
    now = [0.0]
    meter = window.meter
    meter._clock = lambda: now[0]
    meter.set_samples(np.ones(256, np.float32))
    assert meter.clipped
    now[0] += 1.0
    meter.set_samples(np.zeros(256, np.float32))
    assert meter.clipped  # held a moment, to be seen
    now[0] += 5.0
    meter.set_samples(np.zeros(256, np.float32))
    assert not meter.clipped
    meter.set_samples(np.ones(256, np.float32))
    from synth_core.engine.sine_voice import SineVoiceSource

    window.synths.factories["voice"] = lambda: SineVoiceSource(n_presets=3, names=["a", "b", "c"])
    window._load_synth("voice")
    assert window.set_synth("voice") and not meter.clipped  # a light from the other synth is not this one's


def test_a_sing_midi_mapping_does_not_show_on_the_voice_faders(qtbot, window):
    import mido

    window.midi_learn.learn("embed.3")
    window.midi_learn.handle(mido.Message("control_change", control=74, value=10))
    assert "CC74" in window.embedding.dim_faders[2].caption.text()
    from synth_core.engine.sine_voice import SineVoiceSource

    window.synths.factories["voice"] = lambda: SineVoiceSource(n_presets=3, names=["a", "b", "c"])
    window._load_synth("voice")
    assert window.set_synth("voice")
    assert all("CC74" not in f.caption.text() for f in window.embedding.dim_faders)
    assert all("CC74" not in s.caption.text() for s in window.voice_panel.sliders.values())
    assert window.set_synth("sing")
    assert "CC74" in window.embedding.dim_faders[2].caption.text()  # back in SING, the mapping is there


def test_the_pads_dot_never_hides_a_corner_label(qtbot, window):
    window.resize(1264, 752)
    window.show()
    qtbot.waitExposed(window)
    pad = window.morph.pad
    rects = pad.label_rects()
    assert all(r.width() > 20 for r in rects) and not any(
        a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :]
    )
    for corner, (x, y) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        pad.set_position(x, y)  # the dot right on the label
        on_label = pad.grab().toImage()
        pad.set_position(1 - x, 1 - y)  # far away
        away = pad.grab().toImage()
        r = rects[corner].toRect().adjusted(3, 3, -3, -3)  # inside the chip's rounded corners
        assert on_label.copy(r) == away.copy(r), corner  # the label reads the same wherever the dot is
