"""The audio callback, compiled: PortAudio calls it directly, without Python and without the GIL.

It does one small bounded thing: copy the next block of the :class:`~.output_ring.OutputRing` to the device (mono
to every channel), fill what is missing with silence and count it, count the device's underflow flag, note its
thread's id once (for :mod:`.thread_priority`), and wake the feeder through the ring's pipe. Nothing a Python
thread does (the GUI's repaint, the model worker) can delay it. numba compiles it when this module is first
imported (a few seconds, cached on disk after that): import it lazily, through :func:`callback_address`.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types

from .output_ring import (
    CALLBACKS,
    CAPACITY,
    CHANNELS,
    DATA,
    HEADER_WORDS,
    LATE,
    LATE_FRAMES,
    READ,
    THREAD,
    UNDERFLOWS,
    WAKE_BYTE,
    WAKE_FD,
    WRITE,
)

PA_OUTPUT_UNDERFLOW = 4  # PaStreamCallbackFlags bit
PA_CONTINUE = 0

# the C library's write(fd, buf, n), the buffer's address passed as an integer (the same calling convention)
_c_write = types.ExternalFunction("write", types.int64(types.int32, types.uint64, types.uint64))
_c_gettid = types.ExternalFunction("gettid", types.int32())  # glibc >= 2.30
_SIGNATURE = types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64, types.voidptr)


@cfunc(_SIGNATURE, nopython=True, cache=True)
def pa_callback(input_, output, frames, time_info, status, user):  # noqa: ARG001 - PortAudio's signature
    header = carray(user, (HEADER_WORDS,), np.int64)
    capacity, channels = header[CAPACITY], header[CHANNELS]
    samples = carray(user, (DATA + capacity,), np.float32)
    out = carray(output, (frames * channels,), np.float32)
    read = header[READ]
    n = min(header[WRITE] - read, frames)
    for i in range(n):
        x = samples[DATA + (read + i) % capacity]
        for c in range(channels):
            out[i * channels + c] = x
    for j in range(n * channels, frames * channels):
        out[j] = 0.0
    header[READ] = read + n
    if n < frames:
        header[LATE] += 1
        header[LATE_FRAMES] += frames - n
    if status & PA_OUTPUT_UNDERFLOW:
        header[UNDERFLOWS] += 1
    header[CALLBACKS] += 1
    if header[THREAD] == 0:  # once: the thread the device calls from, for the output to make real-time
        header[THREAD] = _c_gettid()
    _c_write(header[WAKE_FD], header[WAKE_BYTE], 1)
    return PA_CONTINUE
