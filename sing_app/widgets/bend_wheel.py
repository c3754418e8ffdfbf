"""Pitch-bend wheel: a vertical slider that springs back to the centre when let go."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QSlider, QWidget


class BendWheel(QSlider):
    """Emits ``bendChanged(semitones)`` in [-range_st, +range_st]; returns to 0 on release."""

    bendChanged = pyqtSignal(float)

    def __init__(self, range_st: float = 2.0, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.range_st = range_st
        self.setRange(-1000, 1000)
        self.setValue(0)
        self.setToolTip(f"Pitch bend (±{range_st:g} semitones), springs back")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setStyleSheet(
            "QSlider::groove:vertical { background: #0b0c0f; width: 14px; border-radius: 4px; }"
            "QSlider::handle:vertical { background: #9aa0a6; height: 18px; margin: 0 -3px; border-radius: 4px; }"
        )
        self.valueChanged.connect(lambda v: self.bendChanged.emit(self.range_st * v / 1000.0))
        self.sliderReleased.connect(lambda: self.setValue(0))
