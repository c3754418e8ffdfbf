"""rtmidi inputs read by the poll thread: RtMidi never calls Python from the MIDI system's (JACK's process) thread."""

from __future__ import annotations

import logging
import threading
import time
import types

import mido
import pytest

from synth_core.engine import midi_poll


class QueuedMidiIn:
    """rtmidi.MidiIn stand-in: a port with a queue of raw messages; records what was opened."""

    def __init__(self, api, name=None, queue_size_limit=1024):
        self.api, self.client, self.queue, self.opened, self.deleted = api, name, [], None, False

    def get_ports(self):
        return ["Keys:0"]

    def get_current_api(self):
        return self.api

    def open_port(self, index):
        self.opened = ("port", index)

    def open_virtual_port(self, name):
        self.opened = ("virtual", name)

    def ignore_types(self, **kw):
        self.ignored = kw

    def get_message(self):
        return (self.queue.pop(0), 0.0) if self.queue else None

    def set_callback(self, func):  # pragma: no cover - must never be called
        raise AssertionError("a Python callback in the MIDI system's thread")

    def close_port(self):
        self.opened = None

    def delete(self):
        self.deleted = True


@pytest.fixture
def fake_rtmidi(monkeypatch):
    import sys

    fake = types.ModuleType("rtmidi")
    fake.API_UNSPECIFIED, fake.API_UNIX_JACK = 0, 3
    fake.MidiIn = QueuedMidiIn
    monkeypatch.setitem(sys.modules, "rtmidi", fake)
    return fake


def thread_recorder():
    """A callback that records the name of the thread it runs on and sets ``got``: (names, got, callback)."""
    threads, got = [], threading.Event()

    def callback(msg):
        threads.append(threading.current_thread().name)
        got.set()

    return threads, got, callback


def test_messages_are_delivered_in_order_bad_bytes_skipped_and_a_failing_callback_logged(fake_rtmidi, caplog):
    got = []

    def callback(msg):
        if msg.type == "control_change":
            raise RuntimeError("bad")
        got.append(msg)

    port = midi_poll.PolledInput("mido.backends.rtmidi/UNIX_JACK", "Keys:0", callback)
    rt = port._rt
    assert rt.api == 3 and rt.opened == ("port", 0)
    port.close()  # the test drains by hand, not the thread
    port.closed = False
    rt.queue += [[0x90, 60, 100], [0xF4], [0xB0, 1, 2], [0x80, 60, 0]]  # 0xF4: undefined status byte
    with caplog.at_level(logging.ERROR, logger=midi_poll.__name__):
        assert port.drain() == 3
    assert got == [mido.Message("note_on", note=60, velocity=100), mido.Message("note_off", note=60, velocity=0)]
    assert "MIDI callback failed for control_change" in caplog.text


def test_a_virtual_port_is_polled_on_its_own_thread_until_closed(fake_rtmidi):
    threads, got, callback = thread_recorder()
    port = midi_poll.PolledBackend("mido.backends.rtmidi/UNIX_JACK").open_input(
        "midi_in", client_name="NeuroSynth", callback=callback
    )
    rt = port._rt
    assert rt.opened == ("virtual", "midi_in") and rt.client == "NeuroSynth"
    rt.queue.append([0x90, 64, 90])
    assert got.wait(2.0) and threads == ["midi-poll"]
    port.close()
    assert rt.deleted and rt.opened is None
    rt.queue.append([0x90, 65, 90])
    time.sleep(0.05)
    assert threads == ["midi-poll"] and rt.queue  # closed: no longer read


@pytest.mark.jack
def test_jack_midi_reaches_the_callback_from_the_poll_thread_not_jacks(jack_dummy):
    """A note sent through the JACK dummy server to the app's own port arrives on ``midi-poll``: JACK's process
    thread (which would be the callback's thread with mido's ports) never runs Python of ours."""
    threads, got, callback = thread_recorder()
    port = midi_poll.PolledBackend("mido.backends.rtmidi/UNIX_JACK").open_input(
        "poll_in", client_name="PollTest", callback=callback
    )
    keys = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("PollTest:poll_in")
    try:
        time.sleep(0.2)
        keys.send(mido.Message("note_on", note=69, velocity=100))
        assert got.wait(5.0)
        assert set(threads) == {"midi-poll"}
    finally:
        keys.close()
        port.close()
