"""The start-up speed probe: warm-up precision and torch threads of a CPU engine are measured, not read off a flag."""

from __future__ import annotations

import pytest
import torch

from synth_core.device import use_realtime_threads
from synth_core.engine import SingSource
from synth_core.sing import SING
from synth_core.sing import speed_probe as sp
from synth_core.sing.speed_probe import SpeedChoice, choose_threads, choose_warmup, probe_speed


@pytest.fixture
def fake_times(monkeypatch):
    """Inject the probe's timings: ``fake_times(bf16=..., threads=..., **ms)`` sets whether bf16 runs, the thread
    count tried against 1 and the ms per measurement ("warmup fp32", "warmup bf16", "step 1", "step 2"); each
    measured function still runs once. Returns the labels measured, in order."""
    measured: list[str] = []

    def setup(bf16: bool = True, threads: int = 2, **ms: float) -> list[str]:
        table = {k.replace("_", " "): v for k, v in ms.items()}
        monkeypatch.setattr(sp, "bf16_runs", lambda device: bf16 and device.type == "cpu")
        monkeypatch.setattr(sp, "thread_candidate", lambda: threads)
        monkeypatch.setattr(sp, "_cache", {})

        def time_ms(label, fn, reps=sp.REPS, give_up_ms=None):
            fn()
            measured.append(label)
            return table[label]

        monkeypatch.setattr(sp, "_time_ms", time_ms)
        return measured

    threads = torch.get_num_threads()
    yield setup
    torch.set_num_threads(threads)


def test_the_probe_returns_a_valid_choice_and_its_times(tiny_model):
    threads = torch.get_num_threads()
    choice = probe_speed(tiny_model)
    assert torch.get_num_threads() == threads  # the probe leaves torch's threads as it found them
    assert choice.warmup_dtype in (None, torch.bfloat16) and choice.threads >= 1
    more = sp.thread_candidate()
    assert set(choice.step_ms) == ({1, more} if more > 1 else set()) and choice.threads in ({*choice.step_ms} or {1})
    assert set(choice.warmup_ms) == ({"fp32", "bf16"} if sp.bf16_runs(torch.device("cpu")) else set())
    assert all(ms > 0 for ms in [*choice.warmup_ms.values(), *choice.step_ms.values()]) and choice.probe_ms >= 0
    assert choice.summary().startswith(f"warm-up {choice.warmup_name}") and "torch thread" in choice.summary()


def test_bf16_only_when_clearly_faster():
    assert choose_warmup(10.0, 8.0) == torch.bfloat16  # 20 % faster
    assert choose_warmup(10.0, 9.0) is None  # 10 %: not clearly
    assert choose_warmup(10.0, 13.0) is None  # slower (the Xeon case)
    assert choose_warmup(10.0, None) is None  # bf16 did not run


def test_more_threads_only_when_clearly_faster_a_tie_is_one():
    assert choose_threads({1: 10.0, 2: 10.0}) == 1
    assert choose_threads({1: 10.0, 2: 8.0}) == 1  # 20 %: the audio callback, not in the probe, needs a core
    assert choose_threads({1: 10.0, 2: 6.0}) == 2
    assert choose_threads({1: 6.0, 2: 10.0}) == 1
    assert choose_threads({}) == 1


def test_the_probe_picks_fp32_when_bf16_is_not_faster(tiny_model, fake_times):
    measured = fake_times(warmup_fp32=3.0, warmup_bf16=4.1, step_1=3.0, step_2=3.0)
    choice = probe_speed(tiny_model)
    assert measured == ["step 1", "step 2", "warmup fp32", "warmup bf16"]
    assert choice == SpeedChoice(None, 1, {"fp32": 3.0, "bf16": 4.1}, {1: 3.0, 2: 3.0}, choice.probe_ms)
    assert choice.summary() == "warm-up fp32 (fp32 3.0 ms, bf16 4.1 ms), 1 torch thread (1: 3.0 ms, 2: 3.0 ms)"


def test_the_probe_picks_bf16_and_threads_when_clearly_faster(tiny_model, fake_times):
    fake_times(warmup_fp32=3.0, warmup_bf16=2.0, step_1=3.0, step_2=1.5)
    choice = probe_speed(tiny_model)
    assert (choice.warmup_dtype, choice.threads) == (torch.bfloat16, 2)


def test_threads_are_tried_only_with_a_core_left_to_the_audio(monkeypatch):
    monkeypatch.setattr(sp, "torch_default_threads", lambda: 2)
    assert sp.thread_candidate() == 1  # two cores: one for torch, one for the audio callback, nothing to try
    monkeypatch.setattr(sp, "torch_default_threads", lambda: 8)
    assert sp.thread_candidate() == 7


def test_no_bf16_where_it_does_not_run_or_on_a_gpu(tiny_model, fake_times):
    measured = fake_times(bf16=False, threads=1, warmup_fp32=3.0, warmup_bf16=1.0)
    assert probe_speed(tiny_model) == SpeedChoice(None, 1)  # nothing to choose: nothing timed
    assert measured == []
    assert not sp.bf16_runs(torch.device("cuda")) and not sp.bf16_runs(torch.device("meta"))
    fake_times(warmup_fp32=3.0, warmup_bf16=1.0, step_1=3.0, step_2=1.0)
    off_cpu = SING(tiny_model.config).to("meta")  # any model not on the CPU: not probed, torch's threads
    assert probe_speed(off_cpu) == SpeedChoice(None, torch.get_num_threads()) and measured == []


def test_sing_source_auto_takes_the_probes_choice(tiny_model, fake_times):
    for bf16_ms, expected in ((2.0, torch.bfloat16), (3.5, None)):
        fake_times(warmup_fp32=3.0, warmup_bf16=bf16_ms, step_1=3.0, step_2=3.0)
        src = SingSource(tiny_model, warmup_dtype="auto")
        assert src.speed is not None and src.warmup_dtype == src.speed.warmup_dtype == expected
        src.prepare(4)
        assert src.streamer.warmup.dtype == (expected or torch.float32)
    fixed = SingSource(tiny_model, warmup_dtype=None)
    assert fixed.speed is None and fixed.warmup_dtype is None  # a given precision: no probe


def test_falling_back_to_the_cpu_takes_the_probes_choice(tiny_model, fake_times):
    src = SingSource(tiny_model, warmup_dtype="auto")
    src.prepare(3)
    src.device = torch.device("meta")  # stands in for a GPU that failed (the model itself stays on the CPU)
    fake_times(warmup_fp32=3.0, warmup_bf16=2.0, step_1=3.0, step_2=1.0)
    assert src.fall_back_to_cpu() and src.device.type == "cpu"
    assert src.warmup_dtype == torch.bfloat16 and src.streamer.warmup.dtype == torch.bfloat16
    assert torch.get_num_threads() == 2 and src.streamer.max_voices == 3


def test_use_realtime_threads_takes_the_measured_count():
    threads = torch.get_num_threads()
    try:
        use_realtime_threads(torch.device("cpu"), 2)
        assert torch.get_num_threads() == 2
        use_realtime_threads(torch.device("cpu"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
