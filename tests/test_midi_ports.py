"""MIDI input ports from every rtmidi API the system has (ALSA and JACK), without MIDO_BACKEND; a port opened
through the API it came from; ports found by a part of their name."""

from __future__ import annotations

import sys
import time
import types

import mido
import numpy as np
import pytest

from synth_core.engine import midi_input as mi
from tests.conftest import pull


class TwoApiRtMidi(types.ModuleType):
    """rtmidi with ALSA (2) and JACK (3) compiled in; ``ports[api]`` lists, None: that API fails to start."""

    API_UNSPECIFIED, API_LINUX_ALSA, API_UNIX_JACK = 0, 2, 3

    def __init__(self, ports):
        super().__init__("rtmidi")
        self.ports, self.made = ports, []

    def get_compiled_api(self):
        return [2, 3]

    def MidiIn(self, api):  # noqa: N802 - rtmidi's name
        self.made.append(api)
        if self.ports.get(api) is None:
            raise SystemError("MidiInJack::initialize: JACK server not running?")
        return types.SimpleNamespace(get_ports=lambda: list(self.ports[api]))


class Backends:
    """PolledBackend stand-in: records which backend opened which port."""

    opened: list[tuple[str, str]] = []

    def __init__(self, name):
        self.name = name

    def open_input(self, port, callback):
        Backends.opened.append((self.name, port))
        return types.SimpleNamespace(name=port, close=lambda: None)


@pytest.fixture
def rtmidi(monkeypatch):
    fake = TwoApiRtMidi({2: ["Midi Through:Midi Through Port-0 14:0", "KeyStep:KeyStep MIDI 1 20:0"], 3: None})
    monkeypatch.setitem(sys.modules, "rtmidi", fake)
    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    monkeypatch.setattr(mi, "jack_patchbay", lambda: None)  # no real JACK server behind the fake rtmidi
    monkeypatch.setattr(mi, "PolledBackend", Backends)
    Backends.opened = []
    mi.forget_midi_clients()
    yield fake
    mi.forget_midi_clients()


def test_ports_of_both_apis_are_listed_and_a_failing_one_is_skipped(rtmidi, monkeypatch):
    alsa = ["Midi Through:Midi Through Port-0 14:0", "KeyStep:KeyStep MIDI 1 20:0"]
    assert mi.list_midi_ports() == alsa and rtmidi.made == [2, 3]  # no JACK server: skipped
    assert mi.list_midi_ports() == alsa and rtmidi.made == [2, 3]  # kept ALSA client; JACK not retried at once
    rtmidi.ports[3] = ["RtMidiOut Client:tester", "KeyStep:KeyStep MIDI 1 20:0"]  # JACK starts (a2j's names)
    monkeypatch.setattr(mi, "RETRY_S", 0.0)
    assert mi.list_midi_ports() == [*alsa, "RtMidiOut Client:tester", "KeyStep:KeyStep MIDI 1 20:0 (JACK)"]
    midi = mi.MidiInput(lambda m: None)
    midi.open("TESTER")  # a part of the name, any case
    assert midi.port_name == "RtMidiOut Client:tester"
    assert Backends.opened[-1] == ("mido.backends.rtmidi/UNIX_JACK", "RtMidiOut Client:tester")  # its own API
    midi.open("KeyStep:KeyStep MIDI 1 20:0 (JACK)")
    assert Backends.opened[-1] == ("mido.backends.rtmidi/UNIX_JACK", "KeyStep:KeyStep MIDI 1 20:0")
    midi.open("KeyStep:KeyStep MIDI 1 20:0")
    assert Backends.opened[-1] == ("mido.backends.rtmidi/LINUX_ALSA", "KeyStep:KeyStep MIDI 1 20:0")
    with pytest.raises(ValueError, match=r"'keystep' is ambiguous: it could be KeyStep:KeyStep MIDI 1 20:0, "):
        midi.open("keystep")
    with pytest.raises(ValueError, match=r"^MIDI input 'oxygen' not found; available: Midi Through:.*tester"):
        midi.open("oxygen")


def test_mido_backend_from_the_environment_still_wins(rtmidi, monkeypatch):
    rtmidi.ports[3] = ["RtMidiOut Client:tester"]
    monkeypatch.setenv("MIDO_BACKEND", "mido.backends.rtmidi/UNIX_JACK")
    assert mi.list_midi_ports() == ["RtMidiOut Client:tester"] and rtmidi.made == [3]


def test_the_wanted_port_reopens_by_part_of_its_name(rtmidi):
    midi = mi.MidiInput(lambda m: None)
    with pytest.raises(ValueError):
        midi.open("oxygen")
    rtmidi.ports[2].append("Oxygen 49:Oxygen 49 MIDI 1 24:0")  # plugged in later
    assert midi.rescan() is not None and midi.port_name is None  # a failed open is not wanted
    midi.open("oxygen")
    rtmidi.ports[2].pop()
    midi.rescan()
    assert midi.port_name is None
    rtmidi.ports[2].append("Oxygen 49:Oxygen 49 MIDI 1 28:0")  # back on another ALSA address
    midi.rescan()
    assert midi.port_name == "Oxygen 49:Oxygen 49 MIDI 1 28:0"


@pytest.mark.jack
def test_a_jack_midi_port_is_found_and_plays_without_mido_backend(jack_dummy, monkeypatch):
    """Under the JACK dummy server, a keyboard's JACK MIDI port (a virtual output made with mido's JACK backend)
    is listed with no MIDO_BACKEND set, found by a part of its name, and its notes reach the engine."""
    from synth_core.engine import Engine, EngineConfig, SineSource

    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    mi.forget_midi_clients()
    engine = Engine(SineSource(), EngineConfig(sample_rate=48000, block_size=256))
    engine.start()
    got: list[mido.Message] = []
    midi = mi.MidiInput(lambda m: (got.append(m), engine.handle_midi(m)))
    keys = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("tester", virtual=True)
    try:
        deadline = time.monotonic() + 5
        while not any("tester" in p for p in mi.list_midi_ports()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("tester" in p for p in mi.list_midi_ports()), mi.list_midi_ports()
        midi.open("TESTER")
        assert "tester" in midi.port_name
        time.sleep(0.2)
        keys.send(mido.Message("note_on", note=69, velocity=100))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got and got[0].type == "note_on" and got[0].note == 69
        assert np.abs(pull(engine, 0.3)).max() > 0.01 and engine.stats().active_voices == 1  # it sounds
        # the app's own port, for a DAW to send to: JACK's NeuroSynth:midi_in
        assert "mido.backends.rtmidi/UNIX_JACK" in midi.open_app_ports()
        daw = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("NeuroSynth:midi_in")
        daw.send(mido.Message("note_on", note=72, velocity=90))
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        daw.close()
        assert got[-1].type == "note_on" and got[-1].note == 72
    finally:
        midi.close()
        midi.close_app_ports()
        keys.close()
        engine.stop()
        mi.forget_midi_clients()


def test_a_missing_port_is_said_in_the_message_line_not_over_the_device_fields(qtbot, rtmidi):
    from sing_app.main_window import MainWindow
    from sing_app.widgets.settings_dialog import AudioMidiSettings
    from synth_core.engine import SineSource

    win = MainWindow(SineSource(n_instruments=4), AudioMidiSettings(audio_enabled=False, midi_port="oxygen"),
                     list_devices=lambda: [], list_ports=lambda: [])  # fmt: skip
    qtbot.addWidget(win)
    win.offline.stop()
    win.display_timer.stop()
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    bar = win.status
    win.devices.open_midi()  # (the window's start-up messages came after the first try's)
    assert "MIDI input 'oxygen' not found; available: Midi Through" in bar.currentMessage()
    assert bar.midi_label.text() == "MIDI: not connected" and "KeyStep" in bar.midi_label.toolTip()
    shown = [w for w in (bar.audio_label, bar.midi_label, bar.message_label) if w.isVisible()]
    assert len(shown) == 3
    rects = [w.geometry() for w in shown]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    win.shutdown()


@pytest.mark.jack
def test_a_chosen_jack_keyboard_is_connected_to_the_apps_own_port_not_opened_by_a_client_more(jack_dummy, monkeypatch):
    """With the app's port open, choosing a JACK keyboard connects it to ``NeuroSynth:midi_in`` through the passive
    patchbay (every active client is woken each cycle: one more chance of an xrun): the app keeps one MIDI client
    in the server, the notes arrive, closing disconnects, and an unplugged keyboard is let go at the next rescan."""
    import jack

    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    mi.forget_midi_clients()
    got: list[mido.Message] = []
    midi = mi.MidiInput(got.append)
    keys = mido.Backend(mi.JACK).open_output("tester", virtual=True)
    probe = jack.Client("probe", no_start_server=True)
    try:
        assert mi.JACK in midi.open_app_ports()
        assert midi.app_jack_port == "NeuroSynth:midi_in"
        clients_before = {p.name.split(":")[0] for p in probe.get_ports()}
        midi.open("TESTER")
        assert midi.port_name == "RtMidiOut Client:tester"
        assert {p.name.split(":")[0] for p in probe.get_ports()} == clients_before  # no client more
        assert [p.name for p in probe.get_all_connections("NeuroSynth:midi_in")] == ["RtMidiOut Client:tester"]
        time.sleep(0.1)
        keys.send(mido.Message("note_on", note=64, velocity=80))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [mido.Message("note_on", note=64, velocity=80)]
        midi.close()
        assert probe.get_all_connections("NeuroSynth:midi_in") == [] and midi.port is None
        midi.open("tester")
        keys.close()  # unplugged
        time.sleep(0.2)
        assert midi.rescan() is not None and midi.port_name is None
    finally:
        midi.close()
        midi.close_app_ports()
        probe.close()
        mi.forget_midi_clients()
