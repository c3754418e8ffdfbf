"""The feeder thread: mixes the engine's output a few blocks ahead into the output ring.

The native callback only copies what is here; this thread does the Python work (``Engine.render``: events, voices,
resampling, mixing) with ``ahead`` blocks of slack, so a GUI repaint or a worker step that holds the GIL for a few
milliseconds delays the feeder, not the sound card. The ring's fill is the price: ``ahead`` blocks of output
latency on top of the device's.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from .output_ring import OutputRing

log = logging.getLogger(__name__)


class BlockFeeder:
    """Keeps ``ring`` filled to ``ahead_frames`` with ``render(frames, out)`` blocks of ``block`` frames."""

    def __init__(self, render, ring: OutputRing, block: int, ahead_frames: int):
        self._render = render
        self.ring = ring
        self.block = int(block)
        self.ahead_frames = max(self.block, int(ahead_frames))
        self._out = np.zeros(self.block, np.float32)
        self._running = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # first exception raised by render

    def fill(self) -> None:
        """Render until the ring holds ``ahead_frames`` (also before the stream starts)."""
        ring, out = self.ring, self._out
        while ring.fill() < self.ahead_frames and ring.space() >= self.block:
            try:
                self._render(self.block, out)
            except Exception as exc:  # never stop the sound: play silence and report once
                out[:] = 0.0
                if self.error is None:
                    self.error = exc
                    log.exception("engine.render failed in the feeder")
            ring.write(out)

    def _run(self) -> None:
        while self._running:
            self.fill()
            self.ring.wait(0.05)

    def start(self) -> None:
        if self._thread is not None:
            return
        self.fill()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="audio-feeder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self.ring.wake()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
