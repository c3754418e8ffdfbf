"""Offline rendering (render_offline, reset) and its equivalence with the threaded engine."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from synth_core.engine import Engine, EngineConfig, SineSource
from tests.engine_helpers import (
    SR,
    engine,
    held,
    live,
    off,
    on,
    pedal,
    play,
    threaded_render,
)


def test_offline_render_is_deterministic():
    events = [(0, on(60)), (1000, on(64)), (20000, mido.Message("pitchwheel", pitch=-4000)), (30000, off(60))]
    a = engine().render_offline(events, SR)
    b = engine().render_offline(events, SR)
    assert np.array_equal(a, b)


def test_render_offline_reports_progress_and_refuses_a_running_engine():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    seen: list[int] = []
    out = e.render_offline([(0, on(60)), (0, on(64)), (1000, off(60)), (1000, off(64))], 3000, seen.append)
    assert seen == [1000, 3000] and out.dtype == np.float32 and len(out) == 3000 and not e.synchronous
    e.start()
    try:
        with pytest.raises(RuntimeError, match="render_offline needs a stopped engine"):
            e.render_offline([], 10)
    finally:
        e.stop()


def test_reset_keeps_the_rate_gain_and_vector_queued_before_it():
    e = live()
    e.set_sample_rate(44100)
    e.set_master_gain(0.5)
    e.set_pitch_bend(3.0)
    e.reset()
    assert e.sample_rate == 44100 and e.master_gain == 0.5
    assert [e.pitch_bend(c) for c in range(16)] == [0.0] * 16 and [e.mono_keys(c) for c in range(16)] == [[]] * 16
    play(e, pedal(True, ch=15), on(60, ch=15), off(60, ch=15), blocks=2)  # every channel works after the reset
    assert held(e) == [(15, 60)] and e.stats().underruns == 0


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
