"""Helpers the engine tests share: MIDI messages, a synchronously driven engine, what its voices do."""

from __future__ import annotations

import time

import mido
import numpy as np

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource, SingSource
from synth_core.engine.voice import FREE

SR = 48000
BLOCK = 256


def seg(y, t0, t1, sr=SR):
    return y[int(t0 * sr) : int(t1 * sr)]


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def held_notes(engine) -> list[int]:
    """Notes of the voices that sound and are not releasing (audio-side state)."""
    return sorted(v.note for v in engine.voices if v.state != 0 and v.rel_len == 0)


def rms_at(y, t0, t1):
    return float(np.sqrt(np.mean(y[int(t0 * SR) : int(t1 * SR)] ** 2)))


def pull_real_time(e: Engine, seconds: float, block: int = 256) -> np.ndarray:
    """Call render() at the audio pace for ``seconds``, like an audio callback would."""
    blocks = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        blocks.append(e.render(block).copy())
        time.sleep(block / SR)
    return np.concatenate(blocks)


def engine(sr=SR, **kw) -> Engine:
    return Engine(SineSource(), EngineConfig(sample_rate=sr, **kw))


def on(note, vel=100, ch=0):
    return mido.Message("note_on", note=note, velocity=vel, channel=ch)


def off(note, ch=0):
    return mido.Message("note_off", note=note, channel=ch)


def cc(control: int, value: int, ch: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=ch)


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

    def render_notes(self, vecs, pitches, velocities, sustain_steps, lengths) -> list[np.ndarray]:
        for v, p, vel in zip(vecs, pitches, velocities, strict=True):  # (batch offline rendering; slot -1)
            self.starts.append((-1, int(p), float(vel), np.array(v)))
        return super().render_notes(vecs, pitches, velocities, sustain_steps, lengths)


def live(source=None, **config) -> Engine:
    """An engine driven synchronously block by block (like render_offline, without its final reset)."""
    e = Engine(source or SineSource(), EngineConfig(sample_rate=SR, **config))
    e.synchronous = True
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


def sounding(e: Engine) -> list[tuple[int, int]]:
    return sorted((v.channel, v.note) for v in e.voices if v.state != FREE)


def two_channels(e: Engine) -> None:
    play(e, on(60, ch=0), on(64, ch=3), blocks=2)


def f0_at(y, t0, t1):
    return estimate_f0(y[int(t0 * SR) : int(t1 * SR)], SR)


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


def tiny_sing_source(tiny_model, tiny_instruments) -> SingSource:
    return SingSource(tiny_model, tiny_instruments)


class CountingSource(SineSource):
    """Records every warm-up (the notes it started)."""

    def __init__(self):
        super().__init__()
        self.started: list[int] = []

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None) -> None:
        self.started += [int(p) for p in pitches]
        super().start_many(slots, vecs, pitches, velocities, sustain_steps)
