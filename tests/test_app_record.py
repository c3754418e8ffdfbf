"""Record starts at once into an auto-named file in the recordings folder, shown in the status bar."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import soundfile as sf
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import QApplication

from sing_app import main_window
from sing_app.main_window import MainWindow
from sing_app.recordings import safe_name, take_path
from sing_app.widgets.recorder_view_model import RecorderViewModel
from sing_app.widgets.settings_dialog import AudioMidiSettings
from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import SineSource
from synth_core.sing import InstrumentInfo

WHEN = datetime(2026, 12, 2, 22, 10, 5)


@pytest.fixture
def window(qtbot, tmp_path):
    source = SineSource(n_instruments=2)
    source.instruments = [InstrumentInfo("Acoustic Grand Piano", "keyboard"), InstrumentInfo("Flute", "flute")]
    opened = []
    recorder = RecorderViewModel(folder=tmp_path / "Music" / "NeuroSynth", open_url=opened.append, clock=lambda: WHEN)
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [],
                     recorder=recorder)  # fmt: skip
    qtbot.addWidget(win)
    win.display_timer.stop()
    win.engine.stop()
    win.engine.synchronous = True  # notes are computed as the clock pulls them: no worker to lag on a busy CPU
    now = [0.0]
    win.offline._clock = lambda: now[0]
    win.offline.timer.stop()
    win.offline._last = 0.0

    def play(seconds: float) -> None:
        for _ in range(int(seconds / 0.02)):
            now[0] += 0.02
            win.offline.tick()

    win.play, win.opened = play, opened
    yield win
    win.shutdown()


def test_record_starts_at_once_into_an_auto_named_file(qtbot, window, tmp_path):
    folder = tmp_path / "Music" / "NeuroSynth"
    assert not folder.exists()
    window.instrument_list.select(0)
    window.tools.act_record.trigger()  # no dialog: the take starts now
    assert QApplication.activeModalWidget() is None and window.tools.act_record.isChecked()
    want = folder / "2026-12-02 22-10-05 Acoustic Grand Piano.wav"
    assert window.recorder.path == want and want.exists()  # the folder was created
    bar = window.status
    assert bar.record_label.isVisibleTo(window) and want.name in bar.record_label.text()
    assert bar.open_folder_button.isVisibleTo(window)
    assert QApplication.focusWidget() in (window.piano, None)  # the keyboard still plays
    window.engine.note_on(69, 110)
    window.play(0.6)
    window.tools.act_record.trigger()
    assert not window.tools.act_record.isChecked() and window.recorder.path is None
    audio, sr = sf.read(want)
    assert len(audio) >= 0.5 * sr and np.sqrt(np.mean(audio[-8192:] ** 2)) > 0.01
    assert estimate_f0(audio[-8192:], sr) == pytest.approx(midi_to_hz(69), rel=0.01)
    assert bar.record_label.text() == f"Saved: {want.name}"
    qtbot.mouseClick(bar.open_folder_button, Qt.MouseButton.LeftButton)
    assert [u.toLocalFile() for u in window.opened] == [str(folder)]
    # another take in the same second gets its own file
    window.tools.act_record.trigger()
    assert window.recorder.path == folder / "2026-12-02 22-10-05 Acoustic Grand Piano (2).wav"
    window.tools.act_record.trigger()


def test_a_folder_that_cannot_be_made_is_reported_and_nothing_starts(window, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    window.recorder.folder = blocker / "takes"
    warnings = []
    monkeypatch.setattr(main_window.QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    window.tools.act_record.trigger()
    assert not window.tools.act_record.isChecked() and window.recorder.path is None and not window.engine.recording
    assert "Could not start recording" in warnings[0] and str(blocker / "takes") in warnings[0]


def test_the_chosen_folder_is_kept_for_the_next_session(tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    RecorderViewModel(settings).set_folder(tmp_path / "takes")
    again = RecorderViewModel(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert again.folder == tmp_path / "takes"
    assert RecorderViewModel(settings, folder=tmp_path / "cli").folder == tmp_path / "cli"  # --recordings wins


def test_take_names_are_safe_file_names(tmp_path):
    assert safe_name('Morph: a/b "c"?') == "Morph a b c"
    assert safe_name("...") == "take"
    assert take_path(tmp_path, "Violin (edited)", WHEN).name == "2026-12-02 22-10-05 Violin (edited).wav"
