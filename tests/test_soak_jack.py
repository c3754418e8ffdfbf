"""Soak (the suite's one long test, 30 s): 16 SING voices through the real engine and JACK's dummy driver.

A SING of the shipped size (LSTM 3 x 256, decoder 512) with random weights, fp32 (the app's bf16 warm-up on
CPUs with native bf16 only makes note starts cheaper), plays
16-note chords that are released and replaced every 2 s (the released voices are stolen), at the app's
defaults: 48 kHz, 256-frame blocks, ``EngineConfig`` defaults (16 voices, 0.25 s render-ahead, note cache),
through JACK's paced dummy driver.

What is asserted is what the engine guarantees whatever the machine is doing: no audio or worker error,
every chord played, sound all along, every voice stepped, nothing left sounding after the last note-off.
Dropouts a listener hears are compared with a baseline measured in the same test: the same server playing silence
through the same native callback for 10 s; the soak may have at most that rate of device underflows and jackd
xruns plus 3, and at most 3 late blocks (the feeder mixing too late), plus what the hypervisor's steal during the
run explains (``bench.jack_dummy.allowed_dropouts``: on a VM, seconds of steal stall jackd too; none on a machine
without it).
Engine timing is asserted only with a wide, measured margin, so that two busy shared cores cannot fail it by chance:
on the 2-core dev machine with another process keeping one core busy this load used 19 % of the worker's
time on average (46 % at the peaks, 0 underruns); the test allows underruns in at most 2 % of the blocks
(a starved worker underruns far more), and 90 % of the voice steps. The strict figures (0 underruns,
32 voices, 10 minutes) are ``bench/soak.py``'s, recorded in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import json

import pytest
import torch

from bench.jack_dummy import allowed_dropouts, baseline_dropouts, steal_allowance
from bench.soak import random_source, run_soak
from synth_core.engine import EngineConfig

pytestmark = pytest.mark.jack

SECONDS = 30.0
VOICES = 16
PERIOD_S = 2.0
BASELINE_S = 10.0
DROPOUT_MARGIN = 3  # device underflows / xruns / late blocks allowed beyond the baseline's rate


def test_soak_16_voices_plays_every_chord_and_leaves_nothing_sounding(jack_dummy):
    config = EngineConfig(sample_rate=48000, block_size=256)  # the app's defaults (sing-app --sample-rate/--block-size)
    assert config.max_voices == VOICES and config.render_ahead_s == 0.25
    baseline = baseline_dropouts(jack_dummy, BASELINE_S)  # the same server playing silence: what the machine costs
    result = run_soak(
        random_source("cpu", dtype=torch.float32, size="shipped"),
        jack_dummy.device["index"],
        SECONDS,
        VOICES,
        PERIOD_S,
        config,
        jack_dummy,
    )
    report = json.dumps({"baseline": baseline, **result}, indent=1)
    print(report)
    assert result["audio_error"] is None and result["worker_error"] is None, report
    assert result["chords_played"] == int(SECONDS / PERIOD_S), report
    assert result["max_active_voices"] >= VOICES, report
    assert result["silent_polls"] == 0 and result["output_ac_rms"]["min"] > 1e-2, report
    assert result["active_voices_at_end"] == 0 and result["tail_peak_after_release"] == 0.0, report
    notes = result["chords_played"] * VOICES  # every note reached the audio side, from the cache or the model
    assert result["notes_in_engine_log"] == notes, report
    for log in ("note_on_latency_ms", "note_on_to_block_ms"):
        assert result[log]["cold"]["notes"] + result[log]["cached"]["notes"] == notes, report
    assert result["note_on_latency_ms"]["cached"]["notes"] > 0, report  # the chords' voicings repeat
    # timing, with a wide margin (see the module docstring): a starved or blocked worker fails both
    blocks = result["seconds"] * config.sample_rate / config.block_size
    assert result["underruns"] <= 0.02 * blocks, report
    assert result["slot_hops"] >= 0.9 * VOICES * result["seconds"] * 16000 / 256, report
    # what a listener hears: the sound card is never late beyond what the machine costs playing silence
    steal = result["host_steal_s"]
    for key in ("device_underflows", "jack_xruns"):
        assert result[key] <= allowed_dropouts(baseline, key, result["seconds"], DROPOUT_MARGIN, steal), report
    assert result["late_blocks"] <= DROPOUT_MARGIN + steal_allowance(steal), report
