"""Recording the engine's output to a WAV file (float32, mono) on a writer thread of its own.

The audio side only appends a copy of each block to a deque (:meth:`Recorder.push`); the writer thread drains it
into the file, so the audio side never touches the disk.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import soundfile as sf


class Recorder:
    def __init__(self):
        self.active = False  # a take is being written (the audio side pushes its blocks)
        self._queue: deque[np.ndarray] = deque()
        self._thread: threading.Thread | None = None
        self._path: Path | None = None

    def start(self, path, sample_rate: int) -> None:
        """Write every block pushed from now on to ``path`` until :meth:`stop` (a take already running stops)."""
        self.stop()
        self._path = Path(path)
        self._queue.clear()
        f = sf.SoundFile(self._path, "w", samplerate=sample_rate, channels=1, subtype="FLOAT")
        self.active = True

        def writer() -> None:
            with f:
                while self.active or self._queue:
                    if self._queue:
                        f.write(self._queue.popleft())
                    else:
                        time.sleep(0.02)

        self._thread = threading.Thread(target=writer, name="engine-recorder", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        """Audio side: queue a copy of ``block`` if a take is running (never blocks)."""
        if self.active:
            self._queue.append(block.copy())

    def stop(self) -> Path | None:
        """Finish the take (everything pushed is written); its path, or None if none was running."""
        if self._thread is None:
            return None
        self.active = False
        self._thread.join()
        self._thread = None
        path, self._path = self._path, None
        return path
