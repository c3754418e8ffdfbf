"""The computer keyboard is the instrument's: an application event filter routing keys to the piano.

Keys play the piano wherever the focus is in the window, except in a text field the player clicked (the
instrument filter, a name): there they type. Esc leaves the field, and so does a click anywhere else, so the
keyboard plays again at once. Other letters never reach lists and menus (their type-to-search would change the
sound); arrows, Tab, Enter, Space and digits keep their usual jobs.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from .piano import PianoWidget

MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier


def is_text_field(w: QObject | None) -> bool:
    """True for widgets where letters are typed: line edits (not a spin box's), editable combo boxes, text edits."""
    if not isinstance(w, QWidget):
        return False
    if isinstance(w, (QTextEdit, QPlainTextEdit)) or (isinstance(w, QComboBox) and w.isEditable()):
        return True
    if isinstance(w, QLineEdit):
        parent = w.parentWidget()
        return not isinstance(parent, QAbstractSpinBox)
    return False


def _within(w: QObject | None, ancestor: QWidget) -> bool:
    while isinstance(w, QWidget):
        if w is ancestor:
            return True
        w = w.parentWidget()
    return False


class KeyboardFocus(QObject):
    """Install on the application (``QApplication.instance().installEventFilter(focus)``) for ``window``."""

    def __init__(self, window: QWidget, piano: PianoWidget):
        super().__init__(window)
        self.window, self.piano = window, piano

    def leave_field(self) -> None:
        """Give the keyboard back to the piano (Esc in a field, a click elsewhere, Enter in the filter)."""
        self.piano.setFocus(Qt.FocusReason.OtherFocusReason)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt signature
        t = event.type()
        if t not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.ShortcutOverride,
                     QEvent.Type.MouseButtonPress):  # fmt: skip
            return False
        if not isinstance(obj, QWidget) or obj.window() is not self.window:
            return False
        focus = QApplication.focusWidget()
        typing = is_text_field(focus)
        if t == QEvent.Type.MouseButtonPress:
            if typing and not _within(obj, focus):
                self.leave_field()  # a widget that takes focus itself gets it right after this
            return False
        assert isinstance(event, QKeyEvent)
        if typing:
            if event.key() == Qt.Key.Key_Escape and not event.modifiers() & MODIFIERS:
                if t == QEvent.Type.ShortcutOverride:
                    event.accept()  # Esc leaves the field here instead of being the panic shortcut
                elif t == QEvent.Type.KeyPress:
                    self.leave_field()
                return True
            return False
        if t == QEvent.Type.ShortcutOverride or event.modifiers() & MODIFIERS:
            return False
        if t == QEvent.Type.KeyPress:
            played = self.piano.handle_key_press(event.key(), event.isAutoRepeat())
        else:
            played = self.piano.handle_key_release(event.key(), event.isAutoRepeat())
        if played:
            return True
        text = event.text()
        return bool(text) and text.isprintable() and not text.isspace() and not isinstance(focus, QAbstractSpinBox)
