"""The audio callback, compiled: PortAudio calls it directly, without Python and without the GIL.

It does one small bounded thing: copy the next block of the :class:`~.output_ring.OutputRing` to the device (mono
to every channel), fill what is missing with silence and count it, count the device's underflow flag, note its
thread's id once (for :mod:`.thread_priority`; where the C library has gettid), and wake the feeder through the
ring's pipe. Nothing a Python thread does (the GUI's repaint, the model worker) can delay it. numba compiles it
when this module is first imported (a few seconds, cached on disk after that): import it lazily (as
:class:`~.audio_output.AudioOutput` does).
"""

from __future__ import annotations

import ctypes

import numpy as np
from numba import carray, cfunc, njit, types

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


# gettid() (Linux, glibc >= 2.30): a missing symbol would compile and crash at the first call, so look first
def _has_symbol(name: str) -> bool:
    try:
        return hasattr(ctypes.CDLL(None), name)
    except (OSError, TypeError):  # no process-wide symbol table (Windows)
        return False


NOTES_THREAD = _has_symbol("gettid")
if NOTES_THREAD:
    _thread_id = types.ExternalFunction("gettid", types.int32())
else:

    @njit(cache=True)
    def _thread_id():  # no gettid here: the thread stays unknown (0)
        return 0


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
        header[THREAD] = _thread_id()
    _c_write(header[WAKE_FD], header[WAKE_BYTE], 1)
    return PA_CONTINUE
