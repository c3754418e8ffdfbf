"""Settings dialog: audio output device, sample rate, block size, MIDI input port and channel filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

SAMPLE_RATES = (22050, 32000, 44100, 48000, 88200, 96000)
BLOCK_SIZES = (64, 128, 256, 512, 1024, 2048)


@dataclass
class AudioMidiSettings:
    audio_device: int | str | None = None  # None: system default
    sample_rate: int = 48000
    block_size: int = 256
    audio_enabled: bool = True
    midi_port: str | None = None
    midi_channel: int | None = None  # None: omni, else 0..15


class SettingsDialog(QDialog):
    """Edits a copy of :class:`AudioMidiSettings`; ``settings()`` returns the result."""

    def __init__(
        self,
        current: AudioMidiSettings,
        list_devices: Callable[[], list[dict]],
        list_ports: Callable[[], list[str]],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Audio & MIDI settings")
        self._current = current
        self._list_ports = list_ports
        self.device_combo = QComboBox()
        self.device_combo.addItem("Off (offline: no sound output)", "off")
        self.device_combo.addItem("System default", None)
        devices = list_devices()
        for d in devices:
            self.device_combo.addItem(f"{d['name']}{'  (default)' if d.get('is_default') else ''}", d["index"])
        self.device_note = QLabel("" if devices else "No audio output device found: the synth runs offline.")
        self.device_note.setStyleSheet("color: #e4572e;")
        if not current.audio_enabled:
            self.device_combo.setCurrentIndex(0)
        else:
            i = self.device_combo.findData(current.audio_device)
            if i < 0 and isinstance(current.audio_device, str):
                i = next(
                    (
                        k
                        for k in range(self.device_combo.count())
                        if current.audio_device in self.device_combo.itemText(k)
                    ),
                    -1,
                )
            self.device_combo.setCurrentIndex(max(i, 1))
        self.rate_combo = QComboBox()
        for r in SAMPLE_RATES:
            self.rate_combo.addItem(f"{r} Hz", r)
        self.rate_combo.setCurrentIndex(max(0, self.rate_combo.findData(current.sample_rate)))
        self.block_combo = QComboBox()
        for b in BLOCK_SIZES:
            self.block_combo.addItem(f"{b} frames", b)
        self.block_combo.setCurrentIndex(max(0, self.block_combo.findData(current.block_size)))
        self.latency_label = QLabel()
        self.rate_combo.currentIndexChanged.connect(self._update_latency)
        self.block_combo.currentIndexChanged.connect(self._update_latency)
        self.port_combo = QComboBox()
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("List MIDI inputs again (after plugging in a device)")
        self.rescan_button.clicked.connect(self.rescan)
        port_row = QHBoxLayout()
        port_row.addWidget(self.port_combo, 1)
        port_row.addWidget(self.rescan_button)
        self.channel_combo = QComboBox()
        self.channel_combo.addItem("Omni (all channels)", None)
        for ch in range(16):
            self.channel_combo.addItem(f"Channel {ch + 1}", ch)
        self.channel_combo.setCurrentIndex(max(0, self.channel_combo.findData(current.midi_channel)))
        form = QFormLayout(self)
        form.addRow("Audio output", self.device_combo)
        form.addRow("", self.device_note)
        self.device_note.setVisible(bool(self.device_note.text()))
        form.addRow("Sample rate", self.rate_combo)
        form.addRow("Block size", self.block_combo)
        form.addRow("", self.latency_label)
        form.addRow("MIDI input", port_row)
        form.addRow("MIDI channel", self.channel_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.rescan()
        self._update_latency()

    def rescan(self) -> list[str]:
        wanted = self.port_combo.currentData() if self.port_combo.count() else self._current.midi_port
        ports = self._list_ports()
        self.port_combo.clear()
        self.port_combo.addItem("None" if ports else "None (no MIDI input found)", None)
        for p in ports:
            self.port_combo.addItem(p, p)
        self.port_combo.setCurrentIndex(max(0, self.port_combo.findData(wanted)))
        return ports

    def _update_latency(self) -> None:
        ms = 1000.0 * self.block_combo.currentData() / self.rate_combo.currentData()
        self.latency_label.setText(f"One block = {ms:.1f} ms")
        self.latency_label.setStyleSheet("color: #9aa0a6;")

    def settings(self) -> AudioMidiSettings:
        dev = self.device_combo.currentData()
        return replace(
            self._current,
            audio_enabled=dev != "off",
            audio_device=None if dev == "off" else dev,
            sample_rate=int(self.rate_combo.currentData()),
            block_size=int(self.block_combo.currentData()),
            midi_port=self.port_combo.currentData(),
            midi_channel=self.channel_combo.currentData(),
        )
