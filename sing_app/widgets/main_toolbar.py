"""The window's toolbar: the synth selector, Audio/MIDI, PANIC, Record, Preset, New instrument, Sustain, the
computer keys' velocity and octave. It only holds the actions and controls; the window connects them."""

from __future__ import annotations

from collections.abc import Iterable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QLabel, QMenu, QSpinBox, QToolBar, QToolButton, QWidget

from ..synths import SYNTHS, SynthKind


def menu_of(parent: QWidget, actions: Iterable[QAction | None]) -> QMenu:
    """A menu of ``actions`` (None: a separator)."""
    menu = QMenu(parent)
    for a in actions:
        menu.addSeparator() if a is None else menu.addAction(a)
    return menu


class MainToolBar(QToolBar):
    def __init__(self, parent: QWidget, synths: dict[str, SynthKind] = SYNTHS):
        super().__init__("Main", parent)
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addWidget(QLabel(" Synth "))
        self.synth_group = QActionGroup(self)
        self.synth_group.setExclusive(True)
        self.synth_actions: dict[str, QAction] = {}
        for key, kind in synths.items():
            act = self._action(kind.label, f"Play the {kind.label} synth", checkable=True)
            self.synth_group.addAction(act)
            self.addAction(act)
            self.widgetForAction(act).setStyleSheet(
                "QToolButton:checked { background: #3a7bd5; color: white; font-weight: bold; }"
            )
            self.synth_actions[key] = act
        self.addSeparator()
        self.act_settings = self._action(
            "Audio/MIDI…", "Audio output device, sample rate, block size, MIDI input and channel (Ctrl+,)", "Ctrl+,"
        )
        self.act_panic = self._action("PANIC", "All sound off (Esc)", QKeySequence(Qt.Key.Key_Escape))
        self.act_record = self._action(
            "● Record",
            "Record what you play to a WAV file in the recordings folder, named after the date and the sound "
            "(starts at once; the status bar shows the take)",
            checkable=True,
        )
        self.act_open_recordings = self._action("Open recordings folder", "Show the takes in the file manager")
        self.act_recordings_folder = self._action("Recordings folder…", "Choose where new takes go")
        self.act_save = self._action(
            "Save preset…", "Save the sound (its embedding) as a preset file (Ctrl+S)", QKeySequence.StandardKey.Save
        )
        self.act_load = self._action(
            "Load preset…", "Play a preset file's sound (Ctrl+O)", QKeySequence.StandardKey.Open
        )
        self.act_reset = self._action("Reset sound", "Back to the selected table instrument")
        self.act_presets = self._action("Preset", "Save, load or reset the sound")
        self.act_presets.setMenu(menu_of(parent, (self.act_save, self.act_load, None, self.act_reset)))
        self.act_new_instrument = self._action(
            "New instrument…", "A new instrument from your own samples (or drop files on the window)"
        )
        self.act_import_instrument = self._action("Import instrument…", "Import an instrument file (.nsinst)")
        self.act_new_instrument.setMenu(menu_of(parent, (self.act_import_instrument,)))
        self.act_sustain = self._action("Sustain", "Sustain pedal (CC64)", checkable=True)
        for a in (self.act_settings, None, self.act_panic, self.act_record, None, self.act_presets,
                  self.act_new_instrument, None, self.act_sustain):  # fmt: skip
            self.addSeparator() if a is None else self.addAction(a)
        # menu entries keep their shortcuts with the menus closed
        parent.addActions([self.act_save, self.act_load, self.act_reset, self.act_import_instrument])
        self.widgetForAction(self.act_panic).setStyleSheet(
            "QToolButton { background: #7a1f1f; color: white; font-weight: bold; padding: 3px 10px; }"
        )
        record = self.widgetForAction(self.act_record)
        record.setStyleSheet("QToolButton:checked { background: #b3261e; }")
        record.setMenu(menu_of(parent, (self.act_open_recordings, self.act_recordings_folder)))
        record.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.widgetForAction(self.act_presets).setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.widgetForAction(self.act_new_instrument).setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.addSeparator()
        self.velocity_spin = QSpinBox()
        self.velocity_spin.setRange(1, 127)
        self.velocity_spin.setToolTip("Velocity of computer-key notes (C / V)")
        velocity_label = QLabel(" Velocity ")
        velocity_label.setToolTip(self.velocity_spin.toolTip())
        self.addWidget(velocity_label)
        self.addWidget(self.velocity_spin)
        self.octave_label = QLabel()
        self.octave_label.setToolTip("The notes the computer keys A … ' play now; Z / X shift them an octave")
        self.addWidget(self.octave_label)

    def _action(self, text: str, tip: str, shortcut=None, checkable: bool = False) -> QAction:  # noqa: ANN001
        act = QAction(text, self.parent())
        act.setToolTip(tip)
        act.setCheckable(checkable)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        return act

    def show_recording(self, on: bool) -> None:
        """The Record button as a take runs (■ Stop) or not, without triggering it."""
        self.act_record.blockSignals(True)
        self.act_record.setChecked(on)
        self.act_record.blockSignals(False)
        self.act_record.setText("■ Stop" if on else "● Record")
