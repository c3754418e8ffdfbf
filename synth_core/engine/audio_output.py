"""Audio output: a sounddevice OutputStream whose callback pulls from ``Engine.render``."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class AudioDeviceError(RuntimeError):
    """No usable audio output (no device, PortAudio missing, unsupported settings)."""


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library is missing
        raise AudioDeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from exc
    return sd


def rescan_audio_devices() -> None:
    """Re-initialise PortAudio so devices (or a JACK server) started after import are seen.

    Only call it while no stream is open.
    """
    sd = _sd()
    sd._terminate()
    sd._initialize()


def list_output_devices() -> list[dict[str, Any]]:
    """Output devices: dicts with name, index, default_samplerate, is_default (empty if none)."""
    try:
        sd = _sd()
        devices = sd.query_devices()
        default = sd.default.device[1] if sd.default.device else -1
    except Exception:
        return []
    apis = sd.query_hostapis()
    result = []
    for i, d in enumerate(devices):
        if d["max_output_channels"] > 0:
            result.append(
                {
                    "name": d["name"],
                    "index": i,
                    "default_samplerate": float(d["default_samplerate"]),
                    "is_default": i == default,
                    "hostapi": apis[d["hostapi"]]["name"],
                }
            )
    return result


class AudioOutput:
    """Plays an engine on a sound device. ``device``: index, name or None (default)."""

    def __init__(self, engine, device: int | str | None = None, sample_rate: int = 48000, block_size: int = 256):
        self.engine = engine
        self.device = device
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.stream = None
        self.latency_s = 0.0
        self._mono = np.zeros(8192, np.float32)
        self.error: BaseException | None = None  # first exception raised by engine.render in the callback

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.engine.count_output_underflow()
        mono = self._mono[:frames] if frames <= len(self._mono) else np.zeros(frames, np.float32)
        try:
            self.engine.render(frames, mono)
        except Exception as exc:  # never let a bug stop the stream: play silence and report once
            mono[:] = 0.0
            if self.error is None:
                self.error = exc
                log.exception("engine.render failed in the audio callback")
        outdata[:] = mono[:, None]

    def start(self) -> None:
        """Open and start the stream; raises :class:`AudioDeviceError` with the reason."""
        sd = _sd()
        if self.stream is not None:
            return
        try:
            info = sd.query_devices(self.device, "output")
        except Exception as exc:
            raise AudioDeviceError(
                f"no audio output device{'' if self.device is None else f' {self.device!r}'} found ({exc}); "
                "the synth still works offline (render to WAV)"
            ) from exc
        channels = min(2, int(info["max_output_channels"])) or 1
        if self.sample_rate != self.engine.sample_rate:
            self.engine.set_sample_rate(self.sample_rate)
        try:
            self.stream = sd.OutputStream(
                samplerate=self.sample_rate,
                blocksize=self.block_size,
                device=self.device,
                channels=channels,
                dtype="float32",
                latency="low",
                callback=self._callback,
            )
            self.stream.start()
        except Exception as exc:
            self.stream = None
            raise AudioDeviceError(f"cannot open audio output {info['name']!r}: {exc}") from exc
        self.latency_s = float(self.stream.latency)
        self.engine.set_output_latency(self.latency_s, self.block_size)

    def stop(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            finally:
                self.stream = None

    @property
    def active(self) -> bool:
        return self.stream is not None and self.stream.active
