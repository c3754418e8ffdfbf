"""The native audio path without a device: the compiled callback reads the output ring the feeder fills."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine.feeder import BlockFeeder
from synth_core.engine.output_ring import OutputRing

native = pytest.importorskip("synth_core.engine.native_callback")
PaCallback = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64,
    ctypes.c_void_p,
)  # fmt: skip
call = PaCallback(native.pa_callback.address)


def device_block(ring: OutputRing, frames: int, channels: int, status: int = 0) -> np.ndarray:
    """What PortAudio would get from one callback (interleaved)."""
    out = np.full(frames * channels, np.nan, np.float32)
    assert call(None, out.ctypes.data, frames, None, status, ring.address) == 0  # paContinue
    return out.reshape(frames, channels)


def test_the_callback_copies_blocks_to_every_channel_and_counts_what_went_wrong():
    ring = OutputRing(1024, channels=2)
    try:
        ring.write(np.arange(300, dtype=np.float32))
        a = device_block(ring, 256, 2, status=4)  # paOutputUnderflow
        assert np.array_equal(a[:, 0], np.arange(256)) and np.array_equal(a[:, 0], a[:, 1])
        assert (ring.underflows, ring.late_blocks, ring.callbacks, ring.fill()) == (1, 0, 1, 44)
        b = device_block(ring, 256, 2)  # 44 left: the rest of the block is silence, counted late
        assert np.array_equal(b[:44, 0], np.arange(256, 300)) and np.all(b[44:] == 0.0)
        assert (ring.underflows, ring.late_blocks, ring.late_frames, ring.fill()) == (1, 1, 212, 0)
        ring.wait(1.0)  # the callback woke the feeder (returns at once)
        for _ in range(5):  # wraps around the ring
            ring.write(np.full(256, 0.5, np.float32))
            assert np.all(device_block(ring, 256, 1 + 1) == 0.5)
    finally:
        ring.close()


def test_the_callback_notes_the_thread_it_runs_in():
    ring = OutputRing(1024)
    seen: list[int] = []

    def device_thread() -> None:
        seen.append(threading.get_native_id())
        device_block(ring, 256, 1)
        device_block(ring, 256, 1)

    try:
        assert ring.callback_thread == 0
        t = threading.Thread(target=device_thread)
        t.start()
        t.join()
        assert ring.callback_thread == seen[0] != threading.get_native_id()
    finally:
        ring.close()


def test_the_feeder_keeps_the_ring_ahead_and_the_engine_plays_through_it():
    engine = Engine(SineSource(), EngineConfig(sample_rate=48000))
    engine.synchronous = True
    ring = OutputRing(8192, channels=1)
    feeder = BlockFeeder(engine.render, ring, 256, 3 * 256)
    engine.note_on(69, 100)
    feeder.fill()
    assert ring.fill() == 3 * 256  # ahead before the device asks
    played = []
    for _ in range(60):  # the device's thread: play a block, the feeder tops the ring up
        played.append(device_block(ring, 256, 1)[:, 0])
        feeder.fill()
        assert ring.fill() == 3 * 256
    y = np.concatenate(played)
    assert ring.late_blocks == 0
    assert estimate_f0(y[-8192:], 48000) == pytest.approx(440.0, rel=0.005)
    ring.close()


def test_a_failing_render_plays_silence_and_is_reported_once():
    calls = []

    def broken(frames, out):
        calls.append(frames)
        out[:] = 0.7
        raise RuntimeError("boom")

    ring = OutputRing(4096)
    feeder = BlockFeeder(broken, ring, 256, 512)
    feeder.fill()
    feeder.fill()
    assert len(calls) == 2 and isinstance(feeder.error, RuntimeError)
    assert np.all(device_block(ring, 512, 1) == 0.0)
    ring.close()


def test_the_feeder_thread_stops_when_woken():
    ring = OutputRing(4096)
    feeder = BlockFeeder(lambda n, out: out.fill(0.0), ring, 256, 512)
    before = set(threading.enumerate())
    feeder.start()
    (thread,) = set(threading.enumerate()) - before
    assert thread.name == "audio-feeder" and thread.is_alive()
    feeder.stop()  # no device plays: only the wake-up can end its wait
    assert not thread.is_alive()
    ring.close()
