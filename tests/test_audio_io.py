"""AudioOutput with a fake sounddevice stream, device errors, and MidiInput.feed."""

from __future__ import annotations

import threading
import time

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine import audio_output as ao
from synth_core.engine.midi_input import MidiInput, list_midi_ports


class FakeStream:
    """Calls the callback from its own thread at the real block pace and records the output."""

    recorded: list[np.ndarray] = []

    def __init__(self, samplerate, blocksize, device, channels, dtype, latency, callback):
        self.sr, self.block, self.channels, self.callback = samplerate, blocksize, channels, callback
        self.latency = blocksize / samplerate * 2
        self.active = False
        self._thread = None

    def _run(self):
        status = type("Status", (), {"output_underflow": False})()
        while self.active:
            out = np.zeros((self.block, self.channels), np.float32)
            self.callback(out, self.block, None, status)
            FakeStream.recorded.append(out)
            time.sleep(self.block / self.sr)

    def start(self):
        self.active = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self):
        self.active = False
        self._thread.join()

    def close(self):
        pass


@pytest.fixture
def fake_sd(monkeypatch):
    import sounddevice as sd

    FakeStream.recorded = []
    monkeypatch.setattr(sd, "OutputStream", FakeStream)
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: {"name": "fake", "max_output_channels": 2})
    return sd


def test_audio_output_plays_engine_through_callback(fake_sd):
    engine = Engine(SineSource(), EngineConfig(sample_rate=44100))
    engine.start()
    out = ao.AudioOutput(engine, sample_rate=48000, block_size=256, callback="python")
    try:
        out.start()
        assert out.active and engine.stats().output_latency_s == pytest.approx(out.latency_s)
        engine.note_on(69, 100)
        time.sleep(0.8)
    finally:
        out.stop()
        engine.stop()
    y = np.concatenate(FakeStream.recorded)
    assert y.shape[1] == 2 and np.array_equal(y[:, 0], y[:, 1])
    assert engine.sample_rate == 48000  # the engine follows the device rate
    assert estimate_f0(y[-12000:, 0], 48000) == pytest.approx(440.0, rel=0.005)


def test_missing_device_raises_clear_error(monkeypatch):
    import sounddevice as sd

    def no_device(*a, **k):
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "query_devices", no_device)
    out = ao.AudioOutput(Engine(SineSource()))
    with pytest.raises(ao.AudioDeviceError, match="no audio output device"):
        out.start()
    assert ao.list_output_devices() == []


def test_midi_input_feed_reaches_engine():
    engine = Engine(SineSource(), EngineConfig())
    midi = MidiInput(engine.handle_midi)
    engine.start()
    try:
        midi.feed(mido.Message("note_on", note=69, velocity=100))
        midi.feed(mido.Message("sysex", data=[1]))
        blocks = []
        for _ in range(150):
            blocks.append(engine.render(256).copy())
            time.sleep(0.002)
    finally:
        engine.stop()
    y = np.concatenate(blocks)
    assert estimate_f0(y[-16000:], 48000) == pytest.approx(440.0, rel=0.005)


def test_midi_input_open_unknown_port_and_rescan():
    midi = MidiInput(lambda m: None)
    with pytest.raises(ValueError, match="not found"):
        midi.open("no such port")
    assert isinstance(midi.rescan(), list) and isinstance(list_midi_ports(), list)
    midi.close()
    assert midi.port_name is None
