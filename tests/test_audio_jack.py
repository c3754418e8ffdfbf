"""Integration: a real paced stream through the JACK dummy driver, notes via a JACK MIDI port."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine.audio_output import AudioOutput, list_output_devices, rescan_audio_devices
from synth_core.engine.midi_input import MidiInput, forget_midi_clients, list_midi_ports

pytestmark = pytest.mark.jack
JACK_MIDI = "mido.backends.rtmidi/UNIX_JACK"


@pytest.fixture
def jack_server(monkeypatch):
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (apt install jackd2)")
    name = f"neurosynth-test-{os.getpid()}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_AUDIO_RESERVATION", "1")
    proc = subprocess.Popen(
        ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        device = None
        deadline = time.monotonic() + 10
        while device is None and time.monotonic() < deadline:
            time.sleep(0.3)
            assert proc.poll() is None, "jackd exited"
            rescan_audio_devices()
            device = next((d for d in list_output_devices() if d["hostapi"].startswith("JACK")), None)
        assert device is not None, "JACK did not show up in PortAudio"
        yield device
    finally:
        import sounddevice as sd

        forget_midi_clients()
        sd._terminate()  # leave JACK before the server goes (PortAudio aborts otherwise)
        proc.terminate()
        proc.wait(timeout=10)
        sd._initialize()


def test_jack_stream_plays_midi_notes(jack_server, tmp_path):
    engine = Engine(SineSource(), EngineConfig(sample_rate=48000, block_size=256))
    engine.start()
    audio = AudioOutput(engine, device=jack_server["index"], sample_rate=48000, block_size=256)
    keys = mido.Backend(JACK_MIDI).open_output("neurosynth-keys", virtual=True)
    midi = MidiInput(engine.handle_midi, backend=JACK_MIDI)
    try:
        audio.start()
        assert audio.latency_s > 0 and engine.stats().output_latency_s == audio.latency_s
        port = next(p for p in list_midi_ports(JACK_MIDI) if "neurosynth-keys" in p)
        midi.open(port)
        assert midi.port_name == port
        engine.start_recording(tmp_path / "jack.wav")
        time.sleep(0.2)
        keys.send(mido.Message("note_on", note=69, velocity=100))
        time.sleep(0.8)
        keys.send(mido.Message("note_off", note=69))
        time.sleep(0.6)
        path = engine.stop_recording()
        keys.close()  # unplug: rescan closes the vanished port ...
        time.sleep(0.2)
        assert port not in midi.rescan() and midi.port_name is None
        keys = mido.Backend(JACK_MIDI).open_output("neurosynth-keys", virtual=True)
        time.sleep(0.2)  # ... and reopens it when it comes back
        midi.rescan()
        assert midi.port_name is not None and "neurosynth-keys" in midi.port_name
    finally:
        midi.close()
        keys.close()
        audio.stop()
        engine.stop()
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32")
    assert len(y) > 1.2 * sr  # the stream really ran at its pace
    loud = np.flatnonzero(np.abs(y) > 0.01)
    assert len(loud) > 0.5 * sr
    assert estimate_f0(y[loud[0] + 4800 : loud[0] + 24000], sr) == pytest.approx(440.0, rel=0.005)
    assert np.all(y[-int(0.2 * sr) :] == 0)  # released
