"""Mono mode (audio side): one line per channel, last-note priority, legato.

A new key while the line sounds moves it there without a new attack: the old voice crossfades in ``steal_fade_s``
into a new one that glides from the old pitch (for ``supports_glide`` sources). Releasing the line's key goes back
to the most recent key still held. Switching mono on makes each channel's newest held voice its line (the other
held keys become keys it returns to); switching it off leaves every voice to its own note-off.
"""

from __future__ import annotations

from .note_ticket import NoteTicket
from .voice import FREE, Voice
from .voice_allocator import VoiceAllocator


class MonoMode:
    def __init__(self, voices: VoiceAllocator, glides: bool, on: bool):
        self._voices = voices
        self._glides = glides
        self.on = on  # the audio side's mode
        self.clear()

    def clear(self, ch: int | None = None) -> None:
        """Forget the held keys (of ``ch``, or of every channel)."""
        if ch is None:
            self.held_keys: list[list[tuple[int, int]]] = [[] for _ in range(16)]  # (note, velocity), newest last
        else:
            self.held_keys[ch].clear()

    def switch(self, on: bool) -> None:
        if on == self.on:
            return
        self.on = on
        for ch in range(16):
            held = [v for v in self._voices.voices if v.state != FREE and v.channel == ch and v.held]
            held.sort(key=lambda v: v.order)
            self.held_keys[ch] = [(v.note, v.velocity) for v in held] if on else []

    def _line(self, ch: int) -> Voice | None:
        """The voice a mono channel is playing (held or sustained, not releasing)."""
        cands = [
            v for v in self._voices.voices if v.state != FREE and v.channel == ch and v.rel_len == 0 and not v.stolen
        ]
        return max(cands, key=lambda v: v.order) if cands else None

    def _legato(self, cur: Voice, note: int, velocity: int, ch: int, t_event: float | None = None, ticket=None) -> None:
        """Move a mono line to ``note``: the old voice crossfades into a new one that glides from its pitch."""
        alloc = self._voices
        cur.release(alloc.config.steal_fade_s * alloc.sample_rate)
        glide_from = cur.note if self._glides else None
        alloc.start(note, velocity, ch, glide_from=glide_from, t_event=t_event, ticket=ticket)

    def note_on(
        self, note: int, velocity: int, ch: int, t_event: float | None = None, ticket: NoteTicket | None = None
    ) -> None:
        keys = self.held_keys[ch]
        keys[:] = [k for k in keys if k[0] != note] + [(note, velocity)]
        cur = self._line(ch)
        if cur is None or cur.note == note:
            self._voices.start(note, velocity, ch, t_event=t_event, ticket=ticket)
        else:
            self._legato(cur, note, velocity, ch, t_event, ticket)

    def note_off(self, note: int, ch: int) -> bool:
        """Mono note-off; True if handled (the line went back to an earlier held key)."""
        keys = self.held_keys[ch]
        keys[:] = [k for k in keys if k[0] != note]
        cur = self._line(ch)
        if cur is None or cur.note != note or not cur.held:
            return False  # not the line's key: only a voice left from poly mode can still hold it
        if keys:  # last-note priority: return to the most recent key still held
            back_note, back_vel = keys[-1]
            self._legato(cur, back_note, back_vel, ch)
            return True
        return False
