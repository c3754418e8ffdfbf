"""XY morph pad (NSynth Super style): four corner instruments, bilinear blend of their embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QRadialGradient
from PyQt6.QtWidgets import QComboBox, QGridLayout, QLabel, QSizePolicy, QWidget

from synth_core.sing.instrument_names import display_name

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
CORNER_COLOURS = ("#e4572e", "#29b6f6", "#76b041", "#ffc914")
LABEL_CHIP, LABEL_MARGIN, LABEL_PAD = "#1b1d22", 4.0, 4.0


def corner_weights(x: float, y: float) -> np.ndarray:
    """Bilinear weights of the (top-left, top-right, bottom-left, bottom-right) corners.

    ``x`` runs 0 (left) .. 1 (right), ``y`` 0 (top) .. 1 (bottom); values are clamped to [0, 1].
    """
    x = min(max(float(x), 0.0), 1.0)
    y = min(max(float(y), 0.0), 1.0)
    return np.array([(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y])


def bilinear_blend(corners: np.ndarray, x: float, y: float) -> np.ndarray:
    """Blend of four corner vectors ``corners[4, dim]`` at pad position (x, y)."""
    corners = np.asarray(corners, dtype=np.float64)
    if corners.shape[0] != 4:
        raise ValueError(f"need 4 corner vectors, got {corners.shape[0]}")
    return (corner_weights(x, y) @ corners).astype(np.float32)


class XYPad(QWidget):
    """A square pad with a draggable puck; emits ``positionChanged(x, y)`` in [0, 1]^2 (y down)."""

    positionChanged = pyqtSignal(float, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._x, self._y = 0.5, 0.5
        self._labels = ["", "", "", ""]
        self.setMinimumSize(180, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip(
            "Drag to blend the four corner instruments (the weights below); new notes play the blend.\n"
            "Right-click: MIDI learn for the X / Y axes (the mod wheel moves X by default)"
        )

    def position(self) -> tuple[float, float]:
        return self._x, self._y

    def set_position(self, x: float, y: float, emit: bool = True) -> None:
        x, y = min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0)
        self._x, self._y = x, y
        self.update()
        if emit:
            self.positionChanged.emit(x, y)

    def set_corner_labels(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)[:4]
        self.update()

    def pad_rect(self) -> QRectF:
        side = min(self.width(), self.height()) - 2
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def point_for(self, x: float, y: float) -> QPointF:
        r = self.pad_rect()
        return QPointF(r.left() + x * r.width(), r.top() + y * r.height())

    def _pos_to_xy(self, pos: QPointF) -> tuple[float, float]:
        r = self.pad_rect()
        return (pos.x() - r.left()) / max(r.width(), 1.0), (pos.y() - r.top()) / max(r.height(), 1.0)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.set_position(*self._pos_to_xy(event.position()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.set_position(*self._pos_to_xy(event.position()))

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.pad_rect()
        p.fillRect(r, QColor("#15171c"))
        corners = (r.topLeft(), r.topRight(), r.bottomLeft(), r.bottomRight())
        for c, colour in zip(corners, CORNER_COLOURS, strict=True):
            g = QRadialGradient(c, r.width() * 0.8)
            col = QColor(colour)
            col.setAlpha(110)
            g.setColorAt(0.0, col)
            col.setAlpha(0)
            g.setColorAt(1.0, col)
            p.fillRect(r, QBrush(g))
        p.setPen(QPen(QColor(255, 255, 255, 28), 1))
        for i in range(1, 8):
            t = i / 8
            p.drawLine(QPointF(r.left() + t * r.width(), r.top()), QPointF(r.left() + t * r.width(), r.bottom()))
            p.drawLine(QPointF(r.left(), r.top() + t * r.height()), QPointF(r.right(), r.top() + t * r.height()))
        p.setPen(QPen(QColor("#555"), 1))
        p.drawRect(r)
        # puck
        c = self.point_for(self._x, self._y)
        p.setPen(QPen(QColor(255, 255, 255, 60), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(c.x(), r.top()), QPointF(c.x(), r.bottom()))
        p.drawLine(QPointF(r.left(), c.y()), QPointF(r.right(), c.y()))
        glow = QRadialGradient(c, 22)
        glow.setColorAt(0.0, QColor(255, 255, 255, 150))
        glow.setColorAt(1.0, QColor(255, 255, 255, 0))
        p.setBrush(QBrush(glow))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(c, 22, 22)
        p.setBrush(QColor("#ffffff"))
        p.setPen(QPen(QColor("#222"), 2))
        p.drawEllipse(c, 8, 8)
        # corner labels last, on opaque chips: the dot (and its glow) never hides a name
        p.setPen(Qt.PenStyle.NoPen)
        for text, rect, colour in zip(self._label_texts(), self.label_rects(), CORNER_COLOURS, strict=False):
            if not text:
                continue
            p.setBrush(QColor(LABEL_CHIP))
            p.drawRoundedRect(rect, 3, 3)
            p.fillRect(QRectF(rect.left(), rect.top() + 2, 3, rect.height() - 4), QColor(colour))
            p.setPen(QColor("#e8e8e8"))
            p.drawText(rect.adjusted(LABEL_PAD + 2, 0, -LABEL_PAD, 0), Qt.AlignmentFlag.AlignVCenter, text)
            p.setPen(Qt.PenStyle.NoPen)
        p.end()

    def _label_texts(self) -> list[str]:
        """The corner names, each elided in the middle to half the pad's width (two share a side)."""
        half = int(self.pad_rect().width() / 2 - 2 * LABEL_MARGIN - 2 * LABEL_PAD - 2)
        metrics = self.fontMetrics()
        return [metrics.elidedText(t, Qt.TextElideMode.ElideMiddle, max(half, 0)) for t in self._labels]

    def label_rects(self) -> list[QRectF]:
        """Where the corner labels' chips are drawn (top-left, top-right, bottom-left, bottom-right)."""
        r = self.pad_rect().adjusted(LABEL_MARGIN, LABEL_MARGIN, -LABEL_MARGIN, -LABEL_MARGIN)
        metrics = self.fontMetrics()
        h = metrics.height() + 4
        out = []
        for i, text in enumerate(self._label_texts()):
            w = metrics.horizontalAdvance(text) + 2 * LABEL_PAD + 2 if text else 0
            x = r.left() if i in (0, 2) else r.right() - w
            y = r.top() if i in (0, 1) else r.bottom() - h
            out.append(QRectF(x, y, w, h))
        return out


class MorphPanel(QWidget):
    """Four corner-instrument combo boxes around an :class:`XYPad`; emits the blended vector.

    ``vectorChanged(np.ndarray)`` fires when the puck moves or a corner instrument changes.
    """

    vectorChanged = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._table = np.zeros((0, 16), dtype=np.float32)
        self.pad = XYPad()
        self.combos = [QComboBox() for _ in CORNERS]
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for combo, name, colour in zip(self.combos, CORNERS, CORNER_COLOURS, strict=True):
            combo.setToolTip(f"The instrument of the pad's {name} corner")
            combo.setStyleSheet(f"QComboBox {{ border-left: 4px solid {colour}; padding-left: 4px; }}")
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.currentIndexChanged.connect(self._corners_changed)
        grid.addWidget(self.combos[0], 0, 0)
        grid.addWidget(self.combos[1], 0, 1)
        grid.addWidget(self.pad, 1, 0, 1, 2)
        grid.addWidget(self.combos[2], 2, 0)
        grid.addWidget(self.combos[3], 2, 1)
        self.weights_label = QLabel()
        self.weights_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.weights_label.setStyleSheet("color: #9aa0a6;")
        self.weights_label.setToolTip("How much of each corner the blend holds (top-left, top-right, bottom-left, "
                                      "bottom-right)")  # fmt: skip
        grid.addWidget(self.weights_label, 3, 0, 1, 2)
        self.pad.positionChanged.connect(self._moved)

    def set_instruments(self, names: Sequence[str], table: np.ndarray, corners: Sequence[int] | None = None) -> None:
        """Fill the combo boxes; ``corners`` picks the four. By default a corner keeps the instrument it had when
        that one is still listed (a new or removed instrument leaves the others' corners alone); the rest are
        spread over the table."""
        self._table = np.asarray(table, dtype=np.float32)
        names = list(names)
        n = len(names)
        if corners is None:
            spread = [min(n - 1, round(i * (n - 1) / 3)) for i in range(4)] if n else [0, 0, 0, 0]
            kept = [c.currentData() if c.currentIndex() >= 0 else None for c in self.combos]
            corners = [names.index(k) if k in names else s for k, s in zip(kept, spread, strict=True)]
        for combo, idx in zip(self.combos, corners, strict=True):
            combo.blockSignals(True)
            combo.clear()
            for name in names:  # shown by human name ("Violin" for gm040_violin), kept by name
                combo.addItem(display_name(name), name)
            combo.setCurrentIndex(int(idx) if n else -1)
            combo.blockSignals(False)
        self._update_labels()

    def corner_indices(self) -> list[int]:
        return [c.currentIndex() for c in self.combos]

    def set_corner(self, corner: int, index: int) -> None:
        self.combos[corner].setCurrentIndex(index)

    def corner_vectors(self) -> np.ndarray:
        return self._table[self.corner_indices()]

    def vector(self) -> np.ndarray:
        return bilinear_blend(self.corner_vectors(), *self.pad.position())

    def _update_labels(self) -> None:
        self.pad.set_corner_labels([c.currentText() for c in self.combos])
        for combo, corner in zip(self.combos, CORNERS, strict=True):
            combo.setToolTip(f"The instrument of the pad's {corner} corner: {combo.currentText()}")
        w = corner_weights(*self.pad.position())
        self.weights_label.setText("  ".join(f"{round(100 * v):3d}%" for v in w) if len(self._table) else "")

    def _corners_changed(self) -> None:
        self._update_labels()
        if len(self._table) and min(self.corner_indices()) >= 0:
            self.vectorChanged.emit(self.vector())

    def _moved(self, x: float, y: float) -> None:
        self._update_labels()
        if len(self._table) and min(self.corner_indices()) >= 0:
            self.vectorChanged.emit(self.vector())
