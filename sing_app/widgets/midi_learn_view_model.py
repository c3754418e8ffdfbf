"""MIDI learn: right-click a fader (or the morph pad for its axes) -> "MIDI learn" -> move a knob.

Controls register a setter taking 0..1 and, optionally, the QSlider and QLabel that show them; the mapping is
shown on the control (tooltip and caption) and saved in a :class:`~sing_app.midi_map.MidiMap`. Messages are
handled on the GUI thread (the window forwards a copy of each MIDI message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mido
from PyQt6.QtCore import QObject, QPoint, Qt, pyqtSignal
from PyQt6.QtWidgets import QLabel, QMenu, QSlider, QWidget

from ..midi_map import MidiMap


@dataclass
class LearnTarget:
    name: str  # shown to the user
    set_value: Callable[[float], None]  # 0..1
    slider: QSlider | None = None
    label: QLabel | None = None
    caption: str = ""  # the label's text without the mapping
    sep: str = "\n"  # between the caption and the mapping (a one-line caption: " · ")


def slider_setter(slider: QSlider) -> Callable[[float], None]:
    """Moves ``slider`` as a hand would (its valueChanged drives the sound)."""
    return lambda v: slider.setValue(round(slider.minimum() + v * (slider.maximum() - slider.minimum())))


class MidiLearnViewModel(QObject):
    changed = pyqtSignal()
    message = pyqtSignal(str)

    def __init__(self, midi_map: MidiMap, parent: QObject | None = None):
        super().__init__(parent)
        self.map = midi_map
        self.targets: dict[str, LearnTarget] = {}
        self.learning: str | None = None

    # ---------------------------------------------------------------- registration
    def register_slider(
        self, control: str, name: str, slider: QSlider, label: QLabel | None = None, sep: str = "\n"
    ) -> None:
        """A slider the user can map; right-clicking it offers MIDI learn. ``label`` shows the mapping after its
        caption and ``sep``."""
        caption = label.text() if label is not None else ""
        target = LearnTarget(name, slider_setter(slider), slider, label, caption, sep)
        self.targets[control] = target
        slider.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        slider.customContextMenuRequested.connect(lambda pos, c=control: self.show_menu([c], slider, pos))
        self._show(control)

    def register(self, control: str, name: str, set_value: Callable[[float], None]) -> None:
        """A control without a slider (e.g. a pad axis); its widget calls :meth:`show_menu`."""
        self.targets[control] = LearnTarget(name, set_value)

    def unregister_prefix(self, prefix: str) -> None:
        """Drop the targets of a panel being replaced (their bindings stay for its successor)."""
        for control in [c for c in self.targets if c.startswith(prefix)]:
            del self.targets[control]

    # ---------------------------------------------------------------- actions
    def learn(self, control: str) -> None:
        """The next controller moved is bound to ``control``."""
        self.learning = control
        self.message.emit(f"MIDI learn: move a knob or fader for '{self.targets[control].name}'")

    def forget(self, control: str) -> None:
        self.map.forget(control)
        self._show(control)
        self.changed.emit()

    def handle(self, msg: mido.Message) -> list[str]:
        """Apply a control change: bind it while learning, else move the controls it is bound to."""
        if msg.type != "control_change":
            return []
        if self.learning is not None:
            control, self.learning = self.learning, None
            bound = self.map.controls_for(msg.channel, msg.control)
            previous = [c for c in self.targets if c != control and c in bound]
            self.map.bind(control, msg.channel, msg.control)
            for c in (*previous, control):
                self._show(c)
            self.message.emit(f"'{self.targets[control].name}' follows {MidiMap.describe(self.map.bindings[control])}")
            self.changed.emit()
            return [control]
        moved = [c for c in self.map.controls_for(msg.channel, msg.control) if c in self.targets]
        for control in moved:
            self.targets[control].set_value(msg.value / 127.0)
        return moved

    def binding_text(self, control: str) -> str:
        b = self.map.bindings.get(control)
        return MidiMap.describe(b) if b else ""

    def show_menu(self, controls: list[str], widget: QWidget, pos: QPoint) -> QMenu:
        menu = QMenu(widget)
        for control in controls:
            name = self.targets[control].name
            menu.addAction(f"MIDI learn: {name}", lambda c=control: self.learn(c))
            if self.binding_text(control):
                menu.addAction(f"Forget {self.binding_text(control)} ({name})", lambda c=control: self.forget(c))
        menu.popup(widget.mapToGlobal(pos))
        return menu

    def _show(self, control: str) -> None:
        target = self.targets.get(control)
        if target is None:
            return
        text = self.binding_text(control)
        for w in (target.slider, target.label):
            if w is not None:
                tip = w.toolTip().split("MIDI: ")[0].rstrip("\n")
                midi = f"MIDI: {text}" if text else ""
                w.setToolTip("\n".join(t for t in (tip, midi) if t))
        if target.label is not None:
            target.label.setText(f"{target.caption}{target.sep}{text}" if text else target.caption)
