"""Integration: a real paced stream through the JACK dummy driver, notes via a JACK MIDI port.

The ``jack_server`` fixture (a private dummy-driver server) is in ``conftest.py``.
"""

from __future__ import annotations

import time

import mido
import numpy as np
import pytest

from synth_core.dsp import estimate_f0
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine.audio_output import AudioOutput
from synth_core.engine.midi_input import MidiInput, list_midi_ports

pytestmark = pytest.mark.jack
JACK_MIDI = "mido.backends.rtmidi/UNIX_JACK"


def test_jack_stream_plays_midi_notes(jack_server, tmp_path):
    engine = Engine(SineSource(), EngineConfig(sample_rate=48000, block_size=256))
    engine.start()
    audio = AudioOutput(engine, device=jack_server["index"], sample_rate=48000, block_size=256)
    keys = mido.Backend(JACK_MIDI).open_output("neurosynth-keys", virtual=True)
    midi = MidiInput(engine.handle_midi, backend=JACK_MIDI)
    try:
        audio.start()
        assert audio.latency_s > 0 and engine.stats().output_latency_s == audio.latency_s
        # the server runs --no-realtime: the output raised the callback's thread itself, or says why it could not
        sched = audio.callback_scheduling
        assert sched.realtime or "permission" in sched.reason, sched
        port = next(p for p in list_midi_ports(JACK_MIDI) if "neurosynth-keys" in p)
        midi.open(port)
        assert midi.port_name == port
        # its JACK client's threads (libjack's, the process thread among them) as real-time as the callback's
        clients = midi.port.client_threads
        assert clients and all(t.realtime == sched.realtime for t in clients), clients
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
