"""Faders for the instrument embedding: one per dimension plus "timbre" faders on the table's principal
components. Both views edit the same vector and stay in sync; ``vectorChanged`` carries the new vector."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from sing_app.timbre_space import TimbreSpace

STEPS = 1000


class Fader(QWidget):
    """Vertical slider over a float range with a value readout and a caption."""

    valueChanged = pyqtSignal(float)

    def __init__(self, caption: str, lo: float, hi: float, colour: str = "#3a7bd5", parent: QWidget | None = None):
        super().__init__(parent)
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5
        self.lo, self.hi = float(lo), float(hi)
        self._value = (self.lo + self.hi) / 2
        self.slider = QSlider(Qt.Orientation.Vertical)
        self.slider.setRange(0, STEPS)
        self.slider.setMinimumHeight(90)
        self.slider.setStyleSheet(
            "QSlider::groove:vertical { background: #0b0c0f; width: 6px; border-radius: 3px; }"
            f"QSlider::sub-page:vertical {{ background: #0b0c0f; border-radius: 3px; }}"
            f"QSlider::add-page:vertical {{ background: {colour}; border-radius: 3px; }}"
            "QSlider::handle:vertical { background: #e8e8e8; height: 10px; margin: 0 -6px; border-radius: 3px; }"
        )
        self.readout = QLabel()
        self.caption = QLabel(caption)
        for lab in (self.readout, self.caption):
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.readout.setStyleSheet("color: #9aa0a6; font-size: 8pt;")
        self.caption.setStyleSheet("font-size: 8pt;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.readout)
        lay.addWidget(self.slider, 1, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.caption)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.slider.valueChanged.connect(self._slid)
        self.set_value(self._value, emit=False)

    def value(self) -> float:
        return self._value

    def set_tip(self, text: str) -> None:
        """What the fader does, on the fader, its slider and its caption (MIDI learn adds its mapping)."""
        for w in (self, self.slider, self.caption):
            w.setToolTip(text)

    def set_value(self, value: float, emit: bool = False) -> None:
        self._value = float(value)
        pos = round((self._value - self.lo) / (self.hi - self.lo) * STEPS)
        self.slider.blockSignals(True)
        self.slider.setValue(max(0, min(STEPS, pos)))
        self.slider.blockSignals(False)
        self.readout.setText(f"{self._value:+.1f}")  # one decimal keeps 20 faders narrow; the tooltip has three
        self.readout.setToolTip(f"{self._value:+.3f} (range {self.lo:+.2f} … {self.hi:+.2f})")
        if emit:
            self.valueChanged.emit(self._value)

    def _slid(self, pos: int) -> None:
        self.set_value(self.lo + (self.hi - self.lo) * pos / STEPS, emit=True)


class EmbeddingPanel(QWidget):
    """Per-dimension faders (range = the table's min/max per dimension) and PCA timbre faders."""

    vectorChanged = pyqtSignal(object)

    def __init__(
        self,
        table: np.ndarray,
        n_timbre: int = 4,
        parent: QWidget | None = None,
        title: str | None = None,
        dim_tip: str = "Embedding dimension {i} of {n}: one number of the instrument's vector",
    ):
        """``dim_tip``: the per-dimension faders' tooltip ({i}: its number, {n}: how many)."""
        super().__init__(parent)
        table = np.asarray(table, dtype=np.float32)
        self.table = table
        self.space = TimbreSpace(table, n_components=n_timbre)
        self._vec = table.mean(axis=0).astype(np.float32) if len(table) else np.zeros(table.shape[1], np.float32)
        lo, hi = table.min(axis=0), table.max(axis=0)
        n = table.shape[1]
        self.dim_faders = [Fader(str(i + 1), float(lo[i]), float(hi[i])) for i in range(n)]
        for i, f in enumerate(self.dim_faders):
            f.set_tip(f"{dim_tip.format(i=i + 1, n=n)}.\nIts range: the table's lowest to highest value; "
                      "right-click: MIDI learn")  # fmt: skip
        self.timbre_faders = []
        for k in range(self.space.n_components):
            cmin, cmax = float(self.space.coord_min[k]), float(self.space.coord_max[k])
            margin = 0.25 * (cmax - cmin)
            pct = round(100 * float(self.space.explained_ratio[k]))
            fader = Fader(f"PC{k + 1}\n{pct}%", cmin - margin, cmax + margin, colour="#ff9f1c")
            fader.set_tip(f"Timbre: principal component {k + 1} of the instrument table ({pct}% of its variance); "
                          "moves every dimension at once.\nRight-click: MIDI learn")  # fmt: skip
            self.timbre_faders.append(fader)

        timbre_box = QGroupBox("Timbre")
        tl = QHBoxLayout(timbre_box)
        tl.setSpacing(6)
        for f in self.timbre_faders:
            tl.addWidget(f)
        if not self.timbre_faders:
            tl.addWidget(QLabel("(needs 2+ instruments)"))
        emb_box = QGroupBox(title or f"Embedding ({table.shape[1]} dims)")
        el = QHBoxLayout(emb_box)
        el.setSpacing(2)
        for f in self.dim_faders:
            el.addWidget(f)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(timbre_box, len(self.timbre_faders))
        lay.addWidget(emb_box, max(len(self.dim_faders), 1))
        for i, f in enumerate(self.dim_faders):
            f.valueChanged.connect(lambda v, i=i: self._dim_moved(i, v))
        for k, f in enumerate(self.timbre_faders):
            f.valueChanged.connect(lambda v, k=k: self._timbre_moved(k, v))
        self._sync()

    def vector(self) -> np.ndarray:
        return self._vec.copy()

    def set_vector(self, vec: np.ndarray) -> None:
        """Show ``vec`` on all faders without emitting ``vectorChanged``."""
        vec = np.asarray(vec, dtype=np.float32).ravel()
        if vec.shape != self._vec.shape:
            raise ValueError(f"vector has {vec.size} values, expected {self._vec.size}")
        self._vec = vec.copy()
        self._sync()

    def _sync(self, skip: Fader | None = None) -> None:
        for f, v in zip(self.dim_faders, self._vec, strict=True):
            if f is not skip:
                f.set_value(float(v))
        coords = self.space.coords(self._vec)
        for f, c in zip(self.timbre_faders, coords, strict=True):
            if f is not skip:
                f.set_value(float(c))

    def _dim_moved(self, i: int, value: float) -> None:
        self._vec[i] = value
        self._sync(skip=self.dim_faders[i])
        self.vectorChanged.emit(self.vector())

    def _timbre_moved(self, k: int, value: float) -> None:
        self._vec = self.space.move(self._vec, k, value)
        self._sync(skip=self.timbre_faders[k])
        self.vectorChanged.emit(self.vector())
