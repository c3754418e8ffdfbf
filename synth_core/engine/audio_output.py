"""Audio output: a PortAudio stream (through sounddevice) playing ``Engine.render``'s blocks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .feeder import BlockFeeder
from .output_ring import OutputRing
from .thread_priority import ThreadScheduling, make_realtime, thread_scheduling

log = logging.getLogger(__name__)

DEFAULT_AHEAD_BLOCKS = 3  # blocks the feeder mixes ahead of the device (bench/RESULTS.md: "The audio path")
RING_FRAMES = 8192  # room in the output ring beyond the blocks ahead
FIRST_CALLBACK_S = 1.0  # how long start() waits for the device's first call (to learn its thread)


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


class NativeCallbackUnavailable(RuntimeError):
    """The compiled callback cannot be built here (numba missing or failing)."""


@dataclass
class OutputCounters:
    """What went wrong on the way to the sound card, each counted apart (the engine counts its own underruns)."""

    device_underflows: int = 0  # blocks the device flagged as late: the callback itself came too late (a click)
    late_blocks: int = 0  # blocks the feeder had not mixed in time (native path; the gap plays as silence)
    callbacks: int = 0  # callback calls so far


class AudioOutput:
    """Plays an engine on a sound device. ``device``: index, name or None (default).

    ``callback="native"`` (default): a compiled callback (:mod:`.native_callback`) copies blocks that the feeder
    thread (:class:`.feeder.BlockFeeder`) mixed ``ahead_blocks`` blocks ahead into an :class:`.output_ring.OutputRing`;
    no Python runs in the callback, so nothing that holds the GIL can make it late. ``"python"``: the callback runs
    ``engine.render`` itself (no added latency, but it waits for the GIL behind the GUI and the model worker); used
    when numba cannot build the native one, and by the benchmarks to compare.

    ``realtime``: once the device first calls the compiled callback, its thread gets real-time scheduling where the
    OS allows and it has none (:mod:`.thread_priority`); :attr:`callback_scheduling` says what it got at start,
    and why not.
    """

    def __init__(
        self,
        engine,
        device: int | str | None = None,
        sample_rate: int = 48000,
        block_size: int = 256,
        callback: str = "native",
        ahead_blocks: int = DEFAULT_AHEAD_BLOCKS,
        realtime: bool = True,
    ):
        if callback not in ("native", "python"):
            raise ValueError(f"callback must be 'native' or 'python', not {callback!r}")
        self.engine = engine
        self.device = device
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.callback = callback
        self.ahead_blocks = max(1, int(ahead_blocks))
        self.realtime = bool(realtime)
        self.callback_scheduling = ThreadScheduling("unknown", reason="not started")
        self.stream = None
        self.latency_s = 0.0  # the device's output latency plus the ring's (native path)
        self.device_latency_s = 0.0
        self.feeder: BlockFeeder | None = None
        self._ring: OutputRing | None = None
        self._mono = np.zeros(8192, np.float32)
        self._py_underflows = 0
        self._py_callbacks = 0
        self._error: BaseException | None = None  # first exception raised by engine.render in the python callback

    @property
    def error(self) -> BaseException | None:
        """The first exception ``engine.render`` raised while playing (the stream went on with silence)."""
        if self.feeder is not None and self.feeder.error is not None:
            return self.feeder.error
        return self._error

    def counters(self) -> OutputCounters:
        if self._ring is not None:
            r = self._ring
            return OutputCounters(r.underflows, r.late_blocks, r.callbacks)
        return OutputCounters(self._py_underflows, 0, self._py_callbacks)

    def _callback(self, outdata, frames, time_info, status) -> None:
        self._py_callbacks += 1
        if status.output_underflow:
            self._py_underflows += 1
        mono = self._mono[:frames] if frames <= len(self._mono) else np.zeros(frames, np.float32)
        try:
            self.engine.render(frames, mono)
        except Exception as exc:  # never let a bug stop the stream: play silence and report once
            mono[:] = 0.0
            if self._error is None:
                self._error = exc
                log.exception("engine.render failed in the audio callback")
        outdata[:] = mono[:, None]

    def _stream_settings(self, channels: int) -> dict[str, Any]:
        """What both callbacks' streams are opened with."""
        return {
            "samplerate": self.sample_rate,
            "blocksize": self.block_size,
            "device": self.device,
            "channels": channels,
            "dtype": "float32",
            "latency": "low",
        }

    def _open_native(self, sd, channels: int):
        try:  # compiles (or loads) the callback: imported only when needed
            from .native_callback import pa_callback
        except Exception as exc:  # numba missing or unable to build it
            raise NativeCallbackUnavailable(str(exc)) from exc
        ring = OutputRing(RING_FRAMES + self.ahead_blocks * self.block_size, channels)
        feeder = BlockFeeder(
            lambda n, out: self.engine.render(n, out), ring, self.block_size, self.ahead_blocks * self.block_size
        )
        stream = sd._StreamBase(  # sounddevice's stream for a C callback (as python-rtmixer uses it)
            kind="output",
            **self._stream_settings(channels),
            callback=sd._ffi.cast("PaStreamCallback*", pa_callback.address),
            userdata=sd._ffi.cast("void*", ring.address),
            wrap_callback=None,
        )
        self._ring, self.feeder = ring, feeder
        return stream

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
            if self.callback == "native":
                try:
                    self.stream = self._open_native(sd, channels)
                except NativeCallbackUnavailable as exc:
                    log.warning("no compiled audio callback (%s); the Python callback plays instead", exc)
                    self.callback = "python"
            if self.callback == "python":
                self.stream = sd.OutputStream(**self._stream_settings(channels), callback=self._callback)
            if self.feeder is not None:  # the first blocks are ready, and the feeder awake, before the device asks:
                self.feeder.start()  # (the device calls back before stream.start() returns, which takes a while)
            self.stream.start()
        except Exception as exc:
            self._close()
            raise AudioDeviceError(f"cannot open audio output {info['name']!r}: {exc}") from exc
        self.device_latency_s = float(self.stream.latency)
        ring_s = self.ahead_blocks * self.block_size / self.sample_rate if self.feeder is not None else 0.0
        self.latency_s = self.device_latency_s + ring_s
        self.engine.set_output_latency(self.latency_s, self.block_size)
        self.callback_scheduling = self._schedule_callback_thread()

    def _schedule_callback_thread(self) -> ThreadScheduling:
        if self._ring is None:  # the Python callback holds the GIL while it renders: not a thread to make real-time
            return ThreadScheduling("unknown", reason="the Python callback: only the compiled one is made real-time")
        from .native_callback import NOTES_THREAD

        if not NOTES_THREAD:
            return ThreadScheduling("unknown", reason="the callback cannot tell its thread (no gettid here)")
        deadline = time.monotonic() + FIRST_CALLBACK_S
        while not self._ring.callback_thread and time.monotonic() < deadline:
            time.sleep(0.005)
        tid = self._ring.callback_thread
        if not tid:
            return ThreadScheduling("unknown", reason=f"the device did not call back within {FIRST_CALLBACK_S} s")
        scheduling = make_realtime(tid) if self.realtime else thread_scheduling(tid)
        log.info("audio callback thread: %s", scheduling.describe())
        return scheduling

    def _close(self) -> None:
        try:
            if self.stream is not None:
                self.stream.stop()
                self.stream.close()
        finally:
            self.stream = None
            if self.feeder is not None:
                self.feeder.stop()
            if self._ring is not None:
                self._ring.close()
            self._ring = None  # (the feeder and its counters stay readable)

    def stop(self) -> None:
        self._close()

    @property
    def active(self) -> bool:
        return self.stream is not None and self.stream.active
