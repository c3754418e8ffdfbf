"""MPE (MIDI Polyphonic Expression): the MPE Configuration Message and the zones, bend ranges (RPN 0), per-note
pitch bend, pressure and slide measured in the rendered audio (each note's pitch and level in the spectrum) and in
what the source computes, controls sent before a note-on, the master channel reaching its zone, and MPE off."""

from __future__ import annotations

import threading
import time

import mido
import numpy as np
import pytest

from synth_core.dsp import midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource, SingSource
from synth_core.engine.mpe import carries_mpe, pressure_gain, slide_amount
from synth_core.sing.streaming import SingStreamer
from tests.engine_helpers import SR, Recorder, cc, fading, held, live, off, on, play, ready_ahead, rms

TAIL = 16384  # samples the spectrum is measured over (0.34 s)


def wheel(semitones: float, bend_range: float, ch: int) -> mido.Message:
    return mido.Message("pitchwheel", pitch=min(8191, round(semitones / bend_range * 8192)), channel=ch)


def pressure(value: int, ch: int) -> mido.Message:
    return mido.Message("aftertouch", value=value, channel=ch)


def rpn(ch: int, number: tuple[int, int], msb: int, lsb: int | None = None) -> list[mido.Message]:
    msgs = [cc(101, number[0], ch), cc(100, number[1], ch), cc(6, msb, ch)]
    return msgs + ([cc(38, lsb, ch)] if lsb is not None else [])


def mcm(ch: int, members: int) -> list[mido.Message]:
    """The MPE Configuration Message: RPN 6 on a master channel."""
    return rpn(ch, (0, 6), members)


def spectrum(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = y[-TAIL:].astype(np.float64)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), 4 * len(x)))
    return np.fft.rfftfreq(4 * len(x), 1.0 / SR), mag


def peak_hz(y: np.ndarray, near: float, width: float = 0.04) -> float:
    """The frequency of the strongest peak within ``width`` (relative) of ``near`` (parabolic interpolation)."""
    f, mag = spectrum(y)
    band = np.flatnonzero((f > near * (1 - width)) & (f < near * (1 + width)))
    i = band[np.argmax(mag[band])]
    a, b, c = np.log(mag[i - 1 : i + 2] + 1e-12)
    return float(f[i] + 0.5 * (a - c) / (a - 2 * b + c) * (f[1] - f[0]))


def level_at(y: np.ndarray, hz: float, width: float = 0.02) -> float:
    """The spectrum's energy within ``width`` (relative) of ``hz``: how loud a note at that pitch is."""
    f, mag = spectrum(y)
    band = (f > hz * (1 - width)) & (f < hz * (1 + width))
    return float(np.sqrt(np.sum(mag[band] ** 2)))


def mpe_engine(source=None, **config) -> Engine:
    e = live(source, **config)
    e.set_mpe(True)
    return e


def two_notes(e: Engine, a: int = 57, b: int = 62, blocks: int = 8) -> np.ndarray:
    """Note ``a`` on member channel 2 (index 1) and ``b`` on channel 3 (index 2)."""
    return play(e, on(a, ch=1), on(b, ch=2), blocks=blocks)


# ---------------------------------------------------------------------------------------------- zones, ranges
def test_the_mpe_configuration_message_sets_the_zones_and_their_bend_ranges():
    e = live()
    assert not e.mpe and e.mpe_zones == (0, 0) and e.mpe_zone(1) is None
    play(e, *mcm(0, 7), blocks=1)
    assert e.mpe and e.mpe_zones == (7, 0)
    zone = e.mpe_zone(3)
    assert zone.master == 0 and zone.members == tuple(range(1, 8)) and e.mpe_zone(8) is None
    assert (e.bend_range(0), e.bend_range(1), e.bend_range(7), e.bend_range(8)) == (2.0, 48.0, 48.0, 2.0)
    play(e, *mcm(15, 10), blocks=1)  # the upper zone overlaps the lower one: the lower one shrinks
    assert e.mpe_zones == (4, 10)
    assert e.mpe_zone(14).master == 15 and e.mpe_zone(14).members == tuple(range(14, 4, -1))
    assert e.bend_range(15) == 2.0 and e.bend_range(5) == 48.0
    play(e, *mcm(3, 2), blocks=1)  # not on a master channel: ignored
    assert e.mpe_zones == (4, 10)
    play(e, *mcm(0, 0), *mcm(15, 0), blocks=1)
    assert not e.mpe and e.bend_range(5) == EngineConfig().bend_range


def test_mpe_without_a_configuration_message():
    e = live()
    e.set_mpe(True)
    assert e.mpe_zones == (15, 0) and e.mpe_zone(15).members == tuple(range(1, 16))
    e.set_mpe(False)
    assert not e.mpe
    assert Engine(SineSource(), EngineConfig(mpe=True)).mpe_zones == (15, 0)


def test_rpn_0_sets_a_zones_member_bend_range_and_an_ordinary_channels_own():
    e = mpe_engine()
    play(e, *rpn(4, (0, 0), 12, 50), blocks=1)  # on a member: every member of the zone, 12.5 semitones
    assert [e.bend_range(c) for c in (1, 4, 15)] == [12.5, 12.5, 12.5] and e.bend_range(0) == 2.0
    play(e, on(57, ch=3), wheel(-6.25, 12.5, 3), blocks=2)  # half the wheel down
    assert peak_hz(play(e, blocks=40), midi_to_hz(50.75)) == pytest.approx(midi_to_hz(50.75), rel=0.002)
    play(e, *mcm(0, 15), blocks=1)  # a configuration message restores the defaults
    assert e.bend_range(4) == 48.0
    e = live()  # no MPE: RPN 0 (General MIDI) sets the channel's own range
    play(e, *rpn(2, (0, 0), 7), blocks=1)
    assert e.bend_range(2) == 7.0 and e.bend_range(1) == EngineConfig().bend_range
    play(e, cc(99, 0, 2), cc(98, 0, 2), cc(6, 30, 2), blocks=1)  # an NRPN's data entry is not RPN 0's
    assert e.bend_range(2) == 7.0


# ---------------------------------------------------------------------------------------------- per-note bend
def test_a_per_note_bend_moves_only_its_notes_pitch():
    e = mpe_engine()
    two_notes(e)
    y = play(e, wheel(4.0, 48.0, 1), blocks=40)  # channel 2's note: 57 -> 61
    assert peak_hz(y, midi_to_hz(61)) == pytest.approx(midi_to_hz(61), rel=0.002)
    assert peak_hz(y, midi_to_hz(62)) == pytest.approx(midi_to_hz(62), rel=0.002)  # the other note stays
    assert level_at(y, midi_to_hz(57)) < 0.01 * level_at(y, midi_to_hz(61))  # nothing left at the old pitch
    assert e.pitch_bend(1) == 0.0  # a per-note bend, not the channel bend
    assert e.stats().underruns == 0


def test_the_master_bend_moves_every_note_of_its_zone_on_top_of_their_own():
    e = mpe_engine()
    two_notes(e)
    y = play(e, wheel(3.0, 48.0, 1), wheel(2.0, 2.0, 0), blocks=40)  # ch 2: +3 own, +2 master
    assert peak_hz(y, midi_to_hz(62)) == pytest.approx(midi_to_hz(62), rel=0.002)
    assert peak_hz(y, midi_to_hz(64)) == pytest.approx(midi_to_hz(64), rel=0.002)
    assert [e.pitch_bend(c) for c in (0, 1, 15)] == pytest.approx([2.0 * 8191 / 8192] * 3, rel=1e-9)


def test_a_two_octave_note_bend_keeps_the_resampler_fed():
    e = mpe_engine()
    play(e, on(45, ch=1), blocks=8)
    y = play(e, wheel(24.0, 48.0, 1), blocks=40)
    assert peak_hz(y, midi_to_hz(69)) == pytest.approx(midi_to_hz(69), rel=0.002)
    assert e.stats().underruns == 0


# ---------------------------------------------------------------------------------------------- pressure
def test_pressure_changes_only_its_notes_level():
    e, ref = mpe_engine(), mpe_engine()
    for x in (e, ref):
        two_notes(x)
    y, y_ref = play(e, pressure(0, 2), blocks=40), play(ref, blocks=40)
    a, b = midi_to_hz(57), midi_to_hz(62)
    assert level_at(y, b) / level_at(y_ref, b) == pytest.approx(pressure_gain(0.0, 24.0), rel=0.01)  # -24 dB
    assert level_at(y, a) == pytest.approx(level_at(y_ref, a), rel=1e-4)  # the other note keeps its level
    y = play(e, pressure(127, 2), blocks=40)
    assert level_at(y, b) == pytest.approx(level_at(play(ref, blocks=40), b), rel=0.01)  # full pressure: 0 dB


def test_pressure_glides_across_a_block_without_a_step():
    e, ref = mpe_engine(), mpe_engine()
    for x in (e, ref):
        play(x, on(57, ch=1), pressure(127, 1), blocks=30)
    y, y_ref = play(e, pressure(0, 1), blocks=1).astype(np.float64), play(ref, blocks=1).astype(np.float64)
    k = np.flatnonzero(np.abs(y_ref) > 0.05)
    g = pressure_gain(0.0, 24.0)
    ramp = 1.0 + (g - 1.0) * (np.arange(1, len(y) + 1) / len(y))  # from full level to -24 dB, linearly
    np.testing.assert_allclose(y[k] / y_ref[k], ramp[k], rtol=1e-4)


def test_polyphonic_key_pressure_sets_its_keys_level():
    e, ref = mpe_engine(), mpe_engine()
    for x in (e, ref):
        play(x, on(57, ch=0), on(62, ch=0), blocks=8)  # notes on the master channel
    y, y_ref = play(e, mido.Message("polytouch", note=62, value=0, channel=0), blocks=40), play(ref, blocks=40)
    a, b = midi_to_hz(57), midi_to_hz(62)
    assert level_at(y, b) / level_at(y_ref, b) == pytest.approx(pressure_gain(0.0, 24.0), rel=0.01)
    assert level_at(y, a) == pytest.approx(level_at(y_ref, a), rel=1e-4)


def test_a_note_plays_at_its_own_level_until_its_first_pressure():
    e, plain = mpe_engine(), live()
    y, y_plain = play(e, on(57, ch=1), blocks=30), play(plain, on(57, ch=1), blocks=30)
    np.testing.assert_allclose(y, y_plain, atol=1e-7)
    play(e, pressure(0, 1), off(57, ch=1), blocks=100)  # the channel's pressure is forgotten at its note-off
    y = play(e, on(57, ch=1), blocks=30)
    np.testing.assert_allclose(y, y_plain, atol=1e-7)
    assert pressure_gain(0.5, 0.0) == 1.0  # mpe_pressure_db=0: pressure changes nothing


# ---------------------------------------------------------------------------------------------- slide
class SlideRecorder(Recorder):
    """Records every change of a sounding note's vector: (slot, vector)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.moves: list[tuple[int, np.ndarray]] = []

    def set_vectors(self, slots, vecs) -> None:
        self.moves += [(int(s), np.array(v)) for s, v in zip(slots, vecs, strict=True)]


def slot_of(e: Engine, ch: int) -> int:
    return next(v.ticket.slot for v in e.voices if v.state != 0 and v.channel == ch)


def test_slide_moves_only_its_notes_vector_along_the_direction():
    src = SlideRecorder(n_instruments=2)
    e = mpe_engine(src, cache_entries=0)
    up, down = np.full(16, 0.5, np.float32), np.linspace(-1, 0, 16, dtype=np.float32)
    e.set_slide_direction(up, down)
    two_notes(e)
    base = e.instrument_vector()
    ch2 = slot_of(e, 2)
    play(e, cc(74, 127, 2), blocks=1)
    assert [s for s, _ in src.moves] == [ch2]  # only that note
    np.testing.assert_allclose(src.moves[-1][1], base + up, atol=1e-7)
    play(e, *[cc(74, v, 2) for v in (100, 120, 32)], blocks=1)  # three slides in one block: one move, the last
    assert len(src.moves) == 2
    np.testing.assert_allclose(src.moves[-1][1], base + down * slide_amount(32) * -1, atol=1e-7)
    play(e, cc(74, 64, 2), cc(74, 64, 1), blocks=1)  # 64: back to the note's own vector; unchanged: no move
    assert [s for s, _ in src.moves] == [ch2, ch2, ch2]
    np.testing.assert_allclose(src.moves[-1][1], base, atol=1e-7)
    direction = e.slide_direction()
    np.testing.assert_array_equal(direction[0], up) and np.testing.assert_array_equal(direction[1], down)


def test_without_a_direction_a_slide_moves_nothing():
    src = SlideRecorder()
    e = mpe_engine(src)
    two_notes(e)
    play(e, cc(74, 127, 1), blocks=2)
    assert src.moves == [] and e.slide_direction() is None
    e.set_slide_direction(np.ones(3))  # the wrong size: ignored
    assert e.slide_direction() is None


def test_controls_sent_before_a_note_on_set_its_initial_state():
    src = SlideRecorder()
    e, ref = mpe_engine(src, cache_entries=0), mpe_engine()
    up = np.full(16, 0.25, np.float32)
    e.set_slide_direction(up)
    play(e, wheel(5.0, 48.0, 3), pressure(0, 3), cc(74, 127, 3), blocks=1)
    play(ref, wheel(5.0, 48.0, 3), blocks=1)
    y, y_ref = play(e, on(57, ch=3), blocks=30), play(ref, on(57, ch=3), blocks=30)
    assert peak_hz(y, midi_to_hz(62)) == pytest.approx(midi_to_hz(62), rel=0.002)  # bent from its start
    assert level_at(y, midi_to_hz(62)) / level_at(y_ref, midi_to_hz(62)) == pytest.approx(
        pressure_gain(0.0, 24.0), rel=0.01
    )  # at its pressure's level
    np.testing.assert_allclose(src.starts[-1][3], e.instrument_vector() + up, atol=1e-7)  # started slid
    assert src.moves == []


def test_a_new_note_on_a_channel_takes_its_controls_and_the_old_one_keeps_its_own():
    e = mpe_engine(release_s=2.0)
    play(e, on(57, ch=4), wheel(2.0, 48.0, 4), blocks=8)
    play(e, off(57, ch=4), wheel(0.0, 48.0, 4), on(64, ch=4), blocks=2)  # the controller reuses the channel
    y = play(e, wheel(-2.0, 48.0, 4), blocks=30)
    assert peak_hz(y, midi_to_hz(59)) == pytest.approx(midi_to_hz(59), rel=0.002)  # released: still at +2
    assert peak_hz(y, midi_to_hz(62)) == pytest.approx(midi_to_hz(62), rel=0.002)  # the new note: 64 - 2
    assert level_at(y, midi_to_hz(57)) < 0.01 * level_at(y, midi_to_hz(59))


# ---------------------------------------------------------------------------------------------- the zone
def test_the_master_channels_pedal_holds_the_whole_zone():
    e = mpe_engine()
    two_notes(e)
    play(e, on(69, ch=9), blocks=1)
    play(e, cc(64, 127, 0), off(57, ch=1), off(62, ch=2), off(69, ch=9), blocks=2)
    assert sustained(e) == [(1, 57), (2, 62), (9, 69)] and fading(e) == []
    play(e, cc(64, 0, 0), blocks=1)
    assert sustained(e) == [] and fading(e) == [(1, 57), (2, 62), (9, 69)]
    e = mpe_engine()  # a member's pedal holds its own channel only
    two_notes(e)
    play(e, cc(64, 127, 1), off(57, ch=1), off(62, ch=2), blocks=2)
    assert sustained(e) == [(1, 57)] and fading(e) == [(2, 62)]


def test_a_sustained_note_keeps_following_its_channel():
    e = mpe_engine()
    play(e, on(57, ch=1), cc(64, 127, 0), off(57, ch=1), blocks=4)
    y = play(e, wheel(2.0, 48.0, 1), blocks=30)
    assert peak_hz(y, midi_to_hz(59)) == pytest.approx(midi_to_hz(59), rel=0.002)


def sustained(e: Engine) -> list[tuple[int, int]]:
    return sorted((v.channel, v.note) for v in e.voices if v.state != 0 and v.sustained)


def test_zone_channels_pass_the_channel_filter_and_bypass_mono():
    e = mpe_engine(channel=0, mono=True)
    play(e, on(57, ch=1), on(62, ch=2), wheel(4.0, 48.0, 1), blocks=2)
    assert held(e) == [(1, 57), (2, 62)]  # each note on its own channel, the mono line left alone
    e.set_mpe_zones(3)
    play(e, on(70, ch=9), blocks=2)  # outside the zone: the filter holds
    assert held(e) == [(1, 57), (2, 62)]


def test_without_mpe_member_messages_are_ordinary_channel_messages():
    e = live()
    two_notes(e)
    play(e, cc(74, 127, 1), pressure(0, 1), mido.Message("polytouch", note=57, value=0, channel=1), blocks=1)
    y = play(e, wheel(2.0, 2.0, 1), blocks=40)  # a channel bend of the channel's own range
    assert e.pitch_bend(1) == pytest.approx(2.0, rel=1e-3)
    assert peak_hz(y, midi_to_hz(59)) == pytest.approx(midi_to_hz(59), rel=0.002)
    ref = live()
    two_notes(ref)
    assert level_at(y, midi_to_hz(62)) == pytest.approx(level_at(play(ref, blocks=40), midi_to_hz(62)), rel=1e-4)


def test_reset_forgets_what_the_channels_sent_and_keeps_the_zones():
    e = mpe_engine()
    play(e, wheel(5.0, 48.0, 1), *rpn(1, (0, 0), 24), blocks=1)
    e.reset()
    assert e.mpe_zones == (15, 0) and e.bend_range(1) == 48.0
    y = play(e, on(57, ch=1), blocks=30)
    assert peak_hz(y, midi_to_hz(57)) == pytest.approx(midi_to_hz(57), rel=0.002)


def test_an_mpe_midi_file_renders_offline_with_its_configuration_message():
    events = [(0, m) for m in mcm(0, 15)] + [(0, on(57, ch=1)), (0, on(62, ch=2)), (SR // 4, wheel(4.0, 48.0, 1))]
    y = Engine(SineSource(), EngineConfig(sample_rate=SR)).render_offline(events, SR)
    assert peak_hz(y, midi_to_hz(61)) == pytest.approx(midi_to_hz(61), rel=0.002)
    assert peak_hz(y, midi_to_hz(62)) == pytest.approx(midi_to_hz(62), rel=0.002)


def test_a_file_that_sets_a_zone_is_told_apart():
    assert carries_mpe(mcm(0, 15)) and carries_mpe([on(60), *mcm(15, 3)])
    assert not carries_mpe(mcm(0, 0)) and not carries_mpe(mcm(3, 15)) and not carries_mpe(rpn(0, (0, 0), 12))
    assert not carries_mpe([on(60), wheel(1.0, 2.0, 1), cc(6, 15, 0)])


# ---------------------------------------------------------------------------------------------- SING
def test_a_sing_slide_moves_only_its_notes_audio(tiny_model, tiny_instruments):
    """The mix is linear below the limiter: with the slide on the second note, taking that note alone (slid) out of
    the mix leaves the first note exactly as it plays alone; the slid note differs from the unslid one."""
    table = tiny_model.instrument_table.detach().numpy()

    far = np.full(16, 3.0, np.float32)  # (the untrained model's instruments are alike: a long way)

    def render(notes: list[tuple[int, int]], slide: bool, vec: np.ndarray = table[0]) -> np.ndarray:
        e = mpe_engine(SingSource(tiny_model, tiny_instruments), cache_entries=0, limiter_threshold=1.0)
        e.set_instrument_vector(vec)
        e.set_slide_direction(far)
        play(e, *[on(n, ch=c) for n, c in notes], blocks=8)
        return play(e, *([cc(74, 127, 2)] if slide else []), blocks=200)

    both = render([(57, 1), (64, 2)], slide=True)
    slid = render([(64, 2)], slide=True)
    first = render([(57, 1)], slide=False)
    np.testing.assert_allclose(both - slid, first, atol=1e-5 * max(1e-3, np.max(np.abs(first))))
    # the slid note moves to the timbre of the note started there: far from where it began, near where it went
    unslid, there = render([(64, 2)], slide=False), render([(64, 2)], slide=False, vec=table[0] + far)
    late = slice(-8192, None)
    assert rms(slid[late] - there[late]) < 0.2 * rms(unslid[late] - there[late])


def test_sing_streamer_set_vectors_moves_only_those_slots(tiny_model):
    table = tiny_model.instrument_table.detach()
    a, b = SingStreamer(tiny_model, max_voices=2), SingStreamer(tiny_model, max_voices=2)
    for s in (a, b):
        s.start_many([0, 1], table[[0, 0]], [60, 64], [100.0, 100.0])
        for _ in range(4):
            s.step([0, 1])
    far = table[[1]] + 3.0  # (the untrained model's instruments are alike)
    b.set_vectors([1], far)
    out_a = torch_cat([a.step([0, 1]) for _ in range(8)])
    out_b = torch_cat([b.step([0, 1]) for _ in range(8)])
    np.testing.assert_array_equal(out_a[0], out_b[0])  # slot 0 untouched
    assert np.max(np.abs(out_a[1] - out_b[1])) > 1e-3  # slot 1 continues with the other instrument
    b.set_vectors([1], table[[0]])  # back: the same condition again (the state has moved on)
    np.testing.assert_array_equal(b.static[1].numpy(), a.static[1].numpy())


def torch_cat(hops) -> np.ndarray:
    return np.concatenate([h.numpy() for h in hops], axis=1)


# ---------------------------------------------------------------------------------------------- the worker
def test_notes_that_slide_moves_are_computed_less_far_ahead():
    """A slide is heard once what the worker computed ahead has played: those notes are kept
    ``mpe_slide_ahead_s`` ahead (the others ``render_ahead_s``)."""
    src = SlideRecorder()
    e = Engine(src, EngineConfig(sample_rate=SR, mpe=True, render_ahead_s=0.25, mpe_slide_ahead_s=0.05))
    e.set_slide_direction(np.ones(16, np.float32))
    e.start()
    try:
        e.note_on(57, 100, channel=1)
        e.note_on(62, 100, channel=0)  # the master channel's note: no slide
        e.render(256)
        done = threading.Event()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not done.is_set():
            ahead = {v.channel: ready_ahead(e, v) for v in e.voices if v.state != 0}
            if len(ahead) == 2 and ahead[0] >= 0.25 * src.sample_rate:
                done.set()
            time.sleep(0.01)
        assert done.is_set()
        hop = src.hop
        assert ahead[1] <= 0.05 * src.sample_rate + 2 * hop  # the sliding note: about 0.05 s ahead
    finally:
        e.stop()
