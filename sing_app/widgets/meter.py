"""Level meter: peak and RMS in dBFS with a dB scale, peak hold and a clip light."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0
TOP_DB = 3.0
TICKS_DB = (0, -6, -12, -18, -24, -36, -48, -60)
CLIP_HOLD_S = 3.0  # the clip light stays lit this long after the output last reached full scale


def to_db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 1e-6 else -120.0


def levels(block: np.ndarray) -> tuple[float, float]:
    """(peak, rms) of a block of samples, linear."""
    block = np.asarray(block, dtype=np.float32)
    if block.size == 0:
        return 0.0, 0.0
    return float(np.max(np.abs(block))), float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))


class LevelMeter(QWidget):
    """Vertical meter fed by :meth:`set_samples` (the latest output block, e.g. from engine.scope)."""

    def __init__(
        self,
        hold_s: float = 1.5,
        fall_db_per_s: float = 24.0,
        clock: Callable[[], float] = time.monotonic,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.hold_s, self.fall_db_per_s, self._clock = hold_s, fall_db_per_s, clock
        self.peak_db = self.rms_db = -120.0
        self.hold_db = -120.0
        self._hold_t = 0.0
        self._last_t = clock()
        self.clipped = False
        self._clip_t = 0.0
        self.setMinimumSize(64, 100)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setToolTip(
            "Output level in dBFS: bar = RMS, line = peak, marker = peak hold.\nCLIP lights for a few seconds when "
            "the output reaches full scale (the limiter is squashing it: turn the volume down). Click to reset."
        )

    def set_samples(self, block: np.ndarray) -> None:
        peak, rms = levels(block)
        now = self._clock()
        dt = max(now - self._last_t, 0.0)
        self._last_t = now
        self.peak_db, self.rms_db = to_db(peak), to_db(rms)
        if peak >= 0.999:
            self.clipped, self._clip_t = True, now
        elif self.clipped and now - self._clip_t > CLIP_HOLD_S:
            self.clipped = False
        if self.peak_db >= self.hold_db:
            self.hold_db, self._hold_t = self.peak_db, now
        elif now - self._hold_t > self.hold_s:
            self.hold_db = max(self.peak_db, self.hold_db - self.fall_db_per_s * dt)
        self.update()

    def reset(self) -> None:
        self.peak_db = self.rms_db = self.hold_db = -120.0
        self.clipped = False
        self.update()

    def mousePressEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        self.clipped = False
        self.hold_db = self.peak_db
        self.update()

    def _y(self, db: float, bar: QRectF) -> float:
        frac = (min(max(db, FLOOR_DB), TOP_DB) - FLOOR_DB) / (TOP_DB - FLOOR_DB)
        return bar.bottom() - frac * bar.height()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#15171c"))
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.72))
        p.setFont(small)
        top_h = 30.0
        bar = QRectF(6, top_h, 18, self.height() - top_h - 6)
        p.fillRect(bar, QColor("#0b0c0f"))
        g = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        g.setColorAt(0.0, QColor("#2e8b57"))
        g.setColorAt((-18 - FLOOR_DB) / (TOP_DB - FLOOR_DB), QColor("#7ccd3c"))
        g.setColorAt((-6 - FLOOR_DB) / (TOP_DB - FLOOR_DB), QColor("#f2c14e"))
        g.setColorAt((0 - FLOOR_DB) / (TOP_DB - FLOOR_DB), QColor("#e4572e"))
        g.setColorAt(1.0, QColor("#ff2020"))
        y_rms = self._y(self.rms_db, bar)
        p.fillRect(QRectF(bar.left(), y_rms, bar.width(), bar.bottom() - y_rms), g)
        if self.peak_db > FLOOR_DB:
            y = self._y(self.peak_db, bar)
            p.fillRect(QRectF(bar.left(), y, bar.width(), 2), QColor("#ffffff"))
        if self.hold_db > FLOOR_DB:
            y = self._y(self.hold_db, bar)
            p.fillRect(QRectF(bar.left() - 3, y - 1, bar.width() + 6, 3), QColor("#ff9f1c"))
        # scale
        p.setPen(QPen(QColor("#8a9099"), 1))
        last_y = -1e9
        for db in TICKS_DB:
            y = self._y(db, bar)
            if y - last_y < 11 and db != FLOOR_DB:
                continue  # not enough room for every label on a short meter
            last_y = y
            p.drawLine(int(bar.right() + 2), int(y), int(bar.right() + 6), int(y))
            p.drawText(QRectF(bar.right() + 8, y - 7, 40, 14), Qt.AlignmentFlag.AlignVCenter, f"{db}")
        # readouts
        clip = QRectF(4, 3, self.width() - 8, 11)
        p.fillRect(clip, QColor("#e4572e") if self.clipped else QColor("#3a1c1c"))
        p.setPen(QColor("#ffffff") if self.clipped else QColor("#777"))
        p.drawText(clip, Qt.AlignmentFlag.AlignCenter, "CLIP")
        p.setPen(QColor("#e8e8e8"))
        hold = f"{self.hold_db:+.1f}" if self.hold_db > -100 else "-inf"
        p.drawText(QRectF(0, 15, self.width(), 14), Qt.AlignmentFlag.AlignCenter, f"{hold} dB")
        p.end()
