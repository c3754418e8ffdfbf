"""Soak of the app itself: the main window shown (offscreen unless a display is set), display timer, meters and
scope running, SING chords through a real paced JACK stream; prints JSON (dropouts apart, against a silent-stream
baseline on the same server). A fresh process, as a musician starts the app.

    PYTHONPATH=. QT_QPA_PLATFORM=offscreen python bench/app_soak.py --seconds 600 --voices 8 [--notes direct]
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

KEYBOARD = "bench-keys"  # the JACK MIDI port jack_keys.py offers with --notes keyboard


def run_event_loop(seconds: float) -> None:
    """Run Qt's event loop (timers, repaints) for ``seconds``, as ``app.exec()`` does: idle in C++, not polling."""
    from PyQt6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


class DropoutTimeline:
    """When the dropouts came: the output's counters sampled every 100 ms by a Qt timer (GUI thread), each rise
    kept as ``[seconds since t0, kind, count]`` (kind: "late" blocks or device "underflows"); ``before``: the
    counters at t0, what the window's and the stream's start left (the report's totals include them)."""

    def __init__(self, audio, t0: float):
        from PyQt6.QtCore import QTimer

        self.events: list[list] = []
        self._audio, self._t0 = audio, t0
        self._last = audio.counters() if audio is not None else None
        self.before = None if self._last is None else dataclasses.asdict(self._last)
        self._timer = QTimer()
        self._timer.timeout.connect(self._sample)
        self._timer.start(100)

    def _sample(self) -> None:
        if self._last is None:
            return
        now = self._audio.counters()
        t = round(time.monotonic() - self._t0, 1)
        for kind, new, old in (
            ("late", now.late_blocks, self._last.late_blocks),
            ("underflows", now.device_underflows, self._last.device_underflows),
        ):
            if new > old:
                self.events.append([t, kind, new - old])
        self._last = now

    def stop(self) -> None:
        if self._timer.isActive():
            self._sample()
            self._timer.stop()


def app_soak(
    seconds: float,
    voices: int,
    period_s: float,
    baseline_s: float,
    checkpoint: str | None,
    callback: str = "native",
    app_midi_port: bool = True,
    notes: str = "midi",
    realtime: bool = True,
) -> dict:
    """``app_midi_port``: the app opens its own MIDI input (``NeuroSynth:midi_in``, one more JACK client), as
    sing-app does; False leaves it closed, to measure what that client costs. ``notes``: "midi" plays them from a
    JACK MIDI keyboard in another process (``bench/jack_keys.py``) into that port, as a musician's keyboard or a
    DAW does; "keyboard" from a JACK MIDI port of that process picked as the app's MIDI input (the Audio/MIDI
    dialog's way: the app connects to it); "direct" calls ``engine.note_on`` from the GUI thread (the on-screen
    piano's way). ``realtime``: the output makes the callback's thread real-time where it may (as sing-app); False
    leaves it as the driver made it, to measure what that does."""
    if notes == "midi" and not app_midi_port:
        raise ValueError("notes from JACK MIDI need the app's MIDI port")
    from PyQt6.QtWidgets import QApplication

    from bench.common import cpu_model, cpu_steal_s
    from bench.jack_dummy import baseline_dropouts, jack_dummy_server
    from bench.jack_keys import chord
    from bench.soak import random_source
    from sing_app.main_window import MainWindow
    from sing_app.widgets.settings_dialog import AudioMidiSettings
    from synth_core.engine.audio_output import AudioOutput
    from synth_core.engine.midi_input import MidiInput
    from synth_core.engine.sources import SingSource

    torch.set_num_threads(1)  # as sing-app on a 2-core CPU (its probe's choice here)
    if not app_midi_port:
        MidiInput.open_app_ports = lambda self: []  # (this process only)
    app = QApplication.instance() or QApplication([])
    with jack_dummy_server(sample_rate=48000, period=256) as jack:
        baseline = baseline_dropouts(jack, baseline_s, realtime=realtime)
        source = SingSource.from_checkpoint(checkpoint, "cpu") if checkpoint else random_source("cpu")
        settings = AudioMidiSettings(
            audio_device=jack.device["index"],
            sample_rate=48000,
            block_size=256,
            midi_port=KEYBOARD if notes == "keyboard" else None,
        )
        win = MainWindow(
            source,
            settings,
            list_devices=lambda: [jack.device],
            list_ports=lambda: [],
            audio_factory=functools.partial(AudioOutput, callback=callback, realtime=realtime),
        )
        win.show()
        received: list = []  # the messages that reached the engine through MIDI (the copy the GUI gets of each)
        win.devices.midiMessage.connect(received.append)
        run_event_loop(0.5)
        timeline = None
        try:
            callback = win.audio.callback if win.audio is not None else None
            callback_thread = win.audio.callback_scheduling.describe() if win.audio is not None else None
            xruns0, steal0 = jack.xruns(), cpu_steal_s()
            t0 = time.monotonic()
            timeline = DropoutTimeline(win.audio, t0)
            k, peak, keys = 0, -120.0, None
            if notes in ("midi", "keyboard"):
                where = ["--port", KEYBOARD, "--virtual"] if notes == "keyboard" else []
                keys = subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).with_name("jack_keys.py")),
                        "--voices",
                        str(voices),
                        "--period",
                        str(period_s),
                        "--seconds",
                        str(seconds),
                        *where,
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                while keys.poll() is None:
                    run_event_loop(period_s)
                    peak = max(peak, win.meter.peak_db)
                sent = json.loads(keys.stdout.read() or "{}")
                if keys.returncode != 0:
                    raise RuntimeError(f"the JACK MIDI keyboard failed ({keys.returncode})")
                k, notes_sent = sent["chords"], sent["notes_sent"]
            else:
                played_notes: list[int] = []
                while time.monotonic() - t0 < seconds:
                    for n in played_notes:
                        win.engine.note_off(n)
                    played_notes = chord(k, voices)
                    for n in played_notes:
                        win.engine.note_on(n, 100)
                    k += 1
                    run_event_loop(period_s)
                    peak = max(peak, win.meter.peak_db)
                for n in played_notes:
                    win.engine.note_off(n)
                notes_sent = k * voices
            played = time.monotonic() - t0
            run_event_loop(0.5)
            timeline.stop()
            c = win.audio.counters() if win.audio is not None else None
            xruns = jack.xruns() - xruns0
            steal = None if steal0 is None else cpu_steal_s() - steal0
            stats = win.engine.stats()
            underruns = stats.underruns
            win.update_status()
            label = win.lbl_underruns.text()
        finally:
            if timeline is not None:
                timeline.stop()
            win.dispose()
            app.processEvents()
            del win
    return {
        "cpu_model": cpu_model(),
        "seconds": played,
        "voices": voices,
        "chords": k,
        "callback": callback,
        "callback_thread": callback_thread,
        "app_midi_port": app_midi_port,
        "notes": notes,
        "notes_sent": notes_sent,
        "notes_received": sum(m.type == "note_on" and m.velocity > 0 for m in received)
        if notes != "direct"
        else notes_sent,
        "notes_played": stats.cache_hits + stats.cache_misses,
        "baseline": baseline,
        "underruns": underruns,
        "late_blocks": c.late_blocks if c else None,
        "device_underflows": c.device_underflows if c else None,
        "callbacks": c.callbacks if c else 0,
        "jack_xruns": xruns,
        "host_steal_s": steal,
        "peak_db": peak,
        "status": label,
        "dropouts_at_s": timeline.events,
        "before_playing": timeline.before,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--voices", type=int, default=8)
    p.add_argument("--period", type=float, default=1.0, help="seconds between chords")
    p.add_argument("--baseline", type=float, default=8.0, help="seconds of the silent-stream baseline")
    p.add_argument("--checkpoint", help="a SING checkpoint (default: random weights of the shipped size)")
    p.add_argument("--callback", choices=["native", "python"], default="native", help="audio path (as sing-app)")
    p.add_argument("--no-app-midi-port", action="store_true", help="leave the app's own MIDI input closed")
    p.add_argument(
        "--no-realtime-thread", action="store_true", help="leave the callback's thread as the driver made it"
    )
    p.add_argument(
        "--notes",
        choices=["midi", "keyboard", "direct"],
        default="midi",
        help="midi: from a JACK MIDI keyboard in another process into NeuroSynth:midi_in; keyboard: from that "
        "keyboard's port picked as the app's MIDI input; direct: engine.note_on",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    faulthandler.enable()  # a crash says where
    print(
        json.dumps(
            app_soak(
                args.seconds,
                args.voices,
                args.period,
                args.baseline,
                args.checkpoint,
                args.callback,
                app_midi_port=not args.no_app_midi_port,
                notes=args.notes,
                realtime=not args.no_realtime_thread,
            ),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
