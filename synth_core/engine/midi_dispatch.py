"""MIDI messages -> the engine's control calls (channel filter; anything unknown is ignored).

note_on / note_off, CC64 (sustain, down from 64), CC120 (all sound off), CC121 (reset all controllers: pedal
up, wheel centred), CC123 (all notes off), the pitch wheel (scaled to the channel's bend range:
``EngineConfig.bend_range``, or what RPN 0 set), RPN 0 (bend range) and RPN 6 (the MPE Configuration
Message) and, with a program map, program_change.

On an MPE zone's channels (:mod:`.mpe`; they pass the channel filter): a member channel's pitch wheel, channel
pressure and CC74 are its note's (``set_note_bend``, ``set_note_pressure``, ``set_note_slide``); polyphonic key
pressure sets its key's loudness; the master channel's pitch wheel, pedal, CC120/123 and program change reach
every channel of the zone.
"""

from __future__ import annotations

import mido

from .mpe import RPN_BEND_RANGE, RPN_CONTROLS, RPN_MCM, slide_amount

SLIDE_CC = 74


def dispatch_midi(engine, msg: mido.Message) -> None:
    """Apply one MIDI message to ``engine`` (an :class:`~synth_core.engine.Engine`)."""
    try:
        kind = msg.type
        channel = getattr(msg, "channel", None)
        if channel is None:
            return
        mpe = engine.mpe_state
        zone = mpe.zone(channel)
        if zone is None and engine.config.channel is not None and channel != engine.config.channel:
            return
        # the channels a channel-wide message reaches: a zone's master reaches its whole zone
        chans = zone.channels if zone is not None and channel == zone.master else (channel,)
        if kind == "note_on":
            engine.note_on(msg.note, msg.velocity, channel)
        elif kind == "note_off":
            engine.note_off(msg.note, channel)
        elif kind == "control_change":
            control, value = msg.control, msg.value
            if control in RPN_CONTROLS:
                done = mpe.rpn(channel, control, value)
                if done is not None:
                    _apply_rpn(engine, channel, *done)
            elif control == 64:
                for c in chans:
                    engine.set_sustain(value >= 64, c)
            elif control == 120:
                for c in chans:
                    engine.all_sound_off(c)
            elif control == 121:  # reset all controllers: pedal up, wheel centred (and a member's note bend, slide)
                for c in chans:
                    engine.set_sustain(False, c)
                    engine.set_pitch_bend(0.0, c)
                if mpe.is_member(channel):
                    engine.set_note_bend(0.0, channel)
                    engine.set_note_slide(slide_amount(64), channel)
            elif control == 123:
                for c in chans:
                    engine.all_notes_off(c)
            elif control == SLIDE_CC and mpe.is_member(channel):
                engine.set_note_slide(slide_amount(value), channel)
        elif kind == "pitchwheel":
            semitones = msg.pitch / 8192.0 * mpe.bend_range(channel)
            if mpe.is_member(channel):
                engine.set_note_bend(semitones, channel)
            else:
                for c in chans:
                    engine.set_pitch_bend(semitones, c)
        elif kind == "aftertouch" and mpe.is_member(channel):
            engine.set_note_pressure(msg.value / 127.0, channel)
        elif kind == "polytouch" and zone is not None:
            engine.set_note_pressure(msg.value / 127.0, channel, msg.note)
        elif kind == "program_change" and engine.program_map is not None:
            index = engine.program_map.get(msg.program)
            if index is not None:
                for c in chans:
                    engine.set_instrument(index, c)
    except (AttributeError, TypeError, ValueError):
        return


def _apply_rpn(engine, channel: int, rpn: tuple[int, int], value: float) -> None:
    if rpn == RPN_BEND_RANGE:
        engine.mpe_state.set_bend_range(channel, value)
    elif rpn == RPN_MCM and channel in (0, 15):  # on a master channel: that zone's member count
        lower, upper = engine.mpe_zones
        if channel == 0:
            engine.set_mpe_zones(int(value), upper, changed="lower")
        else:
            engine.set_mpe_zones(lower, int(value), changed="upper")
