"""DeviceSession: the audio output or the offline clock, the MIDI input and its hot-plug, one teardown."""

from __future__ import annotations

import mido
import pytest

from sing_app.device_session import DeviceSession
from sing_app.widgets.settings_dialog import AudioMidiSettings
from synth_core.engine import Engine, EngineConfig, SineSource
from synth_core.engine.audio_output import AudioDeviceError, OutputCounters
from synth_core.engine.thread_priority import ThreadScheduling


class FakeAudio:
    opened: list[FakeAudio] = []

    callback_scheduling = ThreadScheduling("fifo", 20)

    def __init__(self, engine, device=None, sample_rate=48000, block_size=256):
        self.engine, self.device, self.stopped = engine, device, False
        FakeAudio.opened.append(self)

    def start(self):
        if self.device == "broken":
            raise AudioDeviceError("cannot open audio output 'broken'")

    def stop(self):
        self.stopped = True

    def counters(self):
        return OutputCounters(device_underflows=2)


class FakeMidi:
    """Stands in for MidiInput: a port list the test changes (hot-plug)."""

    def __init__(self, ports):
        self.ports, self.port_name, self._wanted = ports, None, None

    def open(self, name):
        if name not in self.ports:  # like MidiInput: a port that is not there is not remembered
            raise ValueError(f"MIDI input {name!r} not found")
        self.port_name = self._wanted = name

    def close(self):
        self.port_name = None

    def open_app_ports(self):
        return []

    def close_app_ports(self):
        pass

    def rescan(self):
        if self.port_name not in self.ports:
            self.port_name = None
        if self.port_name is None and self._wanted in self.ports:
            self.port_name = self._wanted
        return self.ports


def engine() -> Engine:
    return Engine(SineSource(), EngineConfig(sample_rate=48000))


def test_audio_opens_falls_back_offline_and_tears_down_once(qtbot):
    FakeAudio.opened.clear()
    e = engine()
    s = DeviceSession(e, AudioMidiSettings(audio_device=1), FakeAudio)
    s.open_audio()
    assert s.audio is FakeAudio.opened[0] and not s.offline.running and s.audio_status().text == "Audio: on"
    assert s.counters().device_underflows == 2
    assert "Audio thread: real-time (FIFO 20)" in s.audio_status().tooltip
    s.apply(AudioMidiSettings(audio_device="broken"))  # the old output stops, the new one fails: offline
    assert FakeAudio.opened[0].stopped and s.audio is None and s.offline.running
    status = s.audio_status()
    assert "OFFLINE" in status.text and "broken" in status.tooltip and s.counters() is None
    other = engine()
    s.apply(AudioMidiSettings(audio_device=2))
    s.set_engine(other)  # a synth switch: the output stops before the new one opens on the new engine
    assert FakeAudio.opened[2].stopped and FakeAudio.opened[3].engine is other and s.engine is other
    s.close()
    s.close()  # idempotent
    assert FakeAudio.opened[3].stopped and not s.offline.running
    e.close()
    other.close()


def test_midi_hot_plug_and_what_the_status_says(qtbot):
    e = engine()
    s = DeviceSession(e, AudioMidiSettings(audio_enabled=False, midi_port="KeyStep"))
    s.midi = FakeMidi([])
    changes = []
    s.changed.connect(lambda: changes.append(s.midi_status().text))
    messages = []
    s.message.connect(messages.append)
    s.open_midi()
    assert s.midi_status().text == "MIDI: not connected" and "not found" in s.midi_status().tooltip
    assert "not found" in messages[0]
    s.midi.ports.append("KeyStep")  # plugged in
    s.hotplug()
    assert s.midi_status().text == "MIDI: KeyStep" and changes[-1] == "MIDI: KeyStep"
    s.midi.ports.clear()  # unplugged
    s.hotplug()
    assert s.midi_status().text == "MIDI: waiting for device"
    s.apply(AudioMidiSettings(audio_enabled=False, midi_port=None))
    assert s.midi_status().text == "MIDI: none"
    s.close()
    e.close()


@pytest.mark.parametrize(("channel", "reaches"), [(None, True), (3, True), (5, False)])
def test_midi_messages_reach_the_engine_and_the_gui_through_the_channel_filter(qtbot, channel, reaches):
    e = engine()
    s = DeviceSession(e, AudioMidiSettings(audio_enabled=False, midi_channel=channel))
    got = []
    s.midiMessage.connect(got.append)
    s._on_midi(mido.Message("note_on", note=60, velocity=100, channel=3))
    assert bool(got) == reaches
    s.close()
    e.close()
