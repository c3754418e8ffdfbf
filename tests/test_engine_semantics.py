"""Engine MIDI semantics beyond one note on channel 0: the note cache's key, voice stealing, the sustain pedal,
per-channel programs and bends from a MIDI file, clamped values on notes that play, and two equivalences (the
threaded engine equals the offline render; the engine's SING path equals a SingStreamer with the sustain freeze).
"""

from __future__ import annotations

import time

import mido
import numpy as np
import pytest
import torch

from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource, SingSource
from synth_core.engine.engine import FREE
from synth_core.render import render_midi
from synth_core.sing.checkpoint import InstrumentInfo
from synth_core.sing.streaming import SingStreamer

SR = 48000
BLOCK = 256


def on(note, vel=100, ch=0):
    return mido.Message("note_on", note=note, velocity=vel, channel=ch)


def off(note, ch=0):
    return mido.Message("note_off", note=note, channel=ch)


def pedal(down: bool, ch=0):
    return mido.Message("control_change", control=64, value=127 if down else 0, channel=ch)


class Recorder(SineSource):
    """A sine source that records what each start asked for: (slot, pitch, velocity, instrument vector)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.starts: list[tuple[int, int, float, np.ndarray]] = []

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None) -> None:
        for s, v, p, vel in zip(slots, vecs, pitches, velocities, strict=True):
            self.starts.append((s, int(p), float(vel), np.array(v)))
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)


def live(source=None, **config) -> Engine:
    """An engine driven synchronously block by block (like render_offline, without its final reset)."""
    e = Engine(source or SineSource(), EngineConfig(sample_rate=SR, **config))
    e._sync = True
    return e


def play(e: Engine, *msgs: mido.Message, blocks: int = 2) -> np.ndarray:
    for m in msgs:
        e.handle_midi(m)
    return np.concatenate([e.render(BLOCK).copy() for _ in range(blocks)])


def held(e: Engine) -> list[tuple[int, int]]:
    """(channel, note) of the voices sounding without a release."""
    return sorted((v.channel, v.note) for v in e.voices if v.state != FREE and v.rel_len == 0)


def fading(e: Engine) -> list[tuple[int, int]]:
    return sorted((v.channel, v.note) for v in e.voices if v.state != FREE and v.rel_len > 0)


# ---------------------------------------------------------------- the note cache's key


def test_cache_never_replays_another_instrument_or_velocity(tiny_model, tiny_instruments):
    def engine() -> Engine:
        return Engine(SingSource(tiny_model, tiny_instruments), EngineConfig(sample_rate=SR, cache_prefix_s=0.1))

    def note(e: Engine, instrument: int, velocity: int) -> np.ndarray:
        e.set_instrument(instrument)
        return e.render_offline([(0, on(60, velocity)), (SR // 4, off(60))], SR // 2)

    e = engine()
    first = note(e, 0, 100)
    other_instrument, other_velocity = note(e, 1, 100), note(e, 0, 40)
    assert e.stats().cache_hits == 0 and e.stats().cache_misses == 3
    again = note(e, 0, 100)
    assert e.stats().cache_hits == 1
    np.testing.assert_allclose(again, first, atol=1e-5)
    # each other note is what an engine without that cache entry plays, and not the cached note
    np.testing.assert_allclose(other_instrument, note(engine(), 1, 100), atol=1e-6)
    np.testing.assert_allclose(other_velocity, note(engine(), 0, 40), atol=1e-6)
    for other in (other_instrument, other_velocity):
        assert np.abs(other - first).max() > 1e-4


# ---------------------------------------------------------------- voice stealing


def test_stealing_takes_a_released_voice_before_the_oldest_held_one():
    e = live(max_voices=3, release_s=2.0, steal_fade_s=1.0)
    play(e, on(60), on(62), on(64))
    play(e, off(62))
    play(e, on(65))
    assert held(e) == [(0, 60), (0, 64), (0, 65)]  # the oldest held key (60) keeps sounding
    assert e.stats().voices_stolen == 1
    stolen = [v for v in e.voices if v.stolen and v.state != FREE]
    assert [v.note for v in stolen] == [62]


def test_when_every_slot_is_fading_the_oldest_fading_one_is_cut():
    e = live(max_voices=1, steal_fade_s=1.0)  # two slots
    play(e, on(60))
    play(e, on(62))  # 60 fades in its slot, 62 takes the other
    play(e, on(64))  # 62 fades too: no slot is free, the older fade (60) is cut for 64
    assert held(e) == [(0, 64)] and fading(e) == [(0, 62)]
    assert e.stats().voices_stolen == 2


# ---------------------------------------------------------------- the sustain pedal


def test_pedal_up_while_the_key_is_still_held_keeps_the_note():
    e = live(release_s=0.05)
    play(e, pedal(True), on(60))
    play(e, pedal(False))
    assert held(e) == [(0, 60)]
    play(e, off(60))
    assert held(e) == [] and fading(e) == [(0, 60)]


def test_a_pedal_on_another_channel_does_not_hold_this_one():
    e = live(release_s=0.05)
    play(e, pedal(True, ch=1), on(60, ch=0), on(67, ch=1))
    play(e, off(60, ch=0), off(67, ch=1))
    assert held(e) == [(1, 67)]  # sustained by its channel's pedal
    assert fading(e) == [(0, 60)]
    play(e, pedal(False, ch=1))
    assert held(e) == []


def test_restriking_a_sustained_key_replaces_its_voice():
    e = live(release_s=0.5)
    play(e, pedal(True), on(60), off(60))
    play(e, on(60))
    assert held(e) == [(0, 60)] and fading(e) == [(0, 60)]  # the old voice fades, one new voice holds
    play(e, pedal(False))
    assert held(e) == [(0, 60)]  # the re-struck key is still down


def test_the_pedal_in_mono_mode_holds_the_line_until_released():
    e = live(mono=True, release_s=0.05)
    play(e, pedal(True), on(60), off(60))
    assert held(e) == [(0, 60)]  # sustained after the key went up
    play(e, on(62))
    assert held(e) == [(0, 62)]  # the line moves legato to the new key
    play(e, pedal(False))
    assert held(e) == [(0, 62)]  # 62 is still down
    play(e, off(62), blocks=10)
    assert held(e) == []


# ---------------------------------------------------------------- channels from a MIDI file


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


# ---------------------------------------------------------------- odd values on notes that play


@pytest.mark.parametrize(
    ("note", "velocity", "pitch", "vel"), [(200, 300, 127, 127), (-5, 64, 0, 64), (69, 1e9, 69, 127)]
)
def test_odd_note_and_velocity_values_play_clamped(note, velocity, pitch, vel):
    source = Recorder()
    e = live(source)
    e.note_on(note, velocity)
    y = play(e, blocks=4)
    assert [(p, v) for _, p, v, _ in source.starts] == [(pitch, vel)]
    assert np.abs(y).max() > 0.01  # it plays
    if pitch == 69:
        assert estimate_f0(y[BLOCK:], SR) == pytest.approx(440.0, rel=0.01)


# ---------------------------------------------------------------- equivalences


def ready_ahead(e: Engine, v) -> int:
    """Samples the worker has computed for voice ``v`` that it has not read yet."""
    t = v.ticket
    if t is None or t.slot < 0:
        return 0
    ring = e.rings[t.slot]
    return ring.write_pos - max(ring.read_pos, t.start)


def threaded_render(e: Engine, notes: list[tuple[int, int]], n_blocks: int, block: int = 1024) -> np.ndarray:
    """Play ``notes`` (note, velocity) at once through the started engine's worker thread and return the output
    from the block where they start. render never waits: this waits for the worker before each block, so nothing
    underruns. Blocks of 1024 frames, the chunk render_offline uses (the resampler's position sums its steps per
    chunk: other block sizes round differently, ~1e-4)."""
    for note, velocity in notes:
        e.note_on(note, velocity)
    blocks = [e.render(block).copy()]  # applies the note-ons
    need = int(block * e.src_rate / e.sample_rate) + e.config.resampler_taps + e.hop
    for _ in range(n_blocks):
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not (
            len(e.note_latencies()[0]) >= len(notes)
            and all(ready_ahead(e, v) + v.resampler.avail >= need for v in e.voices if v.state != FREE)
        ):
            time.sleep(0.001)
        blocks.append(e.render(block).copy())
    y = np.concatenate(blocks)
    start = int(np.flatnonzero(y)[0])
    assert start % block == 0 and start <= block  # voices start on a block boundary, at most one block late
    assert e.stats().underruns == 0
    return y[start : start + n_blocks * block]


def test_threaded_engine_plays_what_the_offline_render_plays():
    config = {"sample_rate": SR, "max_voices": 4}
    offline = Engine(SineSource(), EngineConfig(**config)).render_offline([(0, on(60)), (0, on(64, 50))], 10 * 1024)
    e = Engine(SineSource(), EngineConfig(**config))
    e.start()
    try:
        y = threaded_render(e, [(60, 100), (64, 50)], 10)
        assert e.worker_error is None
    finally:
        e.stop()
    np.testing.assert_array_equal(y, offline)


# ---------------------------------------------------------------- fallbacks


def test_sing_voice_falling_back_mid_note_continues_the_same_note(tiny_model, tiny_instruments, gpu_fails_once):
    """A GPU failure after 12 hops: the worker moves every voice's streaming state to the CPU and the note goes on
    exactly as an uninterrupted one (nothing restarts, nothing is skipped)."""
    config = EngineConfig(sample_rate=SR, max_voices=2, cache_entries=0)
    events = [(0, on(60)), (0, on(67, 70))]
    reference = Engine(SingSource(tiny_model, tiny_instruments), config).render_offline(events, 12 * 1024)
    source = SingSource(tiny_model, tiny_instruments)
    failures = gpu_fails_once(source, after=12)
    e = Engine(source, config)
    e.start()
    try:
        y = threaded_render(e, [(60, 100), (67, 70)], 12)
        assert failures == [12] and source.device.type == "cpu"
        assert "GPU failed" in e.stats().device_name
    finally:
        e.stop()
    np.testing.assert_allclose(y, reference, rtol=0, atol=1e-6)


def test_engine_sing_path_equals_the_streamer_with_the_sustain_freeze(tiny_model, tiny_instruments):
    """What the worker computes for a note (through the cache, the rings and the frozen time embedding) is the
    SingStreamer's note; the resampler on top is pinned in tests/test_resampler.py."""
    source = SingSource(tiny_model, tiny_instruments)
    written: list[np.ndarray] = []
    step = source.step

    def recording_step(slots, *between):
        out = step(slots, *between)
        written.append(out[0].copy())
        return out

    source.step = recording_step
    config = EngineConfig(sample_rate=SR, max_voices=1, sustain_s=0.3, cache_prefix_s=0.05)
    e = Engine(source, config)
    hops = 40  # 0.64 s at 16 kHz: well past the sustain freeze at 0.3 s
    e.set_instrument(2)
    e.render_offline([(0, on(62, 90))], int(hops * 256 * SR / 16000))
    got = np.concatenate(written)

    ref = SingStreamer(tiny_model, max_voices=1)
    vec = torch.as_tensor(source.instrument_table[2])
    ref.start(0, vec, 62, 90.0, sustain_step=source.sustain_step(0.3))
    want = torch.cat([ref.step([0])[0] for _ in range(len(written))]).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the frozen time embedding: past the freeze every hop is computed at the same time step
    assert int(ref.t[0]) > int(ref.time_limit[0])
