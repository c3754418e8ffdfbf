"""The voice sources behind the engine (the sine test source, SING) and the engine playing them: checkpoints,
the sustain freeze, bf16, GPU failures falling back to the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth_core.engine import Engine, EngineConfig, SineSource, SingSource
from synth_core.sing.streaming import SingStreamer
from tests.engine_helpers import (
    SR,
    on,
    pull_real_time,
    rms,
    seg,
    threaded_render,
    tiny_sing_source,
)


def test_the_sine_source_plays_its_documented_tone():
    """``--sine`` (no weights needed): harmonics 1..4 at 1/k, 0.25 * velocity / 127, phase-continuous hops."""
    src = SineSource()
    assert (src.sample_rate, src.hop, src.harmonics, len(src.instruments)) == (16000, 256, 4, 2)
    assert [(i.name, i.family) for i in src.instruments] == [("sine0", "synth_lead"), ("sine1", "synth_lead")]
    np.testing.assert_array_equal(src.instrument_table, np.eye(2, 16, dtype=np.float32))
    assert src.instrument_table.dtype == np.float32 and src.device_name == "CPU (sine test source)"
    assert len(src.freq) == 1  # prepared for one slot until the engine says otherwise
    src.prepare(3)
    src.start_many([1, 2], None, [69, 57], [127, 64])
    a, b = src.step([1, 2]), src.step([1, 2])
    t = np.arange(512) / 16000
    for row, (f, amp) in enumerate([(440.0, 0.25), (220.0, 0.25 * 64 / 127)]):
        want = amp * sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
        np.testing.assert_allclose(np.concatenate([a[row], b[row]]), want, atol=1e-6)
    assert a.dtype == np.float32
    state = src.save_state(1)
    src.start_many([1], None, [60], [1])
    src.load_state(1, state)
    np.testing.assert_array_equal(src.step([1])[0], src_step_after(state))
    assert state[2] == 512


def src_step_after(state) -> np.ndarray:
    """The hop a fresh sine source plays from a saved state (freq, amp, samples so far)."""
    ref = SineSource()
    ref.load_state(0, state)
    return ref.step([0])[0]


def test_sing_source_loads_names_and_plays_a_checkpoint(tiny_model, tiny_instruments, tmp_path):
    from synth_core.engine import SingSource
    from synth_core.engine.sources import load_default_source
    from synth_core.sing import save_checkpoint
    from synth_core.sing.checkpoint import CheckpointError

    src = SingSource(tiny_model)
    assert [i.name for i in src.instruments] == ["instrument 0", "instrument 1", "instrument 2"]
    assert src.streamer.max_voices == 1 and src.checkpoint_path is None
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    loaded = load_default_source("cpu", path)
    assert loaded.checkpoint_path == path and [i.name for i in loaded.instruments] == [i.name for i in tiny_instruments]
    np.testing.assert_array_equal(loaded.instrument_table, tiny_model.instrument_table.detach().numpy())
    loaded.prepare(4)
    assert loaded.streamer.max_voices == 4 and loaded.streamer.dtype == loaded.dtype
    with pytest.raises(FileNotFoundError, match="default SING weights not found at .*nope.pt; train them"):
        load_default_source("cpu", tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        load_default_source("cpu", tmp_path / "bad.pt")
    assert "restore them" not in str(err.value)  # only the shipped file gets the restore hint


def test_sing_source_clamps_pitches_to_what_sing_knows_and_freezes_at_the_frame_centred_on_the_time(tiny_model):
    from synth_core.engine import SingSource

    src = SingSource(tiny_model)
    src.prepare(6)
    vec = np.repeat(tiny_model.instrument_table[:1].detach().numpy(), 6, axis=0)
    src.start_many(range(6), vec, [120, 130, 119, -5, 0, 1], [100] * 6)
    out = np.concatenate([src.step(range(6)) for _ in range(12)], axis=1)
    np.testing.assert_allclose(out[1], out[0], atol=1e-6)  # above MIDI 120: 120
    np.testing.assert_allclose(out[3], out[4], atol=1e-6)  # below 0: 0
    assert np.abs(out[0] - out[2]).max() > 1e-4 and np.abs(out[4] - out[5]).max() > 1e-4  # a random tiny model
    c = tiny_model.config
    for seconds in (0.5, 1.0, 3.0):
        k = src.sustain_step(seconds)
        centre = k * c.hop - c.pad + c.frame // 2  # the output sample at the centre of step k's frame
        assert abs(centre - seconds * c.sample_rate) < c.hop
    assert src.sustain_step(0.0) == c.context and src.sustain_step(None) is None
    assert src.fall_back_to_cpu() is False and src.device.type == "cpu"  # already there: nothing to do


def test_the_sing_checkpoint_comes_from_the_environment_and_a_damaged_default_says_how_to_restore_it(
    tiny_model, tiny_instruments, tmp_path, monkeypatch
):
    from synth_core.engine import sources
    from synth_core.sing import save_checkpoint
    from synth_core.sing.checkpoint import CheckpointError

    path = tmp_path / "env.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    monkeypatch.setenv("NEUROSYNTH_SING_CHECKPOINT", str(path))
    assert sources.load_default_source("cpu").checkpoint_path == path
    monkeypatch.delenv("NEUROSYNTH_SING_CHECKPOINT")
    junk = tmp_path / "sing_default.pt"
    junk.write_bytes(b"junk")
    monkeypatch.setattr(sources, "DEFAULT_CHECKPOINT", junk)
    with pytest.raises(CheckpointError, match="restore them with `git checkout -- assets/sing_default.pt`"):
        sources.load_default_source("cpu")
    monkeypatch.setattr(sources, "DEFAULT_CHECKPOINT", tmp_path / "gone.pt")
    with pytest.raises(FileNotFoundError, match=r"or set NEUROSYNTH_SING_CHECKPOINT\)$"):
        sources.load_default_source("cpu")


def test_load_default_source_missing_weights_is_clear(tmp_path, monkeypatch):
    from synth_core.engine import load_default_source

    monkeypatch.delenv("NEUROSYNTH_SING_CHECKPOINT", raising=False)
    with pytest.raises(FileNotFoundError, match="default SING weights not found"):
        load_default_source(path=tmp_path / "missing.pt")


def test_sing_source_from_checkpoint(tmp_path, tiny_model, tiny_instruments):
    from synth_core.engine import load_default_source
    from synth_core.sing import save_checkpoint

    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    src = SingSource.from_checkpoint(path, device="cpu")
    assert [i.name for i in src.instruments] == ["piano", "flute", "cello"]
    np.testing.assert_allclose(src.instrument_table, tiny_model.instrument_table.detach().numpy())
    assert load_default_source(device="cpu", path=path).instruments[2].family == "string"


def test_a_sing_state_saved_before_the_first_step_keeps_the_first_hop(tiny_model, tiny_instruments):
    """SING's warm-up computes a note's first hop ahead; a state saved before it is stepped out carries it."""
    from synth_core.engine import SingSource

    src = SingSource(tiny_model, tiny_instruments)
    src.prepare(3)
    src.start_many([0], src.instrument_table[:1], [60], [100.0])
    state = src.save_state(0)
    first = src.step([0])
    src.load_state(1, state)
    np.testing.assert_array_equal(src.step([1]), first)
    np.testing.assert_allclose(src.step([1]), src.step([0]), atol=1e-6)  # and both go on alike
    src.load_state(2, src.save_state(0))  # saved after the first hop: nothing pending
    assert 2 not in src.streamer.pending and np.abs(first).max() > 0


def test_sing_source_sustain_policy(tiny_model, tiny_instruments):
    src = tiny_sing_source(tiny_model, tiny_instruments)
    step = src.sustain_step(2.5)
    c = tiny_model.config
    assert c.context < step < c.n_steps - 1
    assert src.sustain_step(None) is None
    y = Engine(src, EngineConfig(sustain_s=0.5)).render_offline([(0, on(60))], int(1.2 * SR))
    # frozen time embedding: the sound keeps going past the frozen point
    assert rms(seg(y, 1.0, 1.2)) > 0


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


def test_sing_source_real_time_end_to_end(tiny_model, tiny_instruments):
    src = tiny_sing_source(tiny_model, tiny_instruments)
    assert src.instrument_table.shape == (3, 16) and src.device_name.startswith("CPU")
    e = Engine(src, EngineConfig(max_voices=4))
    e.set_instrument(1)
    e.start()
    try:
        e.note_on(60, 100)
        e.note_on(64, 80)
        y = pull_real_time(e, 1.0)
        assert np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0
        assert e.stats().active_voices == 2
        assert e.worker_error is None
    finally:
        e.stop()


def test_bf16_sing_source_runs(tiny_model, tiny_instruments):
    src = SingSource(tiny_model, tiny_instruments, dtype=torch.bfloat16)
    y = Engine(src).render_offline([(0, on(60))], SR // 4)
    ref = Engine(tiny_sing_source(tiny_model, tiny_instruments)).render_offline([(0, on(60))], SR // 4)
    snr_db = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((y - ref).astype(np.float64) ** 2))
    assert snr_db > 35  # bf16 keeps 8 significant bits (~48 dB); measured 57 dB on this model


def test_out_of_range_pitch_and_bad_vector_do_not_break_sing(tiny_model, tiny_instruments):
    e = Engine(SingSource(tiny_model, tiny_instruments))
    e.set_instrument_vector(np.ones(5))  # wrong size: ignored
    assert e.instrument_vector().shape == (16,)
    y = e.render_offline([(0, on(127)), (0, on(0))], SR // 4)
    assert np.all(np.isfinite(y)) and e.worker_error is None


def test_gpu_failure_in_worker_falls_back_to_cpu(tiny_model, tiny_instruments, gpu_fails_once):
    src = tiny_sing_source(tiny_model, tiny_instruments)
    failures = gpu_fails_once(src)
    e = Engine(src, EngineConfig(max_voices=4))
    e.start()
    try:
        e.note_on(60, 100)
        y = pull_real_time(e, 1.0)
        assert failures and src.device.type == "cpu"
        assert "GPU failed" in e.stats().device_name
        assert np.max(np.abs(y)) > 0  # the note still sounds
    finally:
        e.stop()


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
