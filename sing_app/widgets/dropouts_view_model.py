"""Status-bar state for dropouts: where each audible gap came from, counted apart."""

from __future__ import annotations

from dataclasses import dataclass

RED_S = 2.0  # the field stays red this long after a new dropout


@dataclass
class DropoutsViewModel:
    """Engine underruns (a voice had no model samples), late blocks (the feeder had not mixed in time) and device
    underflows (the sound card's callback itself came late: a JACK xrun), since the audio was opened."""

    engine: int = 0
    late: int = 0
    device: int = 0
    _changed_at: float = -1e9

    def update(self, engine: int, late: int, device: int, now: float) -> None:
        if (engine, late, device) != (self.engine, self.late, self.device) and engine + late + device > 0:
            self._changed_at = now
        self.engine, self.late, self.device = engine, late, device

    def reset(self) -> None:
        self.engine = self.late = self.device = 0
        self._changed_at = -1e9

    @property
    def total(self) -> int:
        return self.engine + self.late + self.device

    def text(self) -> str:
        return f"dropouts {self.engine} · {self.late} · {self.device}"

    def tooltip(self) -> str:
        return (
            f"Audible gaps since the audio was opened:\n{self.engine} engine underruns (the model was late for a "
            f"voice)\n{self.late} late blocks (the mixer was late)\n{self.device} device underflows (the sound "
            "card's callback came late: a JACK xrun)"
        )

    def red(self, now: float) -> bool:
        return now - self._changed_at < RED_S
