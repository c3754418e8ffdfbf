"""The engine's controls and their MIDI messages: value ranges, which channels a control reaches, pitch bend,
master gain and the soft limiter, the output rate, instrument vectors and program changes, unknown messages and
the channel filter."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import Engine, EngineConfig
from synth_core.render import render_midi
from synth_core.sing.checkpoint import InstrumentInfo
from tests.engine_helpers import (
    SR,
    Recorder,
    cc,
    engine,
    held,
    live,
    off,
    on,
    play,
    rms,
    seg,
    two_channels,
)


def test_pitch_bend_up_two_semitones_moves_f0():
    e = engine(bend_range=2.0)
    y = e.render_offline([(0, on(69)), (SR // 2, mido.Message("pitchwheel", pitch=8191))], int(1.5 * SR))
    assert estimate_f0(seg(y, 0.1, 0.45), SR) == pytest.approx(440.0, rel=0.005)
    assert estimate_f0(seg(y, 0.7, 1.4), SR) == pytest.approx(440.0 * 2 ** (2 * 8191 / 8192 / 12), rel=0.005)


def pitch_of(e: Engine, blocks: int = 24) -> float:
    audio = play(e, blocks=blocks)
    return estimate_f0(audio[-8192:], SR)


@pytest.mark.parametrize(("bend", "semitones"), [(30.0, 24.0), (-30.0, -24.0), (7.0, 7.0), (float("nan"), 0.0)])
def test_pitch_bend_is_clamped_to_two_octaves(bend, semitones):
    e = live()
    e.set_pitch_bend(bend)
    play(e, on(57), blocks=1)
    assert pitch_of(e) == pytest.approx(midi_to_hz(57 + semitones), rel=0.01)
    assert e.pitch_bend(0) == semitones  # the bend the audio side resamples channel 0 with


def test_a_bend_during_a_note_keeps_the_resampler_fed():
    """Bending up two octaves mid-note needs four times the input: the worker must compute that much ahead."""
    e = live()
    play(e, on(45), blocks=16)
    e.set_pitch_bend(24.0)
    assert pitch_of(e, blocks=40) == pytest.approx(midi_to_hz(69), rel=0.01)
    assert e.stats().underruns == 0


def test_pitchwheel_maps_to_the_bend_range():
    e = live()
    play(e, mido.Message("pitchwheel", pitch=8191, channel=2), blocks=1)
    assert e.pitch_bend(2) == pytest.approx(8191 / 8192 * EngineConfig().bend_range, rel=1e-12)
    play(e, mido.Message("pitchwheel", pitch=-8192, channel=2), blocks=1)
    assert e.pitch_bend(2) == -EngineConfig().bend_range


def test_reset_all_controllers_centres_the_wheel_and_lifts_the_pedal():
    e = engine(bend_range=2.0)
    y = e.render_offline(
        [(0, cc(64, 127)), (0, on(69)), (0, mido.Message("pitchwheel", pitch=8191)), (SR // 10, off(69)),
         (SR // 2, cc(121, 0))],
        int(1.5 * SR),
    )  # fmt: skip
    assert estimate_f0(seg(y, 0.15, 0.45), SR) == pytest.approx(440.0 * 2 ** (2 * 8191 / 8192 / 12), rel=0.005)
    assert e.pitch_bend(0) == 0.0
    assert rms(seg(y, 1.3, 1.5)) < 0.01 * rms(seg(y, 0.15, 0.45))  # the pedal let go of the released key


def vectors_of_new_notes(e: Engine, source: Recorder, ch: int) -> list[np.ndarray]:
    """The instrument vectors new notes on ``ch`` get: two from note_on (the control side picks them) and one from a
    mono line going back to a held key (a note the audio side begins itself, with its own copy of the vectors)."""
    source.starts.clear()
    e.set_mono(True)
    play(e, on(60, ch=ch), on(64, ch=ch), off(64, ch=ch), blocks=2)
    play(e, off(60, ch=ch), blocks=1)
    e.set_mono(False)
    play(e, blocks=1)
    assert [p for _, p, _, _ in source.starts] == [60, 64, 60]
    return [vec for _, _, _, vec in source.starts]


def test_a_bend_or_vector_for_one_channel_leaves_the_others():
    source = Recorder()
    e = live(source, cache_entries=0)
    default = e.instrument_vector()
    e.set_pitch_bend(2.0, channel=5)
    vec = np.ones_like(e.instrument_vector())
    e.set_instrument_vector(vec, channel=5)
    play(e, blocks=1)
    assert e.pitch_bend(5) == 2.0 and e.pitch_bend(0) == 0.0
    for ch, want in ((5, vec), (0, default)):  # the default vector is not the channel's
        for got in vectors_of_new_notes(e, source, ch):
            np.testing.assert_array_equal(got, want)
    e.set_pitch_bend(1.0)
    play(e, blocks=1)
    assert [e.pitch_bend(c) for c in range(16)] == [1.0] * 16


def test_master_gain_and_soft_limiter():
    chord = [(0, on(60, 127)), (0, on(64, 127)), (0, on(67, 127)), (0, on(72, 127))]
    loud = engine().render_offline(chord, SR // 2)
    e = engine()
    e.set_master_gain(2.0)
    louder = e.render_offline(chord, SR // 2)
    assert np.max(np.abs(louder)) > np.max(np.abs(loud))
    # below its threshold the limiter is the identity; above it a tanh knee, sample by sample
    t = EngineConfig().limiter_threshold
    e = engine()
    e.set_master_gain(0.5)
    half = e.render_offline(chord, SR // 2).astype(np.float64)  # the mix at half gain, below the threshold
    assert np.max(np.abs(half)) < t
    e = engine()
    just_over = 0.45 / np.max(np.abs(half))  # a mix peaking at 0.9: over the threshold, under full scale
    e.set_master_gain(just_over)
    near = e.render_offline(chord, SR // 2)
    for gain, y in ((1.0, loud), (2.0, louder), (just_over, near)):
        mix = 2 * gain * half
        mag = np.abs(mix)
        knee = np.where(mag > t, t + (1 - t) * np.tanh((mag - t) / (1 - t)), mag)
        assert np.mean(mag > t) > 0.001  # the test drives the knee
        np.testing.assert_allclose(y, np.sign(mix) * knee, atol=1e-5)  # float32 arithmetic


@pytest.mark.parametrize(("gain", "ratio"), [(5.0, 2.0), (-1.0, 0.0), (0.5, 0.5), (float("nan"), 0.0)])
def test_master_gain_is_clamped_to_0_2(gain, ratio):
    ref, e = live(limiter_threshold=1.0), live(limiter_threshold=1.0)
    e.set_master_gain(gain)
    a, b = play(ref, on(60, 40), blocks=12), play(e, on(60, 40), blocks=12)
    np.testing.assert_allclose(b, a * ratio, atol=1e-6)


def test_the_output_rate_is_at_least_22050():
    e = live()
    e.set_sample_rate(8000)
    play(e, blocks=1)
    assert e.sample_rate == 22050 and e.stats().sample_rate == 22050
    e.set_sample_rate(22050.9)
    play(e, blocks=1)
    assert e.sample_rate == 22050


def test_all_sound_off_is_immediate():
    y = engine(release_s=1.0).render_offline([(0, on(69)), (SR // 4, cc(120, 0))], SR)
    assert rms(seg(y, 0.2, 0.25)) > 0.05
    assert np.all(seg(y, 0.26, 1.0) == 0)  # within a few ms


@pytest.mark.parametrize("control", ["notes_off", "sound_off"])
def test_all_notes_or_sound_off_without_a_channel_reaches_every_channel(control):
    e = live()
    two_channels(e)
    getattr(e, f"all_{control}")()
    play(e, blocks=1)
    assert held(e) == []
    e = live()
    two_channels(e)
    getattr(e, f"all_{control}")(3)
    play(e, blocks=1)
    assert held(e) == [(0, 60)]


@pytest.mark.parametrize(("control", "kept"), [(120, [(0, 60)]), (123, [(0, 60)])])
def test_cc_120_and_123_act_on_their_own_channel(control, kept):
    e = live()
    two_channels(e)
    play(e, cc(control, 0, ch=3), blocks=1)
    assert held(e) == kept


def test_per_channel_instrument_vectors_are_kept_by_sounding_notes():
    e = engine()
    e.set_instrument(1, channel=2)
    assert e.instrument_vector()[0] == 1.0  # the default vector is unchanged
    e.set_instrument_vector(np.ones(16) * 0.5)
    np.testing.assert_allclose(e.instrument_vector(), 0.5)


def test_a_wrong_sized_instrument_vector_is_ignored():
    e = live()
    before = e.instrument_vector()
    e.set_instrument_vector(np.ones(3))
    np.testing.assert_array_equal(e.instrument_vector(), before)
    e.set_instrument_vector(np.full((2, len(before) // 2), np.nan))  # any shape of the right size, NaN -> 0
    np.testing.assert_array_equal(e.instrument_vector(), np.zeros_like(before))
    assert e.instrument_vector().dtype == np.float32


def test_program_changes_need_a_program_map(tiny_instruments):
    src = Recorder(n_instruments=3)
    src.instrument_table = np.eye(3, 16, dtype=np.float32)
    e = live(src, cache_entries=0)
    play(e, mido.Message("program_change", program=2, channel=1), blocks=1)
    for got in vectors_of_new_notes(e, src, 1):  # no map: the channel keeps the default vector
        np.testing.assert_array_equal(got, src.instrument_table[0])
    e.set_program_map({})
    assert e.program_map is None  # an empty map is no map
    e.set_program_map({2: 2})
    play(e, mido.Message("program_change", program=2, channel=1), blocks=1)
    for got in vectors_of_new_notes(e, src, 1):
        np.testing.assert_array_equal(got, src.instrument_table[2])
    for got in vectors_of_new_notes(e, src, 0):  # on its channel only
        np.testing.assert_array_equal(got, src.instrument_table[0])


def midi_file(*messages: mido.Message) -> mido.MidiFile:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for m in messages:
        track.append(m)
    return mid


def test_midi_file_channels_keep_their_own_program_and_bend():
    source = Recorder(n_instruments=4)
    source.instruments[1] = InstrumentInfo("gm040_violin", "string")  # program 40 maps to it by name
    mid = midi_file(
        mido.Message("program_change", program=40, channel=1),
        mido.Message("pitchwheel", pitch=8191, channel=1),  # ch 1 bends up 2 semitones
        on(57, ch=0),
        on(64, ch=1),
        off(57, ch=0).copy(time=960),
        off(64, ch=1),
    )
    y = render_midi(source, mid, sample_rate=SR, tail_s=0.2)
    starts = {p: vec for _, p, _, vec in source.starts}
    assert np.argmax(starts[57]) == 0 and np.argmax(starts[64]) == 1  # the program change reached ch 1 only
    spectrum = np.abs(np.fft.rfft(y[SR // 10 : SR // 10 + SR // 2] * np.hanning(SR // 2)))
    f = np.fft.rfftfreq(SR // 2, 1 / SR)

    def peak_near(hz: float) -> float:
        band = (f > hz * 0.97) & (f < hz * 1.03)
        return float(f[band][np.argmax(spectrum[band])])

    assert peak_near(midi_to_hz(57)) == pytest.approx(midi_to_hz(57), abs=3)  # ch 0 not bent
    bent = midi_to_hz(64) * 2 ** (2 * 8191 / 8192 / 12)
    assert peak_near(bent) == pytest.approx(bent, abs=3)
    assert spectrum[np.abs(f - midi_to_hz(64)) < 2].max() < 0.05 * spectrum.max()  # nothing left at 64 unbent


def test_odd_control_values_are_clamped():
    e = engine()
    e.note_on(500, 900)
    e.set_pitch_bend(float("nan"))
    e.set_master_gain(-3)
    e.set_instrument(99)
    e.set_instrument_vector(np.full(16, np.inf))
    e.render(256)  # no exception


def test_unknown_messages_are_ignored():
    plain = engine().render_offline([(0, on(69))], SR // 2)
    odd = [
        (0, mido.Message("sysex", data=[1, 2, 3])),
        (0, mido.Message("aftertouch", value=50)),
        (0, mido.Message("clock")),
        (0, cc(7, 20)),
        (0, mido.Message("program_change", program=5)),
        (0, on(69)),
        (100, mido.Message("polytouch", note=69, value=3)),
    ]
    np.testing.assert_allclose(engine().render_offline(odd, SR // 2), plain, atol=1e-3)


def test_channel_filter():
    e = engine(channel=1)
    assert np.all(e.render_offline([(0, on(69, ch=0))], SR // 2) == 0)
    assert rms(e.render_offline([(0, on(69, ch=1))], SR // 2)) > 0.05
