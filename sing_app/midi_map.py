"""MIDI learn mappings: which controller (channel + CC number) moves which control of the window.

Control ids are strings ("volume", "embed.3", "timbre.1", "voice.glide_s", "morph.x" ...). A binding's channel
is 0..15, or None for any channel (the default: the mod wheel, CC1, sweeps the morph pad's X axis). Saved as
JSON (atomically); a damaged file is reported and the defaults are used.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from synth_core.atomic_file import atomic_write_text

log = logging.getLogger(__name__)
DEFAULTS: dict[str, tuple[int | None, int]] = {"morph.x": (None, 1)}


class MidiMap:
    def __init__(self, path: str | Path | None = None, defaults: dict[str, tuple[int | None, int]] | None = None):
        self.path = Path(path) if path else None
        self.bindings: dict[str, tuple[int | None, int]] = dict(DEFAULTS if defaults is None else defaults)
        self.problem = ""
        if self.path is not None and self.path.is_file():
            self._load()

    def bind(self, control: str, channel: int | None, cc: int) -> None:
        """``control`` follows CC ``cc`` on ``channel``; whatever that controller moved before is unbound."""
        for other, key in list(self.bindings.items()):
            if key == (channel, cc) or (key[1] == cc and None in (key[0], channel)):
                del self.bindings[other]
        self.bindings[control] = (channel, int(cc))
        self.save()

    def forget(self, control: str) -> None:
        self.bindings.pop(control, None)
        self.save()

    def controls_for(self, channel: int, cc: int) -> list[str]:
        return [c for c, (ch, n) in self.bindings.items() if n == cc and ch in (None, channel)]

    @staticmethod
    def describe(binding: tuple[int | None, int]) -> str:
        ch, cc = binding
        return f"CC{cc}" + ("" if ch is None else f" ch{ch + 1}")

    def save(self) -> None:
        if self.path is None:
            return
        data = {"version": 1, "bindings": {c: {"channel": ch, "cc": cc} for c, (ch, cc) in self.bindings.items()}}
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            bindings = {}
            for control, b in data["bindings"].items():
                ch, cc = b["channel"], int(b["cc"])
                if not 0 <= cc <= 127 or (ch is not None and not 0 <= int(ch) <= 15):
                    raise ValueError(f"{control}: channel {ch} / CC {cc} out of range")
                bindings[str(control)] = (None if ch is None else int(ch), cc)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.problem = f"{self.path}: damaged MIDI map ({exc}); using the defaults"
            log.warning("%s", self.problem)
            return
        self.bindings = bindings
