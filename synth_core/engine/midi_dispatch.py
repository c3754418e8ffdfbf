"""MIDI messages -> the engine's control calls (channel filter; anything unknown is ignored).

note_on / note_off, CC64 (sustain, down from 64), CC120 (all sound off), CC123 (all notes off), the pitch wheel
(scaled to ``EngineConfig.bend_range`` semitones) and, with a program map, program_change.
"""

from __future__ import annotations

import mido


def dispatch_midi(engine, msg: mido.Message) -> None:
    """Apply one MIDI message to ``engine`` (an :class:`~synth_core.engine.Engine`)."""
    try:
        kind = msg.type
        channel = getattr(msg, "channel", None)
        if channel is None or (engine.config.channel is not None and channel != engine.config.channel):
            return
        if kind == "note_on":
            engine.note_on(msg.note, msg.velocity, channel)
        elif kind == "note_off":
            engine.note_off(msg.note, channel)
        elif kind == "control_change":
            if msg.control == 64:
                engine.set_sustain(msg.value >= 64, channel)
            elif msg.control == 120:
                engine.all_sound_off(channel)
            elif msg.control == 123:
                engine.all_notes_off(channel)
        elif kind == "pitchwheel":
            engine.set_pitch_bend(msg.pitch / 8192.0 * engine.config.bend_range, channel)
        elif kind == "program_change" and engine.program_map is not None:
            index = engine.program_map.get(msg.program)
            if index is not None:
                engine.set_instrument(index, channel)
    except (AttributeError, TypeError, ValueError):
        return
