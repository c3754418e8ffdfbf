"""The window's central area, laid out to fit a 1280x800 screen and grow on larger ones.

Top (a splitter): the instrument list | the sound (its name, the Voice panel, the faders; they scroll only in a
window too narrow for them) | the morph pad. Below: the output (scope, meter, volume), then the bend wheel and
the piano. The panels only hold the widgets; the window connects them.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .bend_wheel import BendWheel
from .elided_label import ElidedLabel
from .embedding_panel import EmbeddingPanel
from .instrument_list import InstrumentList
from .meter import LevelMeter
from .piano import PianoWidget
from .scope import ScopeWidget
from .voice_panel import VoicePanel
from .xy_pad import MorphPanel

SIZES = (275, 665, 310)  # the list gets the room names need; the 16 faders fit at 1280 px
PANEL_MIN = (170, 250)  # the narrowest the instrument list and the morph pad get to leave the faders room


class MainPanels(QWidget):
    def __init__(self, embedding: EmbeddingPanel, voice_max: int, bend_range: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.instrument_list = InstrumentList()
        self.embedding = embedding
        self.voice_panel = VoicePanel(max_voices=voice_max)
        self.morph = MorphPanel()
        self.scope = ScopeWidget(window=1024)
        self.meter = LevelMeter()
        self.piano = PianoWidget(lowest=36, highest=96)
        self.piano.setMinimumHeight(130)
        self.bend = BendWheel(bend_range)
        self.volume = QSlider(Qt.Orientation.Vertical)
        self.volume.setRange(0, 200)
        self.volume.setValue(100)
        self.volume.setToolTip("Master volume (100 % = the model's level; right-click: MIDI learn)")
        self.volume_label = QLabel("100%")
        self.volume_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sound_label = ElidedLabel(min_chars=16)  # a long morph name never widens the faders' panel
        self.sound_label.setStyleSheet("font-size: 13pt; font-weight: 600; color: #ffb65c;")

        self.inst_box = QGroupBox("Instruments")
        QVBoxLayout(self.inst_box).addWidget(self.instrument_list)
        morph_box = QGroupBox("Morph pad")
        QVBoxLayout(morph_box).addWidget(self.morph)
        self.sound_box = QWidget()
        self.sound_layout = QVBoxLayout(self.sound_box)
        self.sound_layout.setContentsMargins(0, 0, 0, 0)
        self.sound_layout.addWidget(self.sound_label)
        self.sound_layout.addWidget(self.voice_panel)
        self.sound_layout.addWidget(self.embedding, 1)
        sound_scroll = QScrollArea()  # a narrow window scrolls the faders rather than squeezing them
        sound_scroll.setWidget(self.sound_box)
        sound_scroll.setWidgetResizable(True)
        sound_scroll.setFrameShape(QFrame.Shape.NoFrame)
        sound_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        top = self.top_splitter = QSplitter(Qt.Orientation.Horizontal)
        for w, stretch in ((self.inst_box, 2), (sound_scroll, 5), (morph_box, 3)):
            top.addWidget(w)
            top.setStretchFactor(top.count() - 1, stretch)
        top.setChildrenCollapsible(False)
        top.setSizes(list(SIZES))

        out_box = QGroupBox("Output")
        ol = QHBoxLayout(out_box)
        ol.addWidget(self.scope, 1)
        ol.addWidget(self.meter)
        vol = QVBoxLayout()
        vol.addWidget(QLabel("Vol"), 0, Qt.AlignmentFlag.AlignHCenter)
        vol.addWidget(self.volume, 1, Qt.AlignmentFlag.AlignHCenter)
        vol.addWidget(self.volume_label)
        ol.addLayout(vol)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(top, 5)
        lay.addWidget(out_box, 2)
        keys = QHBoxLayout()
        keys.setSpacing(4)
        keys.addWidget(self.bend)
        keys.addWidget(self.piano, 1)
        lay.addLayout(keys, 2)

    def replace_embedding(self, new: EmbeddingPanel) -> EmbeddingPanel:
        """Show ``new`` faders instead (a synth switch); returns the old panel, already detached."""
        old, self.embedding = self.embedding, new
        self.sound_layout.replaceWidget(old, new)
        old.setParent(None)
        QTimer.singleShot(0, self.fit_panels)  # these faders may need more room
        return old

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        super().resizeEvent(event)
        QTimer.singleShot(0, self.fit_panels)  # once the splitter has its new width

    def fit_panels(self) -> None:
        """Give the faders the width they need, from the instrument list first, then the pad, down to what those
        need themselves: the faders scroll only in a window too narrow for all three."""
        sizes = self.top_splitter.sizes()
        need = self.sound_box.minimumSizeHint().width() + 2 - sizes[1]
        for i, floor in ((0, PANEL_MIN[0]), (2, PANEL_MIN[1])):
            give = max(0, min(need, sizes[i] - floor))
            sizes[i], sizes[1], need = sizes[i] - give, sizes[1] + give, need - give
        if sizes != self.top_splitter.sizes():
            self.top_splitter.setSizes(sizes)
