"""The app as a musician runs it: the window shown (offscreen), meters and scope repainting, SING playing 8-note
chords through a real paced JACK stream. The sound card must not be late more often than when the same server
plays silence (a baseline measured in this test, never an absolute time)."""

from __future__ import annotations

import time

import pytest
import torch

from bench.jack_dummy import baseline_dropouts
from bench.soak import chord, random_source
from sing_app.main_window import MainWindow
from sing_app.widgets.settings_dialog import AudioMidiSettings

pytestmark = pytest.mark.jack

SECONDS = 20.0
BASELINE_S = 8.0
MARGIN = 3


def test_the_window_playing_chords_does_not_make_the_sound_card_late(qtbot, jack_dummy):
    baseline = baseline_dropouts(jack_dummy, BASELINE_S)
    source = random_source("cpu", dtype=torch.float32, size="shipped")
    settings = AudioMidiSettings(audio_device=jack_dummy.device["index"], sample_rate=48000, block_size=256)
    win = MainWindow(source, settings, list_devices=lambda: [jack_dummy.device], list_ports=lambda: [])
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    try:
        assert win.audio is not None and win.audio.callback == "native", win.audio_message
        xruns0 = jack_dummy.xruns()
        t0 = time.monotonic()
        k, notes, peak, timeline = 0, [], -120.0, []
        while time.monotonic() - t0 < SECONDS:
            for n in notes:
                win.engine.note_off(n)
            notes = chord(k, 8)
            for n in notes:
                win.engine.note_on(n, 100)
            k += 1
            qtbot.wait(1000)  # the event loop runs: display timer, meters, scope, status bar
            peak = max(peak, win.meter.peak_db)
            c = win.audio.counters()
            timeline.append((win.engine.stats().underruns, c.late_blocks, c.device_underflows))
        played = time.monotonic() - t0
        for n in notes:
            win.engine.note_off(n)
        qtbot.wait(500)
        counters = win.audio.counters()
        xruns = jack_dummy.xruns() - xruns0
        win.update_status()
        label = win.lbl_underruns.text()
    finally:
        win.shutdown()
    report = f"baseline {baseline}, {counters}, xruns {xruns}, status {label!r}, {played:.1f} s, per second {timeline}"
    assert counters.callbacks > 0.9 * played * 48000 / 256, report  # the stream really ran at its pace
    assert peak > -60, report  # and played
    scale = played / baseline["seconds"]
    assert counters.device_underflows <= baseline["device_underflows"] * scale + MARGIN, report
    assert xruns <= baseline["jack_xruns"] * scale + MARGIN, report
    assert counters.late_blocks <= MARGIN, report
    assert label.endswith(f"{counters.late_blocks} · {counters.device_underflows}"), report
    print(report)
