"""What the engine reports: stats, the scope's output history, recording to a WAV file."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from tests.engine_helpers import (
    SR,
    engine,
    live,
    on,
    play,
)


def test_stats_report_the_rate_load_and_block():
    e = live()
    e.set_output_latency(0.012, block_size=512)
    e.set_output_latency(0.02)
    play(e, on(60), blocks=2)
    s = e.stats()
    assert (s.sample_rate, s.block_size, s.output_latency_s) == (SR, 512, 0.02)
    assert s.render_load == 0.0 and s.active_voices == 1  # no worker thread ran: no load


def test_scope_returns_the_last_samples():
    e = live()
    audio = play(e, on(69), blocks=4)
    np.testing.assert_array_equal(e.scope(100), audio[-100:])
    assert e.scope(0).shape == (0,) and e.scope(-5).shape == (0,)


def test_scope_and_recording(tmp_path):
    import soundfile as sf

    e = engine()
    e.start_recording(tmp_path / "rec.wav")
    y = e.render_offline([(0, on(69))], SR // 2)
    path = e.stop_recording()
    np.testing.assert_array_equal(e.scope(1000), y[-1000:])
    rec, sr = sf.read(path, dtype="float32")
    assert sr == SR and np.array_equal(rec, y)


def test_recording_writes_float_wav_and_stops_once(tmp_path):
    e = live()
    assert not e.recording
    e.start_recording(tmp_path / "take.wav")
    assert e.recording
    audio = play(e, on(69), blocks=6)
    assert e.stop_recording() == tmp_path / "take.wav"
    assert e.stop_recording() is None and not e.recording
    data, sr = sf.read(tmp_path / "take.wav", dtype="float32")
    assert sf.info(tmp_path / "take.wav").subtype == "FLOAT" and sr == SR
    np.testing.assert_array_equal(data, audio)
