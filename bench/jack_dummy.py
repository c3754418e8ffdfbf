"""A private JACK server on the dummy driver (no sound card): paced like a real device.

Used by the JACK tests (``tests/conftest.py``'s ``jack_server`` fixture) and ``bench/soak.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class JackUnavailable(RuntimeError):
    """jackd is not installed."""


@dataclass
class JackServer:
    """A running dummy-driver server: its name, its PortAudio output device and its log."""

    name: str
    device: dict
    log_path: Path

    def xruns(self) -> int:
        """xruns jackd has logged so far (lines mentioning an xrun)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum("xrun" in line.lower() for line in text.splitlines())


@contextlib.contextmanager
def jack_dummy_server(sample_rate: int = 48000, period: int = 256, timeout_s: float = 10.0) -> Iterator[JackServer]:
    """Start ``jackd -d dummy`` under a private name, wait until PortAudio lists it, stop it after.

    Sets ``JACK_DEFAULT_SERVER`` (so PortAudio and JACK MIDI clients use it) while it runs.
    Raises :class:`JackUnavailable` when jackd is not installed.
    """
    if shutil.which("jackd") is None:
        raise JackUnavailable("jackd is not installed (apt install jackd2)")
    import sounddevice as sd

    from synth_core.engine.audio_output import list_output_devices, rescan_audio_devices
    from synth_core.engine.midi_input import forget_midi_clients

    name = f"neurosynth-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"
    log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(sample_rate), "-p", str(period)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        device = None
        deadline = time.monotonic() + timeout_s
        while device is None and time.monotonic() < deadline:
            time.sleep(0.3)
            if proc.poll() is not None:
                raise RuntimeError(f"jackd exited: {Path(log.name).read_text(errors='replace')[-500:]}")
            rescan_audio_devices()
            device = next((d for d in list_output_devices() if d["hostapi"].startswith("JACK")), None)
        if device is None:
            raise RuntimeError("JACK did not show up in PortAudio")
        yield JackServer(name, device, Path(log.name))
    finally:
        forget_midi_clients()
        sd._terminate()  # leave JACK before the server goes (PortAudio aborts otherwise)
        proc.terminate()
        proc.wait(timeout=10)
        sd._initialize()
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Silence:
    """The least an engine can be: silence, at any rate."""

    sample_rate = 48000

    def render(self, frames: int, out) -> None:
        out[:frames] = 0.0

    def set_sample_rate(self, rate: int) -> None:
        self.sample_rate = rate

    def set_output_latency(self, latency_s: float, block_size: int | None = None) -> None:
        pass


#: Dropouts one second of hypervisor steal (``host_steal_s``) may bring: on the 2-vCPU dev VM runs with 3-11 s of
#: steal had 4-10 device underflows and 5-22 jackd xruns per steal-second, whatever the code did (bench/RESULTS.md).
STEAL_DROPOUTS_PER_S = 25


def steal_allowance(steal_s: float | None) -> float:
    """The dropouts the host's steal during a run (``steal_s``, None where unknown) explains: steal stalls every
    thread of the VM, jackd's too; 0 on a machine without it."""
    return STEAL_DROPOUTS_PER_S * (steal_s or 0.0)


def allowed_dropouts(baseline: dict, key: str, seconds: float, margin: float, steal_s: float | None) -> float:
    """How many ``key`` dropouts a run of ``seconds`` may have: the silent baseline's rate, ``margin`` more, and
    :func:`steal_allowance`; on a machine without steal, the baseline plus the margin."""
    return baseline[key] * seconds / baseline["seconds"] + margin + steal_allowance(steal_s)


def baseline_dropouts(
    server: JackServer, seconds: float, sample_rate: int = 48000, block_size: int = 256, realtime: bool = True
) -> dict:
    """Device underflows and jackd xruns of a stream playing silence through the native callback for ``seconds``:
    what the machine and the server cost by themselves, to compare a real run with (``bench/soak.py``, the tests).
    ``realtime``: as :class:`~synth_core.engine.audio_output.AudioOutput`'s (the run's setting)."""
    from synth_core.engine.audio_output import AudioOutput

    audio = AudioOutput(_Silence(), server.device["index"], sample_rate, block_size, realtime=realtime)
    xruns0 = server.xruns()
    audio.start()
    try:
        time.sleep(seconds)
    finally:
        audio.stop()
    c = audio.counters()
    return {
        "seconds": seconds,
        "device_underflows": c.device_underflows,
        "jack_xruns": server.xruns() - xruns0,
        "callback_thread": audio.callback_scheduling.describe(),
    }
