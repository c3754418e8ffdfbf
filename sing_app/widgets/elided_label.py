"""A one-line label that shrinks: its text is elided to the width it gets, the full text shown as a tooltip."""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QPainter, QPaintEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """``text()`` is the full text; the label paints as much of it as fits (``…`` at ``mode``'s end).

    ``tooltip`` given to :meth:`set_text` is shown on hover; without one, the full text is, but only when it is
    cut."""

    def __init__(
        self,
        text: str = "",
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
        min_chars: int = 6,
        parent: QWidget | None = None,
    ):
        super().__init__(text, parent)
        self._mode, self._min_chars = mode, min_chars
        self._tip = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def set_text(self, text: str, tooltip: str = "") -> None:
        self._tip = tooltip
        self.setText(text)
        self._update_tip()

    def elided(self) -> bool:
        """True when the text does not fit (what the label shows is cut)."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        width = self.fontMetrics().averageCharWidth() * self._min_chars
        return QSize(min(hint.width(), width + self.contentsMargins().left() + self.contentsMargins().right()),
                     hint.height())  # fmt: skip

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        super().resizeEvent(event)
        self._update_tip()

    def _update_tip(self) -> None:
        full = self.text()
        self.setToolTip(self._tip or (full if self.elided() else ""))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt signature
        p = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), self._mode, rect.width())
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
        p.end()
