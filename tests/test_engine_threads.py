"""The engine running in real time: the worker thread, render never blocking on it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource
from tests.engine_helpers import (
    SR,
    engine,
)


def test_the_worker_thread_never_keeps_the_process_alive():
    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    e.start()
    try:
        (worker,) = [t for t in threading.enumerate() if t.name == "engine-worker"]
        assert worker.daemon and e.running
    finally:
        e.stop()


def test_starting_the_engine_takes_what_exists_out_of_full_garbage_collections():
    """A full collection over the models and the GUI held the GIL for ~70 ms now and then (voices underran)."""
    import gc

    e = Engine(SineSource(), EngineConfig(sample_rate=SR))
    gc.unfreeze()
    e.start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        e.stop()


def test_render_never_blocks_while_worker_is_busy():
    e = Engine(SineSource(step_delay_s=0.15), EngineConfig())
    e.start()
    try:
        e.note_on(69, 100)
        worst = 0.0
        deadline = time.perf_counter() + 0.8
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            e.render(256)
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(256 / SR)
        assert worst < 0.05
        assert e.stats().underruns > 0
    finally:
        e.stop()


def test_threaded_engine_plays_the_right_pitch():
    e = engine()
    e.start()
    try:
        e.note_on(69, 100)
        blocks = []
        for _ in range(300):
            blocks.append(e.render(256).copy())
            time.sleep(0.002)
        y = np.concatenate(blocks)
        assert estimate_f0(y[-SR // 2 :], SR) == pytest.approx(440.0, rel=0.005)
        assert e.stats().note_latency_s < 0.5
    finally:
        e.stop()
