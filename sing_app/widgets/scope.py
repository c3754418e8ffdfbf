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


def polygon_buffer(polygon: QPolygonF, n: int) -> np.ndarray:
    """Resize ``polygon`` to ``n`` points and return its memory as an [n, 2] float64 array to write x, y into: the
    trace is built by numpy, not one Python ``QPointF`` per point (the painter holds the GIL meanwhile)."""
    if len(polygon) != n:
        polygon.fill(QPointF(), n)
    buffer = polygon.data()
    buffer.setsize(16 * n)
    return np.frombuffer(buffer, np.float64).reshape(n, 2)


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
        self._trace = QPolygonF()
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
            # One point per sample up to one per pixel column, else each column's min and max; no antialiasing: a
            # smooth 1.4-pixel trace of 1,024 points took ~7 ms a frame with the GIL held, late audio blocks
            p.setPen(QPen(QColor("#5dffa8"), 1))
            if len(data) > w:
                lo, hi = min_max_columns(data, w)
                xy = polygon_buffer(self._trace, 2 * len(lo))
                xy[:, 0] = np.repeat(np.arange(len(lo)) * (w / len(lo)), 2)
                xy[0::2, 1], xy[1::2, 1] = hi, lo
            else:
                xy = polygon_buffer(self._trace, len(data))
                xy[:, 0] = np.linspace(0, w - 1, len(data))
                xy[:, 1] = data
            xy[:, 1] = mid - xy[:, 1] * amp
            p.drawPolyline(self._trace)
        p.setPen(QColor(140, 220, 180, 160))
        p.drawText(6, 14, "SCOPE")
        p.end()
