"""Batch offline rendering (synth_core.engine.batch_render, synth_core.sing.batch): the same samples as the real-time
engine's render_offline, for every musical policy the engine applies; whole SING notes equal streamed ones, whole
WaveRNN voice notes (its glides too) equal stepped ones."""

from __future__ import annotations

import random
import tracemalloc

import mido
import numpy as np
import pytest
import soundfile as sf
import torch

from synth_core.engine import SineSource, SingSource
from synth_core.engine import batch_render as batch_module
from synth_core.engine.sine_voice import SineVoiceSource
from synth_core.engine.wavernn_source import WaveRNNSource
from synth_core.render import can_batch, render_midi, render_midi_to_wav
from synth_core.sing.batch import render_notes
from synth_core.sing.streaming import SingStreamer

SR = 48000


def difference_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Largest sample difference relative to the reference's peak (dB)."""
    assert len(reference) == len(other)
    return 20 * np.log10(np.abs(reference - other).max() / np.abs(reference).max() + 1e-30)


def midi(*tracks: list[tuple[float, mido.Message]]) -> mido.MidiFile:
    """A MIDI file from (seconds, message) lists, one track each (120 bpm, 480 ticks per beat: 960 ticks/s)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    for events in tracks:
        track = mido.MidiTrack()
        t = 0
        for sec, msg in sorted(events, key=lambda e: e[0]):
            tick = int(round(sec * 960))
            track.append(msg.copy(time=tick - t))
            t = tick
        mid.tracks.append(track)
    return mid


def note(t: float, length: float, pitch: int, velocity: int = 100, ch: int = 0):
    return [
        (t, mido.Message("note_on", note=pitch, velocity=velocity, channel=ch)),
        (t + length, mido.Message("note_off", note=pitch, channel=ch)),
    ]


def busy_song(seed: int = 0) -> mido.MidiFile:
    """Two channels with their own programs; the sustain pedal, pitch-wheel sweeps while notes sound, repeated notes,
    velocities, a chord beyond the polyphony (stealing), a loud cluster (the limiter), all notes off."""
    rng = random.Random(seed)
    a: list = [(0.0, mido.Message("program_change", program=0, channel=0))]
    b: list = [(0.0, mido.Message("program_change", program=1, channel=1))]
    for i in range(24):  # a melody with repeats
        a += note(0.1 + 0.12 * i, rng.choice([0.05, 0.1, 0.3]), rng.choice([60, 62, 64, 67]), rng.choice([60, 100]))
    a += [
        (0.5, mido.Message("control_change", control=64, value=127)),
        (1.9, mido.Message("control_change", control=64, value=0)),
    ]
    for k in range(40):  # ch 2 bends up and back while its notes sound
        b.append((1.0 + 0.02 * k, mido.Message("pitchwheel", pitch=int(8191 * np.sin(k / 6)), channel=1)))
    b += note(0.9, 1.0, 55, 90, ch=1) + note(1.2, 0.5, 59, 127, ch=1)
    for p in range(48, 48 + 12):  # 12 notes at once: beyond max_voices=8, the oldest are stolen
        a += note(3.0 + 0.001 * p, 0.4, p, 127)
    b += [(3.2, mido.Message("control_change", control=123, value=0, channel=1))]
    return midi(a, b)


def tiny_voice(temperature: float = 0.0, backend: str = "numba") -> WaveRNNSource:
    """The real WaveRNN voice with a tiny untrained model; temperature 0 samples greedily (no noise: the engine's
    render and the batch render draw their noise differently, see WaveRNNSource.render_notes)."""
    from synth_core.wavernn import WaveRNN, WaveRNNConfig
    from synth_core.wavernn.features import VoicePreset
    from synth_core.wavernn.voice import VoiceSettings

    torch.manual_seed(0)
    model = WaveRNN(WaveRNNConfig(hidden=32, cond_channels=16, head_hidden=16))
    presets = [VoicePreset("flat"), VoicePreset("bright", np.full(20, 0.2, np.float32))]
    settings = VoiceSettings(temperature=temperature, glide_s=0.2)
    return WaveRNNSource(model, presets, backend=backend, device="cpu", settings=settings)


@pytest.fixture(params=["sine", "sing", "voice"])
def source(request, tiny_model, tiny_instruments):
    if request.param == "sine":
        return SineSource(n_instruments=3)
    if request.param == "voice":
        return tiny_voice()
    return SingSource(tiny_model, tiny_instruments)


@pytest.mark.parametrize("bank", [False, True])
def test_sing_whole_notes_equal_streamed_ones(tiny_model, tiny_instruments, bank):
    if bank:  # a harmonic bank (issue #25): its phases run on past the sustain freeze in both
        with torch.no_grad():
            tiny_model.decoder.add_bank(12, 4, start_db=-10.0)
            tiny_model.decoder.bank.amp.weight.normal_(0, 0.3)
    vecs = tiny_model.instrument_table.detach().numpy()[[0, 1, 2]]
    pitches, velocities, sustain, lengths = [60, 40, 90], [100.0, 50.0, 127.0], [20, None, 5], [2560, 977, 9000]
    got = render_notes(tiny_model, vecs, pitches, velocities, sustain, lengths, workers=2)
    for i, n in enumerate(lengths):
        s = SingStreamer(tiny_model, max_voices=1)
        s.start_many([0], torch.as_tensor(vecs[i : i + 1]), [pitches[i]], [velocities[i]], [sustain[i]])
        ref = torch.cat([s.step([0])[0] for _ in range(-(-n // 256))]).numpy()[:n]
        assert len(got[i]) == n and difference_db(ref, got[i]) < -100


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_whole_voice_notes_equal_stepped_ones(backend):
    """WaveRNNSource.render_notes (the frames of a note at once, one sampler call per note, notes on two threads)
    gives what step() gives from start_many, glides included (greedy: the noise is drawn differently)."""
    src = tiny_voice(backend=backend)
    vecs = src.instrument_table[[0, 1, 1]]
    pitches, velocities, glides, lengths = [60, 67, 55], [100.0, 30.0, 127.0], [None, 60, None], [1600, 977, 3300]
    got = src.render_notes(vecs, pitches, velocities, [None] * 3, lengths, glide_from=glides, workers=2)
    ref_src = tiny_voice(backend=backend)
    ref_src.prepare(3)
    ref_src.start_many([0, 1, 2], vecs, pitches, velocities, glide_from=glides)
    steps = -(-max(lengths) // ref_src.hop)
    ref = np.concatenate([ref_src.step([0, 1, 2]) for _ in range(steps)], axis=1)
    for i, n in enumerate(lengths):
        assert len(got[i]) == n and got[i].dtype == np.float32
        np.testing.assert_allclose(got[i], ref[i, :n], atol=1e-6)
    assert np.abs(got[1]).max() > 0 and not np.allclose(got[0][:977], got[1])


def test_the_voice_batches_with_its_own_noise_per_note():
    """At its playing temperature a batch render repeats exactly (on one thread or two); the same note sounds the
    same each time it is computed, other notes draw other noise. The sine voice stand-in (whose render_notes has no
    glides) still renders through the engine."""
    src = tiny_voice(temperature=0.7)
    assert can_batch(src) and not can_batch(SineVoiceSource())
    vecs = src.instrument_table[[0, 0, 0]]
    args = (vecs, [60, 60, 62], [100.0, 100.0, 100.0], [None] * 3, [1600, 1600, 1600])
    one, two = src.render_notes(*args, workers=1), src.render_notes(*args, workers=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[0], one[1])
    greedy = tiny_voice().render_notes(*args)
    assert not np.allclose(one[0], greedy[0])  # noise was drawn
    assert not np.allclose(one[0], one[2])
    mid = busy_song()
    first = render_midi(src, mid, sample_rate=SR, tail_s=0.5, max_voices=8)
    np.testing.assert_array_equal(first, render_midi(src, mid, sample_rate=SR, tail_s=0.5, max_voices=8))


def test_batch_render_equals_the_engine_render(source):
    mid = busy_song()
    args = dict(sample_rate=SR, tail_s=0.5, max_voices=8)
    engine = render_midi(source, mid, batch=False, **args)
    batch = render_midi(source, mid, batch=True, **args)
    assert np.abs(engine).max() > (0.8 if isinstance(source, SineSource) else 0.05)  # the sine drives the limiter
    assert difference_db(engine, batch) < -60


@pytest.mark.parametrize("mono", [False, True])
def test_batch_render_keeps_mono_and_sample_rates(source, mono):
    mid = busy_song(seed=1)
    for sr in (44100, 48000):
        engine = render_midi(source, mid, sample_rate=sr, tail_s=0.2, mono=mono, batch=False)
        batch = render_midi(source, mid, sample_rate=sr, tail_s=0.2, mono=mono, batch=True)
        assert difference_db(engine, batch) < -60


def test_a_wav_streamed_window_by_window_holds_the_render(tmp_path, monkeypatch):
    monkeypatch.setattr(batch_module, "WINDOW", 4096)  # many windows; notes span several
    source = SineSource(n_instruments=3)
    mid = busy_song()
    whole = render_midi(source, mid, SR, tail_s=0.5, batch=False)
    path = tmp_path / "out" / "song.wav"
    frames, peak = render_midi_to_wav(path, source, mid, SR, tail_s=0.5, subtype="FLOAT")
    wav, sr = sf.read(path, dtype="float32")
    assert sr == SR and frames == len(wav) == len(whole) and peak == pytest.approx(np.abs(whole).max(), abs=1e-3)
    assert difference_db(whole, wav) < -60
    assert [p.name for p in path.parent.iterdir()] == ["song.wav"]  # written atomically: no temporary left


def test_memory_holds_a_few_windows_not_the_file(tmp_path):
    """Peak memory of a streamed render hardly grows with the file's length (notes are dropped after their last
    occurrence; the output goes to the file window by window)."""
    source = SineSource(n_instruments=3)

    def song(seconds: int):
        events: list = []
        for i in range(int(seconds / 0.25)):
            events += note(0.25 * i, 0.2, 48 + i % 24, 1 + i % 127)  # velocities make most notes distinct
        return midi(events)

    peaks = []
    for seconds in (30, 240):
        tracemalloc.start()
        render_midi_to_wav(tmp_path / f"{seconds}.wav", source, song(seconds), SR, tail_s=0.5)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] + 8e6  # 8x the music; a whole 240 s float32 render alone would be 46 MB


@pytest.mark.parametrize("kind", ["sine", "voice"])
def test_progress_tells_the_stage_and_reaches_the_end(monkeypatch, kind):
    """Planning, then rendering: after each window and after each batch of notes computed (the voice: after each
    note), never backwards, the share of the work done."""
    monkeypatch.setattr(batch_module, "WINDOW", 8192)
    source = SineSource(n_instruments=3) if kind == "sine" else tiny_voice()
    computed: list[int] = []
    real = source.render_notes
    monkeypatch.setattr(source, "render_notes", lambda *a, **k: computed.append(len(a[4])) or real(*a, **k))
    calls: list[tuple[int, int, str]] = []
    render_midi(source, busy_song(), SR, tail_s=0.5, progress=lambda *a: calls.append(a))
    stages = [c[2] for c in calls]
    assert stages[0] == "planning" and stages[-1] == "rendering"
    assert stages == sorted(stages)  # planning first, then rendering ("p" < "r")
    total = calls[0][1]
    for stage in ("planning", "rendering"):
        done = [c[0] for c in calls if c[2] == stage]
        assert done == sorted(done) and done[-1] == total
    windows = -(-total // 8192)
    per_batch = len(computed) if kind == "sine" else sum(computed)  # the voice reports each note
    assert len([s for s in stages if s == "rendering"]) == windows + per_batch
    if kind == "voice":  # the notes the first windows need are computed first: the bar moves while they are
        first = [c[0] for c in calls if c[2] == "rendering"][: computed[0]]
        assert len(set(first)) > computed[0] // 2 and first[-1] > 8192


def test_a_file_with_an_mpe_zone_renders_through_the_engine(monkeypatch):
    """Per-note bend, pressure and slide live in the real-time mixer: such a file takes the engine path."""
    calls = []
    monkeypatch.setattr(batch_module, "render_batch", lambda *a, **k: calls.append(a) or iter(()))
    mcm = [(0.0, mido.Message("control_change", control=c, value=v)) for c, v in ((101, 0), (100, 6), (6, 15))]
    member = [
        (0.1, mido.Message("note_on", note=60, velocity=100, channel=1)),
        (0.2, mido.Message("pitchwheel", pitch=4000, channel=1)),  # this note's own bend
        (0.6, mido.Message("note_off", note=60, channel=1)),
    ]
    y = render_midi(SineSource(n_instruments=3), midi(mcm + member), SR, tail_s=0.3)
    assert not calls and np.abs(y).max() > 0.05
    render_midi(SineSource(n_instruments=3), midi(member), SR, tail_s=0.3)
    assert len(calls) == 1  # the same notes without the zone: batch
