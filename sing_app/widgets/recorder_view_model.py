"""Recording state: Record starts a take at once into an auto-named file in the recordings folder (no dialog).

The folder (``recordings.default_recordings_dir``, or the one the player chose, kept in the app's settings file)
is created as needed; the status bar shows the take (``status()``) with an "Open folder" button.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QObject, QSettings, QStandardPaths, QUrl, pyqtSignal
from PyQt6.QtGui import QDesktopServices

from ..recordings import default_recordings_dir, take_path

KEY = "recordings/folder"


def music_folder() -> Path | None:
    path = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MusicLocation)
    return Path(path) if path else None


class RecorderViewModel(QObject):
    """``changed`` fires when a take starts or stops, or the folder changes."""

    changed = pyqtSignal()

    def __init__(
        self,
        settings: QSettings | None = None,
        folder: str | Path | None = None,
        open_url: Callable[[QUrl], object] = QDesktopServices.openUrl,
        clock: Callable[[], datetime] = datetime.now,
        parent: QObject | None = None,
    ):
        """``folder``: use it for this session (e.g. ``--recordings``), else the saved one, else the default."""
        super().__init__(parent)
        self._settings, self._open_url, self._clock = settings, open_url, clock
        saved = settings.value(KEY, "", str) if settings is not None else ""
        self.folder = Path(folder or saved or default_recordings_dir(music_folder())).expanduser()
        self.path: Path | None = None  # the take being written
        self.last: Path | None = None  # the last take finished
        self._started = 0.0

    @property
    def recording(self) -> bool:
        return self.path is not None

    def set_folder(self, folder: str | Path) -> None:
        """Takes go to ``folder`` from now on (saved for the next sessions)."""
        self.folder = Path(folder).expanduser()
        if self._settings is not None:
            self._settings.setValue(KEY, str(self.folder))
            self._settings.sync()
        self.changed.emit()

    def next_path(self, sound: str) -> Path:
        """The file a take of ``sound`` started now would get (the folder is created)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return take_path(self.folder, sound, self._clock())

    def start(self, engine, sound: str) -> Path:
        """Start a take of the engine's output named after ``sound``; OSError when the folder cannot be made."""
        return self.start_to(engine, self.next_path(sound))

    def start_to(self, engine, path: str | Path) -> Path:
        path = Path(path)
        if self.path is not None:
            self.stop(engine)
        engine.start_recording(path)
        self.path, self._started = path, time.monotonic()
        self.changed.emit()
        return path

    def stop(self, engine) -> Path | None:
        """Finish the take; its path (None when none was running)."""
        if self.path is None:
            return None
        done = engine.stop_recording() or self.path
        self.path, self.last = None, Path(done)
        self.changed.emit()
        return self.last

    def status(self) -> tuple[str, str, bool]:
        """(text, tooltip, recording) for the status bar; ("", "", False) before the first take."""
        if self.path is not None:
            secs = int(time.monotonic() - self._started)
            return (f"● REC {secs // 60}:{secs % 60:02d}  {self.path.name}", f"Recording to {self.path}", True)
        if self.last is not None:
            return f"Saved: {self.last.name}", f"Last take: {self.last}", False
        return "", "", False

    def open_folder(self) -> None:
        """Show the recordings folder in the file manager (created if needed)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._open_url(QUrl.fromLocalFile(str(self.folder)))
