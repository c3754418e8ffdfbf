"""Offline rendering of timed MIDI events: each event is applied at its frame, sample-accurately.

The engine renders synchronously meanwhile (its worker's pass runs inside ``render``): no threads, deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import mido
import numpy as np


def render_events(
    render: Callable[[int, np.ndarray], np.ndarray],
    handle: Callable[[mido.Message], None],
    events: Iterable[tuple[int, mido.Message]],
    total_frames: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``total_frames`` samples of ``render``, with each ``(frame, message)`` (sorted) handed to ``handle`` at its
    frame (frames past the end are applied at the end; the events are pulled lazily). ``progress(frames_done)``
    after each stretch rendered."""
    out = np.zeros(total_frames, np.float32)
    pos = 0
    for frame, msg in events:
        frame = min(max(int(frame), pos), total_frames)
        if frame > pos:
            render(frame - pos, out[pos:frame])
            pos = frame
            if progress is not None:
                progress(pos)
        handle(msg)
    if total_frames > pos:
        render(total_frames - pos, out[pos:])
        if progress is not None:
            progress(total_frames)
    return out
