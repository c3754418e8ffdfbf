"""The output ring: mixed blocks on their way from the feeder thread to the native audio callback.

One preallocated float32 buffer holds a 16-word int64 header and the samples, so the callback gets it all through
PortAudio's single ``userData`` pointer. Single producer (the feeder, Python) / single consumer (the callback,
compiled, never takes the GIL): the producer writes samples, then publishes ``write``; the consumer reads
``write``, copies, then publishes ``read``. Both positions only grow.

The header also holds what the callback counts (device underflows, late blocks, calls), the id of the thread it
runs in, and the pipe through which
it wakes the feeder after each block (a non-blocking one-byte write: the callback never waits).
"""

from __future__ import annotations

import contextlib
import os
import select

import numpy as np

HEADER_WORDS = 16
# header words (int64)
WRITE, READ, CAPACITY, CHANNELS, UNDERFLOWS, LATE, CALLBACKS, WAKE_FD, WAKE_BYTE, LATE_FRAMES, THREAD = range(11)
DATA = 2 * HEADER_WORDS  # first sample (float32 index)


class OutputRing:
    """``capacity`` mono samples; the callback copies each one to every one of ``channels``."""

    def __init__(self, capacity: int, channels: int = 1):
        self.capacity = int(capacity)
        self._mem = np.zeros(DATA + self.capacity, np.float32)
        self.header = self._mem[:DATA].view(np.int64)
        self.samples = self._mem[DATA:]
        self._byte = np.ones(1, np.uint8)  # what the callback writes into the pipe
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)  # the callback's write never blocks (a full pipe drops the byte)
        h = self.header
        h[CAPACITY], h[CHANNELS] = self.capacity, max(1, int(channels))
        h[WAKE_FD], h[WAKE_BYTE] = self._wfd, self._byte.ctypes.data

    @property
    def address(self) -> int:
        """The callback's ``userData``: the header's address (the samples follow it)."""
        return int(self._mem.ctypes.data)

    def fill(self) -> int:
        """Samples written and not yet played."""
        return int(self.header[WRITE] - self.header[READ])

    def space(self) -> int:
        return self.capacity - self.fill()

    def write(self, block: np.ndarray) -> None:
        """Producer: append ``block`` (the caller checked :meth:`space`), then publish it."""
        n = len(block)
        w = int(self.header[WRITE])
        i = w % self.capacity
        first = min(n, self.capacity - i)
        self.samples[i : i + first] = block[:first]
        if first < n:
            self.samples[: n - first] = block[first:]
        self.header[WRITE] = w + n

    def wait(self, timeout: float) -> None:
        """Producer: sleep (without the GIL) until the callback has played a block, or ``timeout`` seconds."""
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._rfd, 4096)

    def wake(self) -> None:
        """Wake a producer waiting in :meth:`wait` (e.g. to stop it)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wfd, b"\x01")

    def clear(self) -> None:
        """Forget unplayed samples (only while no callback runs)."""
        self.header[READ] = self.header[WRITE]

    @property
    def underflows(self) -> int:
        """Blocks the device flagged as an output underflow (the callback itself came too late)."""
        return int(self.header[UNDERFLOWS])

    @property
    def late_blocks(self) -> int:
        """Blocks the callback found incomplete in the ring (the feeder was late; the gap plays as silence)."""
        return int(self.header[LATE])

    @property
    def late_frames(self) -> int:
        return int(self.header[LATE_FRAMES])

    @property
    def callbacks(self) -> int:
        return int(self.header[CALLBACKS])

    @property
    def callback_thread(self) -> int:
        """The native id of the thread the callback runs in (0 until its first call)."""
        return int(self.header[THREAD])

    def close(self) -> None:
        """Close the wake pipe (only once the stream is closed)."""
        self.header[WAKE_FD] = -1
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._rfd = self._wfd = -1
