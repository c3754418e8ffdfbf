"""Where takes go and what they are called: ``<folder>/2026-12-02 22-10-05 Acoustic Grand Piano.wav`` (no Qt).

The folder is ``$NEUROSYNTH_RECORDINGS`` or the user's Music folder's ``NeuroSynth`` (``~/Music/NeuroSynth``);
it is created when the first take starts.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

ENV = "NEUROSYNTH_RECORDINGS"
MAX_NAME = 80
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def default_recordings_dir(music: str | os.PathLike | None = None) -> Path:
    """``$NEUROSYNTH_RECORDINGS``, else ``<music>/NeuroSynth`` (``music``: the Music folder, default ~/Music)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    return Path(music or Path.home() / "Music") / "NeuroSynth"


def safe_name(text: str) -> str:
    """``text`` as a file-name part on every system: no separators or reserved characters, at most 80 chars."""
    name = " ".join(_UNSAFE.sub(" ", text).split()).strip(". ")
    return name[:MAX_NAME].rstrip(". ") or "take"


def take_path(folder: str | os.PathLike, sound: str, when: datetime | None = None) -> Path:
    """A new file name in ``folder`` for a take of ``sound`` started ``when`` (now): the date and time, then the
    sound; `` (2)``, `` (3)`` … when that name is taken."""
    when = when or datetime.now()
    stem = f"{when:%Y-%m-%d %H-%M-%S} {safe_name(sound)}"
    folder = Path(folder)
    path, n = folder / f"{stem}.wav", 2
    while path.exists():
        path, n = folder / f"{stem} ({n}).wav", n + 1
    return path
