"""A small live plot of a training loss (step, loss) for progress dialogs."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import QPointF
from PyQt6.QtGui import QColor, QPainter, QPen, QPolygonF
from PyQt6.QtWidgets import QWidget


class LossCurve(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.points: list[tuple[int, float]] = []
        self.setMinimumHeight(90)

    def set_points(self, points: Sequence[tuple[int, float]]) -> None:
        self.points = list(points)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor("#0d1512"))
        p.setPen(QColor(140, 220, 180, 160))
        if len(self.points) < 2 or w < 4 or h < 4:
            p.drawText(6, 14, "loss")
            p.end()
            return
        steps = [s for s, _ in self.points]
        losses = [v for _, v in self.points]
        s0, s1 = min(steps), max(steps) or 1
        lo, hi = min(losses), max(losses)
        span = (hi - lo) or 1.0
        pts = [
            QPointF(4 + (w - 8) * (s - s0) / max(s1 - s0, 1), h - 4 - (h - 18) * (v - lo) / span)
            for s, v in self.points
        ]
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("#5dffa8"), 1.4))
        p.drawPolyline(QPolygonF(pts))
        p.setPen(QColor(140, 220, 180, 160))
        p.drawText(6, 14, f"loss {losses[-1]:.3f} (step {steps[-1]})")
        p.end()
