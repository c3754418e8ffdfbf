"""The window's audio output and MIDI input around one engine: open, fall back, hot-plug, tear down.

Audio: with an output device, :class:`AudioOutput` pulls ``engine.render`` from its callback. Without one
(``--no-audio``, or the device fails to open) an :class:`OfflineClock` pulls ``engine.render`` at real-time pace
from a GUI timer and discards the audio, so voices, meters, the scope and WAV recording all keep working; nothing
is played. MIDI: the chosen port is opened when it exists and rescanned every few seconds (hot-plug); messages go
to the engine on the MIDI thread and a copy to the GUI thread (``midiMessage``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import mido
import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from synth_core.engine import Engine
from synth_core.engine.audio_output import AudioDeviceError, AudioOutput, OutputCounters
from synth_core.engine.midi_input import MidiInput

from .widgets.settings_dialog import AudioMidiSettings
from .widgets.status_bar import OK, WARN, DeviceStatus

HOTPLUG_MS = 3000
AUDIO_KEYS = ("audio_device", "sample_rate", "block_size", "audio_enabled")


class OfflineClock:
    """Pulls ``engine.render`` at real-time pace from a GUI timer when no audio device plays it."""

    def __init__(self, engine: Engine, block_size: int, clock: Callable[[], float] = time.monotonic):
        self.engine, self.block_size, self._clock = engine, block_size, clock
        self._buf = np.zeros(block_size, np.float32)
        self._last: float | None = None
        self._debt = 0.0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self.tick)

    def start(self) -> None:
        self._last = self._clock()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._last = None

    @property
    def running(self) -> bool:
        return self.timer.isActive()

    def tick(self) -> int:
        """Render the frames due since the last tick (at most 0.25 s: no catch-up storms); returns them."""
        now = self._clock()
        if self._last is None:
            self._last = now
        self._debt = min(self._debt + (now - self._last) * self.engine.sample_rate, 0.25 * self.engine.sample_rate)
        self._last = now
        done = 0
        while self._debt >= self.block_size:
            self.engine.render(self.block_size, self._buf)
            self._debt -= self.block_size
            done += self.block_size
        return done


class DeviceSession(QObject):
    """Audio output (or the offline clock) and MIDI input for ``engine`` with ``settings``.

    ``changed`` fires when the audio or MIDI state changes (see :meth:`audio_status`, :meth:`midi_status`),
    ``message`` with something to tell the player, ``midiMessage`` with each MIDI message, on the GUI thread.
    """

    changed = pyqtSignal()
    message = pyqtSignal(str)
    midiMessage = pyqtSignal(object)

    def __init__(
        self,
        engine: Engine,
        settings: AudioMidiSettings,
        audio_factory: Callable[..., AudioOutput] = AudioOutput,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.engine, self.settings, self._audio_factory = engine, settings, audio_factory
        self.audio: AudioOutput | None = None
        self.audio_message = ""  # why there is no audio output ("" when it plays)
        self.offline = OfflineClock(engine, settings.block_size)
        self.midi = MidiInput(self._on_midi)
        self.midi_error = ""
        self.hotplug_timer = QTimer(self)
        self.hotplug_timer.setInterval(HOTPLUG_MS)
        self.hotplug_timer.timeout.connect(self.hotplug)

    def start(self) -> None:
        """Open the MIDI input and then the audio output the settings ask for; rescan MIDI from now on."""
        # MIDI first: a JACK client activating beside a running stream made the stream's first blocks late
        self.open_midi()
        self.midi.open_app_ports()  # "NeuroSynth:midi_in" for a DAW or a patchbay to connect to
        self.open_audio()
        self.hotplug_timer.start()

    # ---------------------------------------------------------------- audio
    def open_audio(self) -> bool:
        """(Re)open the output device from the settings; False when it runs offline (the reason in
        ``audio_message``)."""
        self._stop_output()
        s = self.settings
        self.offline = OfflineClock(self.engine, s.block_size)
        if s.audio_enabled:
            audio = self._audio_factory(self.engine, device=s.audio_device, sample_rate=s.sample_rate,
                                        block_size=s.block_size)  # fmt: skip
            try:
                audio.start()
            except AudioDeviceError as e:
                self.audio_message = str(e)
            else:
                self.audio, self.audio_message = audio, ""
                self.changed.emit()
                return True
        else:
            self.audio_message = "audio output off (--no-audio)"
        self.engine.set_sample_rate(s.sample_rate)
        self.engine.set_output_latency(0.0, s.block_size)
        self.offline.start()
        self.changed.emit()
        return False

    def _stop_output(self) -> None:
        """The one teardown of the output: the device stream or the offline clock stops pulling the engine."""
        if self.audio is not None:
            self.audio.stop()
            self.audio = None
        self.offline.stop()

    def set_engine(self, engine: Engine) -> None:
        """Play ``engine`` instead (a synth switch): the output stops, then reopens with the same settings.
        The caller stops the old engine; MIDI stays open (it always reaches the current engine)."""
        self._stop_output()
        self.engine = engine
        self.open_audio()

    def counters(self) -> OutputCounters | None:
        return self.audio.counters() if self.audio is not None else None

    def audio_status(self) -> DeviceStatus:
        if self.audio is not None:
            thread = self.audio.callback_scheduling.describe()
            return DeviceStatus("Audio: on", f"Playing on {self._device_name()}\nAudio thread: {thread}", OK)
        return DeviceStatus("Audio: OFFLINE (silent)", f"No sound output: {self.audio_message}.\nThe meters, the "
                            "scope and recording still work. Pick a device in Audio/MIDI…", WARN)  # fmt: skip

    def _device_name(self) -> str:
        dev = self.settings.audio_device
        return "the default output device" if dev is None else f"output device {dev}"

    # ---------------------------------------------------------------- MIDI
    def open_midi(self) -> None:
        port = self.settings.midi_port
        self.midi_error = ""
        if port is None:
            self.midi.close()
        else:
            try:
                self.midi.open(port)
            except Exception as e:  # noqa: BLE001 - rtmidi errors vary by platform
                self.midi_error = str(e)
                self.message.emit(str(e))
        self.changed.emit()

    def hotplug(self) -> None:
        """Rescan the MIDI ports: a vanished port closes, the chosen one (re)opens when it appears, also when it
        was not there at the start."""
        port = self.settings.midi_port
        if port is None:
            return
        before = self.midi.port_name
        try:
            self.midi.rescan()
            if self.midi.port_name is None:
                self.midi.open(port)
        except Exception:  # noqa: BLE001 - not there (yet), or whatever the backend does: keep the GUI alive
            pass
        if self.midi.port_name != before:
            self.midi_error = ""
            self.changed.emit()

    def midi_status(self) -> DeviceStatus:
        port = self.settings.midi_port
        if port is None:
            return DeviceStatus("MIDI: none", "No MIDI input chosen: the on-screen piano and the computer keys play."
                                "\nChoose a port in Audio/MIDI…")  # fmt: skip
        if self.midi.port_name:
            return DeviceStatus(f"MIDI: {self.midi.port_name}", colour=OK)
        if self.midi_error:
            return DeviceStatus("MIDI: not connected", self.midi_error, WARN)
        return DeviceStatus("MIDI: waiting for device", f"Waiting for {port!r} to be plugged in", WARN)

    def _on_midi(self, msg: mido.Message) -> None:
        """MIDI thread: channel filter, straight to the engine, then a copy to the GUI for display."""
        ch = self.settings.midi_channel
        if ch is not None and hasattr(msg, "channel") and msg.channel != ch:
            return
        self.engine.handle_midi(msg)
        self.midiMessage.emit(msg)

    # ---------------------------------------------------------------- settings and shutdown
    def apply(self, new: AudioMidiSettings) -> None:
        """Use ``new`` settings: the audio reopens when an audio setting changed, MIDI when the port did."""
        old, self.settings = self.settings, new
        if any(getattr(old, k) != getattr(new, k) for k in AUDIO_KEYS):
            self.open_audio()
        if old.midi_port != new.midi_port:
            self.open_midi()

    def close(self) -> None:
        """Stop rescanning, the output and the MIDI input (idempotent; the engine is the caller's)."""
        self.hotplug_timer.stop()
        self._stop_output()
        self.midi.close()
        self.midi.close_app_ports()
