"""MPE in the window: the toggle (a menu on the Audio/MIDI button, kept in the app's settings) and the slide
direction the morph pad gives new MPE notes.

With MPE on, every MIDI channel but the first is a note of its own (the lower zone; a controller's MPE Configuration
Message may set other zones): its pitch bend, pressure and CC74 slide reach only that note. A slide moves the note
from the pad's puck toward the pad's upper edge (CC74 127; 0: toward the lower edge), straight up or down from
where the puck is, whatever corners the pad has.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject, QSettings
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QMenu, QToolBar, QToolButton, QWidget

from synth_core.engine import Engine

from .xy_pad import MorphPanel, bilinear_blend

SETTING = "midi/mpe"
TIP = (
    "MPE (MIDI Polyphonic Expression) for a LinnStrument, Seaboard, Osmose …: each note on a channel of its own "
    "(2–16) bends, swells with pressure and slides (CC74) on its own; a slide moves the note from the morph pad's "
    "puck toward the pad's upper edge (down: toward the lower edge). A controller's MPE Configuration Message "
    "switches it on by itself"
)


def slide_direction(corners: np.ndarray, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """What a slide of +1 / -1 adds to the pad's vector at (x, y): the way to the upper edge (y = 0) above the
    puck, and to the lower edge (y = 1) below it."""
    here = bilinear_blend(corners, x, y)
    return bilinear_blend(corners, x, 0.0) - here, bilinear_blend(corners, x, 1.0) - here


class MpeViewModel(QObject):
    """MPE on or off for the window's engine (each new one too) and the morph pad's slide direction."""

    def __init__(self, settings: QSettings | None, morph: MorphPanel, engine: Engine, parent: QWidget | None = None):
        super().__init__(parent)
        self._settings = settings
        self._morph = morph
        self._engine: Engine | None = None
        on = bool(settings is not None and settings.value(SETTING, False, type=bool))
        self.action = QAction("MPE (MIDI Polyphonic Expression)", parent)
        self.action.setCheckable(True)
        self.action.setChecked(on)
        self.action.setToolTip(TIP)
        self.action.toggled.connect(self.set_on)
        self.menu = QMenu(parent)
        self.menu.setToolTipsVisible(True)
        self.menu.addAction(self.action)
        self.menu.aboutToShow.connect(self.sync)
        morph.vectorChanged.connect(lambda _vec: self._show_direction())
        self.bind(engine)

    @property
    def on(self) -> bool:
        return self.action.isChecked()

    def attach(self, toolbar: QToolBar, action: QAction) -> None:
        """Show the toggle as the menu of ``action``'s toolbar button (its arrow)."""
        button = toolbar.widgetForAction(action)
        if isinstance(button, QToolButton):
            button.setMenu(self.menu)
            button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)

    def bind(self, engine: Engine) -> None:
        """Play ``engine`` (a synth switch): it gets the zones the last one had (a controller's configuration
        message included) or, for the first, the setting's; and the pad's slide direction."""
        old, self._engine = self._engine, engine
        if old is not None and old.mpe == self.on:
            engine.set_mpe_zones(*old.mpe_zones)
        else:
            engine.set_mpe(self.on)
        self._show_direction()

    def set_on(self, on: bool) -> None:
        """Switch MPE on (every channel but the first a note's own) or off, and keep the choice."""
        if self._engine is not None and self._engine.mpe != on:
            self._engine.set_mpe(on)
        if self._settings is not None:
            self._settings.setValue(SETTING, bool(on))
        if self.action.isChecked() != on:
            self.action.setChecked(on)

    def sync(self) -> None:
        """Show what the engine plays (a controller's configuration message may have switched MPE)."""
        if self._engine is not None:
            self.action.blockSignals(True)
            self.action.setChecked(self._engine.mpe)
            self.action.blockSignals(False)

    def _show_direction(self) -> None:
        morph, engine = self._morph, self._engine
        if engine is None:
            return
        if min(morph.corner_indices()) < 0:  # no instruments on the pad
            engine.set_slide_direction(None)
            return
        engine.set_slide_direction(*slide_direction(morph.corner_vectors(), *morph.pad.position()))
