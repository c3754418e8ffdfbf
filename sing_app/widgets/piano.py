"""On-screen piano: mouse (press / drag / release) and computer-keyboard play, note highlighting.

Emits ``noteOn(note, velocity)`` / ``noteOff(note)``; knows nothing of the engine. Notes sounding from
elsewhere (MIDI) are shown with :meth:`PianoWidget.set_external_note`.

Computer keys (two rows, as in most DAWs): ``A W S E D F T G Y H U J K O L P ; '`` play C..F of the
current octave and the next; ``Z`` / ``X`` shift the octave down / up; ``C`` / ``V`` lower / raise the
key velocity.
"""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QKeyEvent, QLinearGradient, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
BLACK_PCS = frozenset({1, 3, 6, 8, 10})

K = Qt.Key
# semitone offset from the current base C
KEY_OFFSETS: dict[int, int] = {
    K.Key_A: 0, K.Key_W: 1, K.Key_S: 2, K.Key_E: 3, K.Key_D: 4, K.Key_F: 5, K.Key_T: 6, K.Key_G: 7,
    K.Key_Y: 8, K.Key_H: 9, K.Key_U: 10, K.Key_J: 11, K.Key_K: 12, K.Key_O: 13, K.Key_L: 14, K.Key_P: 15,
    K.Key_Semicolon: 16, K.Key_Apostrophe: 17,
}  # fmt: skip
KEY_LABELS = {K.Key_Semicolon: ";", K.Key_Apostrophe: "'"}
OCTAVE_DOWN, OCTAVE_UP = K.Key_Z, K.Key_X
VELOCITY_DOWN, VELOCITY_UP = K.Key_C, K.Key_V
VELOCITY_STEP = 16


def note_name(note: int) -> str:
    """MIDI note number to a name with octave, middle C (60) = C4."""
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def is_black(note: int) -> bool:
    return note % 12 in BLACK_PCS


class PianoWidget(QWidget):
    noteOn = pyqtSignal(int, int)
    noteOff = pyqtSignal(int)
    octaveChanged = pyqtSignal(int)  # new base note of the computer-key rows
    velocityChanged = pyqtSignal(int)

    def __init__(self, lowest: int = 36, highest: int = 96, parent: QWidget | None = None):
        super().__init__(parent)
        if is_black(lowest) or is_black(highest) or highest <= lowest:
            raise ValueError("piano range must start and end on white keys")
        self.lowest, self.highest = lowest, highest
        self._base = 60
        self._velocity = 100
        self._mouse_note: int | None = None
        self._key_notes: dict[int, int] = {}  # Qt key -> note it started
        self._external: dict[int, int] = {}  # note -> count of external holders (MIDI)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(520, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(False)
        self.setToolTip(
            "Click / drag to play (lower on a key = louder).\n"
            "Computer keys: A W S E D F T G Y H U J K O L P ; '\nZ / X octave down / up, C / V velocity"
        )

    # ----- state -----------------------------------------------------------------------------------
    @property
    def base_note(self) -> int:
        return self._base

    def set_base_note(self, note: int) -> None:
        note = max(0, min(120, int(note) - int(note) % 12))
        if note != self._base:
            self._base = note
            self.octaveChanged.emit(note)
            self.update()

    def shift_octave(self, octaves: int) -> None:
        self.set_base_note(self._base + 12 * octaves)

    @property
    def velocity(self) -> int:
        return self._velocity

    def set_velocity(self, velocity: int) -> None:
        velocity = max(1, min(127, int(velocity)))
        if velocity != self._velocity:
            self._velocity = velocity
            self.velocityChanged.emit(velocity)

    def active_notes(self) -> set[int]:
        """Notes shown pressed: mouse, computer keys and external (MIDI) notes."""
        notes = set(self._key_notes.values()) | set(self._external)
        if self._mouse_note is not None:
            notes.add(self._mouse_note)
        return notes

    def set_external_note(self, note: int, on: bool) -> None:
        if on:
            self._external[note] = self._external.get(note, 0) + 1
        elif note in self._external:
            self._external[note] -= 1
            if self._external[note] <= 0:
                del self._external[note]
        self.update()

    def clear_external_notes(self) -> None:
        self._external.clear()
        self.update()

    def release_all(self) -> None:
        """Send note-off for every note this widget holds (focus loss, panic)."""
        if self._mouse_note is not None:
            self.noteOff.emit(self._mouse_note)
            self._mouse_note = None
        for note in set(self._key_notes.values()):
            self.noteOff.emit(note)
        self._key_notes.clear()
        self.update()

    # ----- geometry --------------------------------------------------------------------------------
    def _white_notes(self) -> list[int]:
        return [n for n in range(self.lowest, self.highest + 1) if not is_black(n)]

    def _keys_rect(self) -> QRectF:
        return QRectF(0.0, 14.0, float(self.width()), float(self.height()) - 15.0)

    def key_rect(self, note: int) -> QRectF:
        """Rectangle of ``note``'s key in widget coordinates."""
        area = self._keys_rect()
        whites = self._white_notes()
        ww = area.width() / len(whites)
        if not is_black(note):
            i = whites.index(note)
            return QRectF(area.left() + i * ww, area.top(), ww, area.height())
        i = whites.index(note - 1)
        bw = ww * 0.62
        return QRectF(area.left() + (i + 1) * ww - bw / 2, area.top(), bw, area.height() * 0.62)

    def note_at(self, pos: QPointF) -> int | None:
        for note in range(self.lowest, self.highest + 1):
            if is_black(note) and self.key_rect(note).contains(pos):
                return note
        for note in self._white_notes():
            if self.key_rect(note).contains(pos):
                return note
        return None

    def velocity_at(self, note: int, pos: QPointF) -> int:
        """Velocity from the vertical click position: top of the key is soft, the front edge loud."""
        r = self.key_rect(note)
        frac = (pos.y() - r.top()) / max(r.height(), 1.0)
        return max(1, min(127, round(20 + 107 * min(max(frac, 0.0), 1.0))))

    # ----- mouse -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self._mouse_to(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._mouse_to(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._mouse_note is not None:
            note, self._mouse_note = self._mouse_note, None
            self.noteOff.emit(note)
            self.update()

    def _mouse_to(self, pos: QPointF) -> None:
        note = self.note_at(pos)
        if note == self._mouse_note:
            return
        if self._mouse_note is not None:
            self.noteOff.emit(self._mouse_note)
        self._mouse_note = note
        if note is not None:
            self.noteOn.emit(note, self.velocity_at(note, pos))
        self.update()

    # ----- computer keyboard -----------------------------------------------------------------------
    def handle_key_press(self, key: int, autorepeat: bool = False) -> bool:
        """Play / shift for a computer key; returns True when the key belongs to the piano."""
        if key in KEY_OFFSETS:
            if not autorepeat and key not in self._key_notes:
                note = self._base + KEY_OFFSETS[key]
                if 0 <= note <= 127:
                    self._key_notes[key] = note
                    self.noteOn.emit(note, self._velocity)
                    self.update()
            return True
        if autorepeat:
            return key in (OCTAVE_DOWN, OCTAVE_UP, VELOCITY_DOWN, VELOCITY_UP)
        if key == OCTAVE_DOWN:
            self.shift_octave(-1)
        elif key == OCTAVE_UP:
            self.shift_octave(+1)
        elif key == VELOCITY_DOWN:
            self.set_velocity(self._velocity - VELOCITY_STEP)
        elif key == VELOCITY_UP:
            self.set_velocity(self._velocity + VELOCITY_STEP)
        else:
            return False
        return True

    def handle_key_release(self, key: int, autorepeat: bool = False) -> bool:
        if key not in KEY_OFFSETS:
            return key in (OCTAVE_DOWN, OCTAVE_UP, VELOCITY_DOWN, VELOCITY_UP)
        if not autorepeat and key in self._key_notes:
            note = self._key_notes.pop(key)
            if note not in self._key_notes.values():
                self.noteOff.emit(note)
            self.update()
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.handle_key_press(event.key(), event.isAutoRepeat()):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if not self.handle_key_release(event.key(), event.isAutoRepeat()):
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        # keys released while another widget has focus would leave notes hanging
        for key in list(self._key_notes):
            self.handle_key_release(key)
        super().focusOutEvent(event)

    # ----- painting --------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        active = self.active_notes()
        hot = QColor("#ff9f1c")
        area = self._keys_rect()
        p.fillRect(self.rect(), QColor("#1b1d22"))
        # computer-key range marker
        lo = self.key_rect(max(self._base, self.lowest)) if self._base <= self.highest else None
        hi_note = min(self._base + 17, self.highest)
        if lo is not None and hi_note >= self.lowest and self._base + 17 >= self.lowest:
            hi = self.key_rect(hi_note if not is_black(hi_note) else hi_note - 1)
            p.fillRect(QRectF(lo.left(), 3, hi.right() - lo.left(), 6), QColor("#3a7bd5"))
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.75))
        p.setFont(small)
        key_letters = self._key_letters()
        for note in self._white_notes():
            r = self.key_rect(note)
            if note in active:
                p.fillRect(r, hot)
            else:
                g = QLinearGradient(r.topLeft(), r.bottomLeft())
                g.setColorAt(0.0, QColor("#d8d8d8"))
                g.setColorAt(0.85, QColor("#fbfbfb"))
                g.setColorAt(1.0, QColor("#c9c9c9"))
                p.fillRect(r, g)
            p.setPen(QPen(QColor("#444"), 1))
            p.drawRect(r)
            if note % 12 == 0:
                _draw_label(p, r, note_name(note), "#555", 4)
            if note in key_letters:
                _draw_label(p, r, key_letters[note], "#3a7bd5", 18)
        for note in range(self.lowest, self.highest + 1):
            if not is_black(note):
                continue
            r = self.key_rect(note)
            if note in active:
                p.fillRect(r, hot.darker(115))
            else:
                g = QLinearGradient(r.topLeft(), r.bottomLeft())
                g.setColorAt(0.0, QColor("#111"))
                g.setColorAt(1.0, QColor("#3b3b3b"))
                p.fillRect(r, g)
            p.setPen(QPen(QColor("#000"), 1))
            p.drawRect(r)
            if note in key_letters:
                _draw_label(p, r, key_letters[note], "#8fb8ff", 3)
        p.fillRect(QRectF(area.left(), area.top(), area.width(), 3), QColor("#7a1f1f"))
        p.end()

    def _key_letters(self) -> dict[int, str]:
        out = {}
        for key, off in KEY_OFFSETS.items():
            note = self._base + off
            if self.lowest <= note <= self.highest:
                out[note] = KEY_LABELS.get(key, chr(key) if 32 < key < 127 else "")
        return out


def _draw_label(p: QPainter, key: QRectF, text: str, colour: str, bottom_inset: int) -> None:
    """Centred text near the bottom of a key."""
    p.setPen(QColor(colour))
    p.drawText(
        key.adjusted(0, 0, 0, -bottom_inset),
        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
        text,
    )
