"""Oscilloscope: a triggered trace of the latest output samples, drawn cheaply (one point pair per pixel)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF
from PyQt6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PyQt6.QtWidgets import QSizePolicy, QWidget


def trigger_index(x: np.ndarray, search: int) -> int:
    """First rising zero crossing within the first ``search`` samples (0 if none): keeps the trace still."""
    seg = x[: max(search, 2)]
    rising = np.flatnonzero((seg[:-1] <= 0.0) & (seg[1:] > 0.0))
    return int(rising[0] + 1) if len(rising) else 0


def min_max_columns(x: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (min, max) envelope of ``x`` for drawing ``columns`` pixels wide."""
    columns = max(1, min(columns, len(x)))
    usable = len(x) - len(x) % columns
    if usable == 0:
        return np.zeros(1), np.zeros(1)
    cols = x[:usable].reshape(columns, -1)
    return cols.min(axis=1), cols.max(axis=1)


class ScopeWidget(QWidget):
    """Shows ``window`` samples after a trigger point from the block passed to :meth:`set_samples`."""

    def __init__(self, window: int = 1024, parent: QWidget | None = None):
        super().__init__(parent)
        self.window = window
        self._data = np.zeros(window, dtype=np.float32)
        self.gain = 1.0
        self.setMinimumSize(200, 70)
        self.setToolTip("Oscilloscope: the output's latest waveform, triggered on a rising zero crossing")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def samples_needed(self) -> int:
        """How many samples to pull for one frame (window plus room to find a trigger)."""
        return 2 * self.window

    def set_samples(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if len(block) > self.window:
            start = trigger_index(block, len(block) - self.window)
            block = block[start : start + self.window]
        self._data = block
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor("#0d1512"))
        p.setPen(QPen(QColor(80, 200, 140, 40), 1))
        for i in range(1, 10):
            p.drawLine(int(i * w / 10), 0, int(i * w / 10), h)
        for i in range(1, 4):
            p.drawLine(0, int(i * h / 4), w, int(i * h / 4))
        p.setPen(QPen(QColor(80, 200, 140, 90), 1))
        p.drawLine(0, h // 2, w, h // 2)
        data = self._data
        if len(data) >= 2:
            mid, amp = h / 2.0, (h / 2.0 - 3) * self.gain
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor("#5dffa8"), 1.4))
            if len(data) > 2 * w:
                lo, hi = min_max_columns(data, w)
                step = w / len(lo)
                pts = []
                for i in range(len(lo)):
                    pts.append(QPointF(i * step, mid - float(hi[i]) * amp))
                    pts.append(QPointF(i * step, mid - float(lo[i]) * amp))
            else:
                xs = np.linspace(0, w - 1, len(data))
                pts = [QPointF(float(x), mid - float(v) * amp) for x, v in zip(xs, data, strict=True)]
            p.drawPolyline(QPolygonF(pts))
        p.setPen(QColor(140, 220, 180, 160))
        p.drawText(6, 14, "SCOPE")
        p.end()
