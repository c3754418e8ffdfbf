"""Controls of the WaveRNN voice: Mono/Poly, glide time, vibrato depth, attack/decay/sustain, breath.

The panel only emits signals: ``monoChanged(bool)`` and ``settingsChanged(dict)`` with the changed
``VoiceSettings`` field (e.g. ``{"glide_s": 0.12}``); the window passes them to the engine and the source.
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QButtonGroup, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget


@dataclass(frozen=True)
class Control:
    """A slider over an integer range in display units; ``scale`` converts to the settings' units."""

    field: str
    caption: str
    lo: int
    hi: int
    unit: str
    scale: float = 1.0
    tip: str = ""


CONTROLS = (
    Control("glide_s", "Glide", 0, 1000, "ms", 1e-3, "Portamento time of legato notes (mono)"),
    Control("vibrato_cents", "Vibrato", 0, 100, "ct", 1.0, "Vibrato depth (it fades in after the note starts)"),
    Control("attack_s", "Attack", 1, 1000, "ms", 1e-3, "Loudness attack time"),
    Control("decay_s", "Decay", 10, 2000, "ms", 1e-3, "Time from the peak down to the sustain level"),
    Control("sustain_db", "Sustain", -40, 0, "dB", 1.0, "Sustain level below the peak"),
    Control(
        "temperature", "Breath", 5, 100, "%", 1e-2, "Sampling temperature: 100 % is the model's own, breathier sound"
    ),
)


class LabeledSlider(QWidget):
    """Caption and value above a horizontal slider."""

    def __init__(self, control: Control, parent: QWidget | None = None):
        super().__init__(parent)
        self.control = control
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(control.lo, control.hi)
        self.slider.setMinimumWidth(60)
        self.slider.setToolTip(control.tip)
        self.caption = QLabel(control.caption)
        self.readout = QLabel()
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.readout.setStyleSheet("color: #9aa0a6;")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.caption)
        top.addWidget(self.readout, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        lay.addLayout(top)
        lay.addWidget(self.slider)
        self.slider.valueChanged.connect(self._show)
        self._show(self.slider.value())

    def value(self) -> float:
        """The slider's value in the settings' units."""
        return self.slider.value() * self.control.scale

    def set_value(self, value: float) -> None:
        """Show ``value`` (settings units) without emitting."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(float(value) / self.control.scale))
        self.slider.blockSignals(False)
        self._show(self.slider.value())

    def _show(self, v: int) -> None:
        self.readout.setText(f"{v} {self.control.unit}")


class VoicePanel(QGroupBox):
    """Mono/Poly switch and the voice's playing settings."""

    monoChanged = pyqtSignal(bool)
    settingsChanged = pyqtSignal(dict)

    def __init__(self, max_voices: int = 4, parent: QWidget | None = None):
        super().__init__("Voice", parent)
        self.mono_button = QPushButton("Mono")
        self.mono_button.setToolTip("One line: legato notes glide from the previous pitch (last-note priority)")
        self.poly_button = QPushButton(f"Poly {max_voices}")
        self.poly_button.setToolTip(f"Up to {max_voices} voices at once")
        self.mode_group = QButtonGroup(self)
        for b in (self.mono_button, self.poly_button):
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setStyleSheet("QPushButton:checked { background: #ff9f1c; color: #111; font-weight: bold; }")
            self.mode_group.addButton(b)
        self.mono_button.setChecked(True)
        self.sliders = {c.field: LabeledSlider(c) for c in CONTROLS}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 6)
        lay.setSpacing(8)
        modes = QHBoxLayout()
        modes.setSpacing(0)
        modes.addWidget(self.mono_button)
        modes.addWidget(self.poly_button)
        lay.addLayout(modes)
        for s in self.sliders.values():
            s.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow/letter keys keep playing the keyboard
            lay.addWidget(s, 1)
        self.mono_button.toggled.connect(self.monoChanged.emit)
        for field, s in self.sliders.items():
            s.slider.valueChanged.connect(lambda _v, f=field, s=s: self.settingsChanged.emit({f: s.value()}))

    def is_mono(self) -> bool:
        return self.mono_button.isChecked()

    def set_mono(self, on: bool, emit: bool = True) -> None:
        self.mono_button.blockSignals(not emit)
        (self.mono_button if on else self.poly_button).setChecked(True)
        self.mono_button.blockSignals(False)

    def set_settings(self, settings: object) -> None:
        """Show a settings object's values (fields it lacks keep their slider)."""
        for field, s in self.sliders.items():
            if hasattr(settings, field):
                s.set_value(getattr(settings, field))
