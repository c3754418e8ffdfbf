"""The window's status bar: audio and MIDI state, a message line, the recording, and the engine's numbers.

Every field is a widget of its own with a tooltip saying what it measures; messages go to their own elided line
(``showMessage`` is routed there), so they never cover the audio / MIDI fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QLabel, QStatusBar, QToolButton, QWidget

from synth_core.engine.config import EngineStats

from .dropouts_view_model import DropoutsViewModel
from .elided_label import ElidedLabel

OK, WARN = "#7ccd3c", "#f2c14e"


@dataclass(frozen=True)
class DeviceStatus:
    """What a device field shows: its text, its tooltip and its colour ("" for the default)."""

    text: str
    tooltip: str = ""
    colour: str = ""


TIPS = {
    "device": "Where the model runs (CPU or GPU) and, on the CPU, the precision new notes warm up in "
    "(measured at start)",
    "rate": "Output sample rate / block size: the frames the sound card asks for at each callback",
    "latency": "Output latency: the sound card's own plus the output ring the mixer keeps filled ahead.\n"
    "A new note adds the model's warm-up (a few ms; cached notes none)",
    "voices": "Voices sounding / the most that play at once (the oldest is stolen beyond that)",
    "load": "Model load: the share of real time the model worker spends computing notes.\n"
    "Near 100 % the model falls behind and notes drop out (engine underruns)",
    "midi": "MIDI input port (choose one in Audio/MIDI…); ports are rescanned every 3 s, so a keyboard "
    "plugged in later is found",
    "record": "The current or last recording",
    "open": "Open the recordings folder in the file manager",
}


class StatusBar(QStatusBar):
    """Fields: audio, MIDI, message (stretches), recording + "Open folder", model device, rate, latency,
    voices, load, dropouts. ``openFolderRequested`` fires from the "Open folder" button."""

    openFolderRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.audio_label = QLabel()
        self.midi_label = ElidedLabel(min_chars=10)
        self.message_label = ElidedLabel(min_chars=4)
        self.record_label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle, min_chars=12)
        self.open_folder_button = QToolButton()
        self.open_folder_button.setText("Open folder")
        self.open_folder_button.setAutoRaise(True)
        self.open_folder_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.open_folder_button.clicked.connect(self.openFolderRequested)
        self.device_label = ElidedLabel(min_chars=8)
        self.rate_label = QLabel()
        self.latency_label = QLabel()
        self.voices_label = QLabel()
        self.load_label = QLabel()
        self.dropouts_label = QLabel()
        self.dropouts = DropoutsViewModel()
        for name in ("device", "rate", "latency", "voices", "load", "midi"):
            getattr(self, f"{name}_label").setToolTip(TIPS[name])
        self.midi_label.set_text("", TIPS["midi"])
        self.device_label.set_text("", TIPS["device"])
        self.record_label.setToolTip(TIPS["record"])
        self.open_folder_button.setToolTip(TIPS["open"])
        self.dropouts_label.setToolTip(self.dropouts.tooltip())
        self.record_label.setVisible(False)
        self.open_folder_button.setVisible(False)
        for w, stretch in ((self.audio_label, 0), (self.midi_label, 0), (self.message_label, 1),
                           (self.record_label, 0), (self.open_folder_button, 0), (self.device_label, 0),
                           (self.rate_label, 0), (self.latency_label, 0), (self.voices_label, 0),
                           (self.load_label, 0), (self.dropouts_label, 0)):  # fmt: skip
            self.addPermanentWidget(w, stretch)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clearMessage)

    # ---------------------------------------------------------------- messages (own line, never over a field)
    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 - QStatusBar's name
        """Show ``text`` on the message line (for ``timeout`` ms; 0: until the next message)."""
        self.message_label.set_text(text, text)
        self._message_timer.stop()
        if timeout > 0:
            self._message_timer.start(timeout)
        self.messageChanged.emit(text)

    def currentMessage(self) -> str:  # noqa: N802 - QStatusBar's name
        return self.message_label.text()

    def clearMessage(self) -> None:  # noqa: N802 - QStatusBar's name
        self.message_label.set_text("")
        self.messageChanged.emit("")

    # ---------------------------------------------------------------- fields
    def show_audio(self, status: DeviceStatus) -> None:
        self._show(self.audio_label, status)

    def show_midi(self, status: DeviceStatus) -> None:
        self.midi_label.set_text(status.text, status.tooltip or TIPS["midi"])
        self.midi_label.setStyleSheet(f"color: {status.colour};" if status.colour else "")

    def show_recording(self, text: str, tooltip: str = "", active: bool = False) -> None:
        """The recording field ("" hides it, with the "Open folder" button)."""
        self.record_label.set_text(text, tooltip or TIPS["record"])
        self.record_label.setStyleSheet("color: #ff6b5e; font-weight: bold;" if active else "")
        self.record_label.setVisible(bool(text))
        self.open_folder_button.setVisible(bool(text))

    def show_stats(self, st: EngineStats, counters, audio_on: bool, now: float | None = None) -> None:
        """The engine's numbers; ``counters``: the output's OutputCounters (None offline)."""
        now = time.monotonic() if now is None else now
        self.device_label.set_text(f"Model: {st.device_name}", TIPS["device"])
        self.rate_label.setText(f"{st.sample_rate} Hz / {st.block_size}")
        self.latency_label.setText(f"latency {1000 * st.output_latency_s:.1f} ms" if audio_on else "latency –")
        self.voices_label.setText(f"voices {st.active_voices}/{st.max_voices}")
        self.load_label.setText(f"load {100 * st.render_load:.0f}%")
        d = self.dropouts
        d.update(st.underruns, counters.late_blocks if counters else 0, counters.device_underflows if counters else 0,
                 now)  # fmt: skip
        self.dropouts_label.setText(d.text())
        self.dropouts_label.setToolTip(d.tooltip())
        red = d.red(now)
        self.dropouts_label.setStyleSheet("color: white; background: #b3261e; font-weight: bold;" if red else "")

    @staticmethod
    def _show(label: QLabel, status: DeviceStatus) -> None:
        label.setText(status.text)
        label.setToolTip(status.tooltip)
        label.setStyleSheet(f"color: {status.colour};" if status.colour else "")
