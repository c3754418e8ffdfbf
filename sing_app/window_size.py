"""The window's first size, from the screen it opens on (no widgets here)."""

from __future__ import annotations

PREFERRED = (1400, 880)  # what the layout is drawn for
LARGEST = (1760, 1040)  # beyond this the faders and the pad only get emptier
FRAME = (16, 48)  # room for a window manager's borders and title bar


def initial_size(available_w: int, available_h: int) -> tuple[int, int, bool]:
    """(width, height, maximized) for a screen whose available area (without panels) is ``available_w`` x
    ``available_h`` logical pixels: the preferred size or 90 % of the screen, whichever is larger, within the
    largest; a screen too small for the preferred size gets the window maximized (every pixel counts)."""
    room_w, room_h = available_w - FRAME[0], available_h - FRAME[1]
    if room_w < PREFERRED[0] or room_h < PREFERRED[1]:
        return room_w, room_h, True
    w = min(max(PREFERRED[0], int(0.9 * available_w)), LARGEST[0], room_w)
    h = min(max(PREFERRED[1], int(0.9 * available_h)), LARGEST[1], room_h)
    return w, h, False
