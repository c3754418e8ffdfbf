"""Shared fixtures: tiny SING models that run in milliseconds on the CPU."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# NEUROSYNTH_TEST_THREADS=1 for parallel runs (mutation testing), which oversubscribe the cores otherwise.
torch.set_num_threads(int(os.environ.get("NEUROSYNTH_TEST_THREADS", min(2, os.cpu_count() or 1))))

from PyQt6.QtCore import QStandardPaths  # noqa: E402

from synth_core.sing import SING, InstrumentInfo, SINGConfig  # noqa: E402

QStandardPaths.setTestModeEnabled(True)  # windows save custom instruments under ~/.qttest, not the user's folder


def tiny_config(n_instruments: int = 3, **kw) -> SINGConfig:
    return SINGConfig(n_instruments=n_instruments, lstm_hidden=32, lstm_layers=2, decoder_channels=48, **kw)


@pytest.fixture
def tiny_model() -> SING:
    torch.manual_seed(0)
    return SING(tiny_config()).eval()


@pytest.fixture
def tiny_instruments() -> list[InstrumentInfo]:
    return [InstrumentInfo("piano", "keyboard"), InstrumentInfo("flute", "flute"), InstrumentInfo("cello", "string")]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny untrained checkpoint with instruments 'sine' and 'square' (saved directly: sing-train would import
    tensorboard, whose matplotlib import makes later Qt painting in this process crash)."""
    from synth_core.sing import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tinyckpt") / "tiny.pt"
    save_checkpoint(path, SING(tiny_config(n_instruments=2)), [InstrumentInfo("sine"), InstrumentInfo("square")])
    return path


@pytest.fixture
def gpu_fails_once(monkeypatch):
    """``arm(source, after=0)``: after ``after`` good steps, the next SingStreamer step (or the first batch of whole
    notes) raises a CUDA error (before touching any state, as a failed kernel launch does) and the source pretends
    it ran on a GPU.

    Returns the list that records the failure, so tests can check it happened.
    """
    from synth_core.sing import batch
    from synth_core.sing.streaming import SingStreamer

    real_step = SingStreamer.step
    real_render = batch.render_notes
    failures: list[int] = []

    def arm(source, after: int = 0):
        good = [0]

        def step_failing_once(self, slots, between=None):
            if not failures and good[0] >= after:
                failures.append(good[0])
                source.device = torch.device("cuda")
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            good[0] += 1
            return real_step(self, slots, between)

        def render_failing_once(*args, **kw):  # batch offline rendering (synth_core.sing.batch)
            if not failures:
                failures.append(0)
                source.device = torch.device("cuda")
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return real_render(*args, **kw)

        monkeypatch.setattr(SingStreamer, "step", step_failing_once)
        monkeypatch.setattr(batch, "render_notes", render_failing_once)
        return failures

    return arm


@pytest.fixture
def jack_dummy():
    """A private JACK server on the dummy driver (48 kHz, 256-frame periods): ``bench.jack_dummy.JackServer``."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (apt install jackd2)")
    from bench.jack_dummy import jack_dummy_server

    with jack_dummy_server(sample_rate=48000, period=256) as server:
        yield server


@pytest.fixture
def jack_server(jack_dummy):
    """The dummy JACK server's PortAudio output device (dict with ``index``, ``name``, ``hostapi``)."""
    return jack_dummy.device


@pytest.fixture
def one_thread():
    """Tiny batched ops gain nothing from threads, and on a busy machine thread hand-offs cost milliseconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sine_frames(midi: torch.Tensor, n: int) -> torch.Tensor:
    """WaveRNN features [len(midi), n, 23] of a steady voiced tone at each pitch (loudness 40, flat envelope)."""
    f = torch.zeros(len(midi), n, 23)
    f[..., 0] = ((midi - 60) / 24)[:, None]
    f[..., 1] = 1.0
    f[..., 2] = 40 / 25
    return f


def train_on_sines(model, steps: int) -> list[float]:
    """Teacher-force ``model`` on sines at random pitches 48-72 (their own pitch clock); the losses per step."""
    from synth_core.wavernn import excitation

    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(steps):
        f = sine_frames(torch.rand(8, generator=gen) * 24 + 48, 2)
        audio = 0.5 * excitation(f, model.config.hop, model.config.sample_rate)[0][..., 0]
        loss, _ = model.loss(f, audio)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.apply_masks()
        losses.append(float(loss.detach()))
    return losses


@pytest.fixture
def sampler_gpu_fails_once(monkeypatch):
    """``arm(sampler)``: the sampler pretends to run on a GPU and its next ``_generate`` raises a CUDA error.

    Returns the list of devices ``_generate`` was called on, so tests can check the retry on the CPU."""

    def arm(sampler):
        cls = type(sampler)
        real, calls = cls._generate, []

        def fail_once(self, *args):
            calls.append(self.device.type)
            if len(calls) == 1:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return real(self, *args)

        sampler.device = torch.device("cuda")
        monkeypatch.setattr(cls, "_generate", fail_once)
        return calls

    return arm


def pull(engine, seconds: float, block: int = 256) -> np.ndarray:
    """Call render() like an audio callback, at roughly real-time pace (the worker renders ahead)."""
    out = []
    for _ in range(int(seconds * engine.sample_rate / block)):
        out.append(engine.render(block).copy())
        time.sleep(0.5 * block / engine.sample_rate)
    return np.concatenate(out)
