"""Audio and MIDI device handling against fake sounddevice / rtmidi / mido backends: what is listed, what a
stream is opened with, the messages a user sees, hot-plugging, and a failing callback.

CI has no sound card or MIDI hardware: these fakes stand in for them (the JACK tests cover a real stream).
"""

from __future__ import annotations

import logging
import sys
import types

import mido
import numpy as np
import pytest

from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine import audio_output as ao
from synth_core.engine import midi_input as mi

DEVICES = [
    {"name": "mic", "max_output_channels": 0, "default_samplerate": 44100.0, "hostapi": 0},
    {"name": "speakers", "max_output_channels": 2, "default_samplerate": 48000.0, "hostapi": 1},
    {"name": "mono box", "max_output_channels": 1, "default_samplerate": 22050, "hostapi": 0},
    {"name": "8ch", "max_output_channels": 8, "default_samplerate": 96000.0, "hostapi": 1},
]


class FakeSD(types.SimpleNamespace):
    """A sounddevice stand-in: devices, host APIs, a default device and a stream that records its arguments."""

    def __init__(self, default=(0, 1), fail_open=None, fail_query=None):
        super().__init__()
        self.default = types.SimpleNamespace(device=default)
        self.fail_open, self.fail_query = fail_open, fail_query
        self.opened: list[dict] = []
        self.queried: list[tuple] = []

    def query_devices(self, *args):
        self.queried.append(args)
        if self.fail_query:
            raise self.fail_query
        if not args:
            return DEVICES
        device, kind = args
        assert kind == "output"
        return DEVICES[1] if device is None else next(d for d in DEVICES if device in (d["name"], DEVICES.index(d)))

    def query_hostapis(self):
        return [{"name": "ALSA"}, {"name": "JACK Audio Connection Kit"}]

    def OutputStream(self, **kw):  # noqa: N802 - sounddevice's name
        if self.fail_open:
            raise self.fail_open
        self.opened.append(kw)
        return types.SimpleNamespace(latency=0.0123, active=True, start=lambda: None, stop=lambda: None,
                                     close=lambda: None)  # fmt: skip

    def _StreamBase(self, **kw):  # noqa: N802 - sounddevice's stream for a C callback
        return self.OutputStream(**kw)

    _ffi = types.SimpleNamespace(cast=lambda ctype, value: (ctype, value))


@pytest.fixture
def sd(monkeypatch):
    fake = FakeSD()
    monkeypatch.setattr(ao, "_sd", lambda: fake)
    return fake


def test_only_output_devices_are_listed_with_their_details(sd):
    jack = "JACK Audio Connection Kit"
    assert ao.list_output_devices() == [
        {"name": "speakers", "index": 1, "default_samplerate": 48000.0, "is_default": True, "hostapi": jack},
        {"name": "mono box", "index": 2, "default_samplerate": 22050.0, "is_default": False, "hostapi": "ALSA"},
        {"name": "8ch", "index": 3, "default_samplerate": 96000.0, "is_default": False, "hostapi": jack},
    ]
    assert isinstance(ao.list_output_devices()[1]["default_samplerate"], float)
    sd.default.device = None  # no default device: none is marked
    assert not any(d["is_default"] for d in ao.list_output_devices())
    sd.default.device = (0, 3)
    assert [d["is_default"] for d in ao.list_output_devices()] == [False, False, True]


@pytest.mark.parametrize("callback", ["native", "python"])
def test_a_stream_opens_with_the_devices_channels_low_latency_float32(sd, callback):
    engine = Engine(SineSource(), EngineConfig(sample_rate=44100))
    out = ao.AudioOutput(engine, device="mono box", sample_rate=48000, block_size=128, callback=callback)
    out.start()
    (kw,) = sd.opened
    assert {k: kw[k] for k in ("samplerate", "blocksize", "device", "channels", "dtype", "latency")} == {
        "samplerate": 48000, "blocksize": 128, "device": "mono box", "channels": 1, "dtype": "float32", "latency": "low"
    }  # fmt: skip
    ring_s = 0.0
    if callback == "native":  # the compiled callback reads the ring the feeder filled before the start
        from synth_core.engine.native_callback import pa_callback

        assert kw["callback"] == ("PaStreamCallback*", pa_callback.address) and kw["wrap_callback"] is None
        assert kw["userdata"] == ("void*", out._ring.address) and out._ring.fill() == ao.DEFAULT_AHEAD_BLOCKS * 128
        ring_s = ao.DEFAULT_AHEAD_BLOCKS * 128 / 48000
    else:
        assert kw["callback"] == out._callback
    assert sd.queried[-1] == ("mono box", "output")
    out.start()  # already open: nothing more
    assert len(sd.opened) == 1 and out.active
    engine.render(16)  # the rate change is applied at the next render
    s = engine.stats()
    assert (s.sample_rate, s.block_size) == (48000, 128) and s.output_latency_s == out.latency_s
    assert out.latency_s == pytest.approx(0.0123 + ring_s)  # the device's latency and the ring's
    out.stop()
    assert out.stream is None and not out.active
    out.stop()  # twice is fine
    stereo = ao.AudioOutput(engine, device=3, callback=callback)
    stereo.start()
    assert sd.opened[-1]["channels"] == 2  # at most stereo
    stereo.stop()


def test_device_errors_say_what_and_keep_nothing_open(monkeypatch):
    fake = FakeSD(fail_query=RuntimeError("Error querying device 7"))
    monkeypatch.setattr(ao, "_sd", lambda: fake)
    out = ao.AudioOutput(Engine(SineSource()), device=7)
    with pytest.raises(ao.AudioDeviceError) as err:
        out.start()
    assert str(err.value) == (
        "no audio output device 7 found (Error querying device 7); the synth still works offline (render to WAV)"
    )
    with pytest.raises(ao.AudioDeviceError, match=r"^no audio output device found \(Error"):
        ao.AudioOutput(Engine(SineSource())).start()
    fake = FakeSD(fail_open=ValueError("Invalid sample rate"))
    monkeypatch.setattr(ao, "_sd", lambda: fake)
    out = ao.AudioOutput(Engine(SineSource()))
    with pytest.raises(ao.AudioDeviceError, match=r"^cannot open audio output 'speakers': Invalid sample rate$"):
        out.start()
    assert out.stream is None and not out.active


def test_portaudio_missing_is_a_clear_error(monkeypatch):
    real_import = __import__

    def no_portaudio(name, *args, **kw):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kw)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr("builtins.__import__", no_portaudio)
    with pytest.raises(
        ao.AudioDeviceError, match=r"PortAudio is not available \(PortAudio library not found\); install libportaudio2"
    ):
        ao._sd()
    assert ao.list_output_devices() == []


class Status:
    def __init__(self, underflow: bool):
        self.output_underflow = underflow


def test_the_callback_plays_the_engine_counts_underflows_and_survives_a_failing_render(caplog):
    engine = Engine(SineSource(), EngineConfig(sample_rate=48000))
    engine.synchronous = True
    engine.note_on(69, 100)
    out = ao.AudioOutput(engine, callback="python")
    big = np.zeros((10000, 2), np.float32)  # more than the preallocated buffer
    out._callback(big, 10000, None, Status(True))
    assert np.abs(big).max() > 0 and np.array_equal(big[:, 0], big[:, 1])
    assert out.counters() == ao.OutputCounters(device_underflows=1, late_blocks=0, callbacks=1)
    block = np.ones((256, 1), np.float32)
    out._callback(block, 256, None, Status(False))
    assert out.counters().device_underflows == 1 and np.abs(block).max() > 0

    def broken(frames, mono):
        mono[:] = 0.7
        raise RuntimeError("boom")

    engine.render = broken
    with caplog.at_level(logging.ERROR, logger=ao.__name__):
        out._callback(block, 256, None, Status(False))
        out._callback(block, 256, None, Status(False))
    assert np.all(block == 0.0)  # silence, not what the failed render left behind
    assert isinstance(out.error, RuntimeError) and str(out.error) == "boom"
    assert [r.getMessage() for r in caplog.records] == ["engine.render failed in the audio callback"]  # once


# ---------------------------------------------------------------- MIDI


class FakeRtMidi(types.ModuleType):
    API_UNSPECIFIED, API_UNIX_JACK = 0, 3

    def __init__(self, ports):
        super().__init__("rtmidi")
        self.ports, self.made = ports, []

    def MidiIn(self, api):  # noqa: N802 - rtmidi's name
        self.made.append(api)
        fake = self
        return types.SimpleNamespace(get_ports=lambda: list(fake.ports))


@pytest.fixture
def rtmidi(monkeypatch):
    fake = FakeRtMidi(["Keys:0", "Pads:1"])
    monkeypatch.setitem(sys.modules, "rtmidi", fake)
    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    monkeypatch.setattr(mi, "jack_patchbay", lambda: None)  # no real JACK server behind the fake rtmidi
    mi.forget_midi_clients()
    yield fake
    mi.forget_midi_clients()


def test_ports_are_listed_through_one_kept_rtmidi_client_per_api(rtmidi, monkeypatch):
    assert mi.list_midi_ports() == ["Keys:0", "Pads:1"]
    assert mi.list_midi_ports() == ["Keys:0", "Pads:1"] and rtmidi.made == [0]  # kept open, not remade
    assert mi.list_midi_ports("mido.backends.rtmidi/UNIX_JACK") == ["Keys:0", "Pads:1"] and rtmidi.made == [0, 3]
    monkeypatch.setenv("MIDO_BACKEND", "mido.backends.rtmidi/UNIX_JACK")
    mi.forget_midi_clients()
    mi.list_midi_ports()
    assert rtmidi.made[-1] == 3  # the environment's backend
    rtmidi.ports = ["New:2"]
    assert mi.list_midi_ports() == ["New:2"]  # hot-plugged ports show up on the kept client


def test_other_backends_list_through_mido_and_failures_list_nothing(rtmidi, monkeypatch):
    class Backend:
        def __init__(self, name):
            self.name = name

        def get_input_names(self):
            return [f"port of {self.name}"]

    monkeypatch.setattr(mi.mido, "Backend", Backend)
    assert mi.list_midi_ports("mido.backends.portmidi") == ["port of mido.backends.portmidi"] and rtmidi.made == []

    def gone():
        raise RuntimeError("JACK server went away")

    mi._listers["mido.backends.rtmidi"] = types.SimpleNamespace(get_ports=gone)
    assert mi.list_midi_ports() == [] and mi._listers == {}  # reconnects next time
    assert mi.list_midi_ports() == ["Keys:0", "Pads:1"]


class FakePorts:
    """mido backend stand-in for MidiInput: opens ports from ``available`` and records them."""

    def __init__(self, available):
        self.available, self.opened = available, []

    def open_input(self, name, callback):
        port = types.SimpleNamespace(name=name, callback=callback, closed=False)
        port.close = lambda: setattr(port, "closed", True)
        self.opened.append(port)
        return port


def test_midi_input_opens_closes_and_follows_hot_plugging(monkeypatch, caplog):
    ports = FakePorts(["Keys:0"])
    monkeypatch.setattr(mi, "list_midi_ports", lambda backend=None: list(ports.available))
    monkeypatch.setattr(mi, "_backend", lambda backend: ports)
    got = []
    midi = mi.MidiInput(got.append)
    with pytest.raises(ValueError, match=r"^MIDI input 'Pads' not found; available: Keys:0$"):
        midi.open("Pads")
    ports.available = []
    with pytest.raises(ValueError, match=r"available: none$"):
        midi.open("Pads")
    ports.available = ["Keys:0", "Pads:1"]
    midi.open("Keys:0")
    assert midi.port_name == "Keys:0" and ports.opened[-1].name == "Keys:0"
    ports.opened[-1].callback(mido.Message("note_on", note=60))
    assert got == [mido.Message("note_on", note=60)]
    ports.available = ["Pads:1"]  # unplugged: closed, still wanted
    assert midi.rescan() == ["Pads:1"] and midi.port is None and midi.port_name is None
    assert ports.opened[-1].closed
    assert midi.rescan() == ["Pads:1"] and midi.port is None
    ports.available = ["Pads:1", "Keys:0"]  # back: reopened
    midi.rescan()
    assert midi.port_name == "Keys:0" and len(ports.opened) == 2
    midi.rescan()  # open and present: nothing happens
    assert len(ports.opened) == 2
    midi.close()
    assert midi.port is None and midi.port_name is None and ports.opened[-1].closed

    def refuse(name, callback):
        raise OSError("busy")

    ports.open_input = refuse
    with caplog.at_level(logging.WARNING, logger=mi.__name__):
        midi.rescan()
    assert "could not reopen MIDI input Keys:0: busy" in caplog.text


def test_a_failing_callback_never_reaches_the_midi_thread(caplog):
    def broken(msg):
        raise RuntimeError("bad")

    midi = mi.MidiInput(broken)
    with caplog.at_level(logging.ERROR, logger=mi.__name__):
        midi.feed(mido.Message("note_on", note=61))
    assert "MIDI callback failed for note_on channel=0 note=61" in caplog.text
