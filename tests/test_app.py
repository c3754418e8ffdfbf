"""The main window over a real Engine (SineSource, no audio device) and the preset format."""

from __future__ import annotations

import json
import time

import mido
import numpy as np
import pytest
import soundfile as sf
import torch
from PyQt6.QtCore import QPoint, Qt

from sing_app.main import build_parser, settings_from_args
from sing_app.main_window import MainWindow
from sing_app.presets import Preset, PresetError, load_preset, save_preset
from sing_app.widgets.settings_dialog import AudioMidiSettings, SettingsDialog
from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import SineSource
from synth_core.engine.thread_priority import ThreadScheduling
from tests.conftest import pull

SR = 48000


def make_window(qtbot, source=None, **settings) -> MainWindow:
    source = source or SineSource(n_instruments=4)
    source.instrument_table = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    win = MainWindow(
        source,
        AudioMidiSettings(audio_enabled=False, sample_rate=SR, **settings),
        list_devices=lambda: [],
        list_ports=lambda: [],
    )
    qtbot.addWidget(win)
    # the test pulls audio itself: stop the offline clock and the display timer
    win.offline.stop()
    win.display_timer.stop()
    return win


@pytest.fixture
def window(qtbot):
    win = make_window(qtbot)
    yield win
    win.shutdown()


def key_pos(piano, note: int) -> QPoint:
    r = piano.key_rect(note)
    return QPoint(int(r.center().x()), int(r.top() + 0.8 * r.height()))


def test_window_starts_offline_and_shows_status(window):
    assert window.audio is None
    assert "OFFLINE" in window.status.audio_label.text()
    assert "none" in window.status.midi_label.text()
    window.update_status()
    assert "48000 Hz / 256" in window.status.rate_label.text()
    assert "CPU" in window.status.device_label.text()
    assert window.status.voices_label.text() == "voices 0/16"


def test_clicking_a_key_sounds_at_its_pitch(qtbot, window):
    window.resize(1400, 880)
    window.show()
    piano = window.piano
    qtbot.mousePress(piano, Qt.MouseButton.LeftButton, pos=key_pos(piano, 69))
    audio = pull(window.engine, 0.4)
    tail = audio[-8192:]
    assert np.sqrt(np.mean(tail**2)) > 0.01
    assert estimate_f0(tail, window.engine.sample_rate) == pytest.approx(midi_to_hz(69), rel=0.01)
    window.update_status()
    assert window.status.voices_label.text().startswith("voices 1/")
    qtbot.mouseRelease(piano, Qt.MouseButton.LeftButton, pos=key_pos(piano, 69))
    qtbot.keyClick(piano, Qt.Key.Key_X)  # octave up: A now plays C5
    qtbot.keyPress(piano, Qt.Key.Key_A)
    audio = pull(window.engine, 0.8)
    assert estimate_f0(audio[-8192:], window.engine.sample_rate) == pytest.approx(midi_to_hz(72), rel=0.01)
    qtbot.keyRelease(piano, Qt.Key.Key_A)


def test_offline_clock_drives_meter_scope_and_recording(qtbot, window, tmp_path):
    now = [0.0]
    window.offline._clock = lambda: now[0]
    window.offline._last = 0.0
    wav = tmp_path / "take.wav"
    window.start_recording_to(wav)
    window.engine.note_on(64, 110)
    for _ in range(30):
        now[0] += 0.02
        assert window.offline.tick() in (0, 512, 768, 1024, 1280)
        time.sleep(0.01)
    window.refresh_display()
    assert window.meter.peak_db > -40
    assert np.abs(window.scope._data).max() > 0.01
    assert window.stop_recording() == wav
    audio, sr = sf.read(wav)
    assert sr == SR and len(audio) >= 0.5 * SR
    assert estimate_f0(audio[-8192:], sr) == pytest.approx(midi_to_hz(64), rel=0.01)


def test_underruns_turn_the_status_red(qtbot):
    win = make_window(qtbot, source=SineSource(n_instruments=4, step_delay_s=0.03))
    try:
        win.update_status()
        assert (
            win.status.dropouts_label.text() == "dropouts 0 · 0 · 0"
            and "b3261e" not in win.status.dropouts_label.styleSheet()
        )
        win.engine.note_on(60, 100)
        deadline = time.monotonic() + 3.0  # the source runs at half real time: the voice starves
        while win.engine.stats().underruns == 0 and time.monotonic() < deadline:
            pull(win.engine, 0.05)
        win.update_status()
        engine_count, late, device = (int(x) for x in win.status.dropouts_label.text().split()[1::2])
        assert engine_count > 0 and engine_count == win.engine.stats().underruns  # counted apart, not added up
        assert "engine underruns" in win.status.dropouts_label.toolTip()
        assert "b3261e" in win.status.dropouts_label.styleSheet()
    finally:
        win.shutdown()


def test_instrument_list_sets_engine_vector_and_faders(window):
    window.instrument_list.select(2)
    np.testing.assert_array_equal(window.engine.instrument_vector(), window.table[2])
    np.testing.assert_allclose(window.embedding.vector(), window.table[2])
    # a timbre fader moves the engine's vector too
    f = window.embedding.timbre_faders[0]
    f.slider.setValue(f.slider.value() + 100)
    assert not np.allclose(window.engine.instrument_vector(), window.table[2])
    np.testing.assert_allclose(window.engine.instrument_vector(), window.embedding.vector())


def test_morph_pad_sets_engine_vector(window):
    window.morph.set_corner(0, 1)
    window.morph.pad.set_position(0.0, 0.0)
    np.testing.assert_array_equal(window.engine.instrument_vector(), window.table[1])
    window.morph.pad.set_position(0.5, 0.5)
    corners = window.table[window.morph.corner_indices()]
    np.testing.assert_allclose(window.engine.instrument_vector(), corners.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(window.embedding.vector(), corners.mean(axis=0), atol=1e-6)


def test_preset_round_trip_through_the_window(window, tmp_path):
    window.instrument_list.select(1)
    window.embedding.dim_faders[3].slider.setValue(0)
    edited = window.embedding.vector()
    path = window.save_preset_to(tmp_path / "mine.json", "My pad")
    window.instrument_list.select(3)
    preset = window.load_preset_from(path)
    assert preset.name == "My pad" and preset.base_instrument == window.instruments[1].name
    np.testing.assert_allclose(window.engine.instrument_vector(), edited, atol=1e-6)
    np.testing.assert_allclose(window.embedding.vector(), edited, atol=1e-6)
    assert window.base_instrument == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(PresetError, match="not valid JSON"):
        window.load_preset_from(bad)
    np.testing.assert_allclose(window.engine.instrument_vector(), edited, atol=1e-6)  # nothing changed


def test_midi_notes_are_played_highlighted_and_filtered(qtbot, window):
    window.midi.feed(mido.Message("note_on", note=50, velocity=100, channel=3))
    qtbot.waitUntil(lambda: 50 in window.piano.active_notes(), timeout=2000)
    window.midi.feed(mido.Message("note_off", note=50, channel=3))
    qtbot.waitUntil(lambda: 50 not in window.piano.active_notes(), timeout=2000)
    window.apply_settings(AudioMidiSettings(audio_enabled=False, sample_rate=SR, midi_channel=0))
    window.midi.feed(mido.Message("note_on", note=55, velocity=100, channel=3))
    qtbot.wait(50)
    assert 55 not in window.piano.active_notes()
    window.midi.feed(mido.Message("note_on", note=57, velocity=100, channel=0))
    qtbot.waitUntil(lambda: 57 in window.piano.active_notes(), timeout=2000)
    window.panic()
    assert window.piano.active_notes() == set()


def test_computer_keys_play_from_anywhere_but_text_fields(qtbot, window):
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    played = []
    window.piano.noteOn.connect(lambda n, v: played.append(n))
    window.instrument_list.view.setFocus()
    qtbot.keyPress(window.instrument_list.view, Qt.Key.Key_D)
    qtbot.keyRelease(window.instrument_list.view, Qt.Key.Key_D)
    assert played == [64]  # the list has focus, the piano still plays
    window.instrument_list.filter_edit.setFocus()
    qtbot.keyClicks(window.instrument_list.filter_edit, "flute")
    assert window.instrument_list.filter_edit.text() == "flute"


def test_settings_dialog_lists_devices_and_rescans(qtbot):
    ports = [["Midi Through"]]
    dlg = SettingsDialog(
        AudioMidiSettings(midi_port="KeyStep"),
        lambda: [{"name": "Speakers", "index": 3, "default_samplerate": 48000.0, "is_default": True}],
        lambda: ports[0],
    )
    qtbot.addWidget(dlg)
    assert dlg.port_combo.count() == 2
    ports[0] = ["Midi Through", "KeyStep"]
    dlg.rescan()
    assert dlg.port_combo.count() == 3
    dlg.port_combo.setCurrentIndex(dlg.port_combo.findData("KeyStep"))
    dlg.channel_combo.setCurrentIndex(dlg.channel_combo.findData(9))
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData(3))
    s = dlg.settings()
    assert (s.midi_port, s.midi_channel, s.audio_device, s.audio_enabled) == ("KeyStep", 9, 3, True)
    dlg.device_combo.setCurrentIndex(0)
    assert not dlg.settings().audio_enabled
    empty = SettingsDialog(AudioMidiSettings(), lambda: [], lambda: [])
    qtbot.addWidget(empty)
    assert "No audio output device" in empty.device_note.text()


def test_cli_options_map_to_settings():
    args = build_parser().parse_args(
        ["--no-audio", "--audio-device", "2", "--sample-rate", "44100", "--block-size", "128", "--midi-channel", "10"]
    )
    s = settings_from_args(args)
    assert (s.audio_enabled, s.audio_device, s.sample_rate, s.block_size, s.midi_channel) == (False, 2, 44100, 128, 9)


def test_the_app_warms_sing_notes_up_in_bf16_only_where_measured_faster(tiny_checkpoint):
    """sing-app's default on the CPU: the warm-up precision and torch threads the start-up probe measured (bf16
    only where clearly faster); --exact-warmup: fp32 (the threads still measured)."""
    import torch

    from sing_app.main import load_source

    args = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu"]
    threads = torch.get_num_threads()
    try:
        fast = load_source(build_parser().parse_args(args))
        assert fast.speed is not None and fast.warmup_dtype == fast.speed.warmup_dtype
        assert torch.get_num_threads() == fast.speed.threads  # the engine runs on the measured thread count
        assert fast.device_name.endswith(f"{fast.speed.warmup_name} warm-up")
        exact = load_source(build_parser().parse_args([*args, "--exact-warmup"]))
        assert exact.warmup_dtype is None and exact.device_name.endswith("fp32 warm-up")
    finally:
        torch.set_num_threads(threads)
    fast.prepare(2)
    assert fast.streamer.warmup.dtype == (fast.warmup_dtype or torch.float32)


def test_preset_file_errors(tmp_path):
    p = save_preset(tmp_path / "a.json", Preset("warm", np.arange(16, dtype=np.float32), "bass_synthetic_033"))
    back = load_preset(p, dim=16)
    assert back.name == "warm" and back.base_instrument == "bass_synthetic_033"
    np.testing.assert_array_equal(back.vector, np.arange(16))
    with pytest.raises(PresetError, match="needs 8"):
        load_preset(p, dim=8)
    cases = {
        "[1, 2]": "expected a JSON object",
        json.dumps({"name": "x", "vector": [1, "a"]}): "finite numbers",
        json.dumps({"vector": [1.0]}): "name",
        json.dumps({"name": "x", "vector": [1.0], "format": "other"}): "not a NeuroSynth preset",
    }
    for text, msg in cases.items():
        (tmp_path / "b.json").write_text(text)
        with pytest.raises(PresetError, match=msg):
            load_preset(tmp_path / "b.json")
    with pytest.raises(PresetError, match="cannot read"):
        load_preset(tmp_path / "missing.json")
    (tmp_path / "c.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PresetError):
        load_preset(tmp_path / "c.json")


def test_main_runs_offline_with_the_sine_source(qtbot, qapp):
    from PyQt6.QtCore import QTimer

    from sing_app.main import main

    QTimer.singleShot(400, qapp.quit)
    threads = torch.get_num_threads()
    try:
        assert main(["--sine", "--no-audio", "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 1  # the engine's torch runs on one thread (see use_realtime_threads)
    finally:
        torch.set_num_threads(threads)


def test_main_reports_missing_weights_when_the_voice_fails_too(tmp_path, capsys):
    from sing_app.main import main

    missing = ["--checkpoint", str(tmp_path / "nope.pt"), "--no-audio"]
    assert main([*missing, "--voice", str(tmp_path / "no_voice.pt")]) == 2
    assert "Could not load the voice model" in capsys.readouterr().err


class FakeAudio:
    """Stands in for AudioOutput: 'opens' unless the device is named 'broken'."""

    callback_scheduling = ThreadScheduling("fifo", 20)

    def __init__(self, engine, device=None, sample_rate=48000, block_size=256):
        self.engine, self.device, self.sample_rate, self.block_size = engine, device, sample_rate, block_size
        self.latency_s = 0.0
        self.stopped = False

    def start(self):
        from synth_core.engine.audio_output import AudioDeviceError

        if self.device == "broken":
            raise AudioDeviceError("cannot open audio output 'broken': device unavailable")
        self.latency_s = 0.012
        self.engine.set_sample_rate(self.sample_rate)
        self.engine.set_output_latency(self.latency_s, self.block_size)

    def stop(self):
        self.stopped = True

    def counters(self):
        from synth_core.engine.audio_output import OutputCounters

        return OutputCounters(device_underflows=3, late_blocks=1)


def test_settings_switch_audio_device_and_fall_back_offline(qtbot):
    src = SineSource(n_instruments=4)
    win = MainWindow(src, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [],
                     audio_factory=FakeAudio)  # fmt: skip
    qtbot.addWidget(win)
    try:
        assert win.offline.running
        win.apply_settings(AudioMidiSettings(audio_enabled=True, audio_device=1, sample_rate=44100, block_size=128))
        assert isinstance(win.audio, FakeAudio) and not win.offline.running
        assert win.status.audio_label.text() == "Audio: on"
        win.engine.render(128)  # the new rate applies from the next callback
        win.update_status()
        assert "44100 Hz / 128" in win.status.rate_label.text() and "12.0 ms" in win.status.latency_label.text()
        first = win.audio
        win.apply_settings(AudioMidiSettings(audio_enabled=True, audio_device="broken"))
        assert first.stopped and win.audio is None and win.offline.running
        assert "OFFLINE" in win.status.audio_label.text() and "broken" in win.status.audio_label.toolTip()
    finally:
        win.shutdown()


def test_window_over_a_tiny_sing_model(qtbot, tiny_model, tiny_instruments):
    from synth_core.engine import SingSource

    win = MainWindow(SingSource(tiny_model, tiny_instruments), AudioMidiSettings(audio_enabled=False),
                     list_devices=lambda: [], list_ports=lambda: [])  # fmt: skip
    qtbot.addWidget(win)
    try:
        win.offline.stop()
        assert win.instrument_list.visible_indices() == [0, 1, 2]
        assert len(win.embedding.dim_faders) == 16 and len(win.embedding.timbre_faders) == 2
        win.instrument_list.select(1)
        np.testing.assert_allclose(win.engine.instrument_vector(), tiny_model.instrument_table[1].detach().numpy())
        win.piano.noteOn.emit(60, 100)
        audio = pull(win.engine, 0.5)
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    finally:
        win.shutdown()


def test_bend_wheel_bends_and_springs_back(window):
    window.piano.noteOn.emit(69, 100)
    pull(window.engine, 0.3)
    window.bend.setValue(1000)  # +2 semitones
    bent = pull(window.engine, 0.3)
    assert estimate_f0(bent[-8192:], SR) == pytest.approx(midi_to_hz(71), rel=0.01)
    window.bend.sliderReleased.emit()
    assert window.bend.value() == 0
    back = pull(window.engine, 0.3)
    assert estimate_f0(back[-8192:], SR) == pytest.approx(midi_to_hz(69), rel=0.01)
