"""The window's Synth selector (SING | Voice) and Voice panel, with the sine stand-in for the WaveRNN voice."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from PyQt6.QtCore import Qt

from sing_app.main import build_parser
from sing_app.main_window import MainWindow
from sing_app.widgets.settings_dialog import AudioMidiSettings
from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine import SineSource
from synth_core.engine.sine_voice import SineVoiceSource
from synth_core.engine.thread_priority import ThreadScheduling
from tests.conftest import pull

SR = 48000


class FakeAudio:
    """Stands in for AudioOutput: remembers how it was opened, never pulls audio itself."""

    opened: list = []

    callback_scheduling = ThreadScheduling("fifo", 20)

    def __init__(self, engine, device=None, sample_rate=48000, block_size=256):
        self.engine, self.device, self.sample_rate, self.block_size = engine, device, sample_rate, block_size
        self.stopped = False
        FakeAudio.opened.append(self)

    def start(self):
        self.engine.set_sample_rate(self.sample_rate)
        self.engine.set_output_latency(0.01, self.block_size)

    def stop(self):
        self.stopped = True

    def counters(self):
        from synth_core.engine.audio_output import OutputCounters

        return OutputCounters()


def held(engine) -> int:
    """Voices sounding and not releasing."""
    return sum(1 for v in engine.voices if v.state != 0 and v.rel_len == 0)


def voice_source() -> SineVoiceSource:
    return SineVoiceSource(n_presets=5, names=["dark 1", "dark 2", "mid 1", "bright 1", "bright 2"])


def make_window(qtbot, synth="sing", voice_factory=voice_source, settings=None, **kw) -> MainWindow:
    sing = SineSource(n_instruments=4)
    source = sing if synth == "sing" else voice_factory()
    win = MainWindow(
        source,
        settings or AudioMidiSettings(audio_enabled=False, sample_rate=SR),
        synth=synth,
        sing_factory=lambda: sing,
        voice_factory=voice_factory,
        list_devices=lambda: [],
        list_ports=lambda: [],
        **kw,
    )
    qtbot.addWidget(win)
    win.offline.stop()  # the tests pull audio themselves
    win.display_timer.stop()
    return win


@pytest.fixture
def voice_window(qtbot):
    win = make_window(qtbot, synth="voice")
    yield win
    win.shutdown()


def test_switching_sing_to_voice_and_back_keeps_settings_and_plays(qtbot):
    FakeAudio.opened.clear()
    settings = AudioMidiSettings(audio_enabled=True, audio_device=1, sample_rate=SR, block_size=128)
    win = make_window(qtbot, settings=settings, audio_factory=FakeAudio)
    try:
        sing_engine, first_audio = win.engine, win.audio
        assert win.tools.synth_actions["voice"].isEnabled() and win.tools.synth_actions["sing"].isChecked()
        assert not win.voice_panel.isVisibleTo(win)
        win.volume.setValue(150)
        win.tools.synth_actions["voice"].trigger()
        assert win.synth == "voice" and win.tools.synth_actions["voice"].isChecked()
        # the old engine and output are stopped, the new ones opened with the same settings
        assert first_audio.stopped and not sing_engine.running and win.engine is not sing_engine
        assert isinstance(win.audio, FakeAudio) and win.audio.engine is win.engine
        assert (win.audio.device, win.audio.sample_rate, win.audio.block_size) == (1, SR, 128)
        assert win.settings is settings
        # the voice's presets fill the list, the 20 faders and the morph pad
        assert win.instrument_list.visible_indices() == [0, 1, 2, 3, 4]
        assert len(win.embedding.dim_faders) == 20 and win.embedding.isVisibleTo(win)
        assert win.morph.combos[0].count() == 5 and win.inst_box.title() == "Timbre presets"
        assert win.voice_panel.isVisibleTo(win) and "voice" in win.windowTitle()
        assert win.engine.config.max_voices == 4 and win.engine.mono
        win.instrument_list.select(3)
        np.testing.assert_array_equal(win.engine.instrument_vector(), win.table[3])
        win.morph.pad.set_position(0.5, 0.5)
        assert win.engine.instrument_vector().shape == (20,)
        # keys play through the new engine
        win.piano.noteOn.emit(69, 100)
        audio = pull(win.engine, 0.4)
        assert estimate_f0(audio[-8192:], SR) == pytest.approx(midi_to_hz(69), rel=0.01)
        assert np.abs(audio).max() > 0.1  # the master volume (150%) carried over
        win.update_status()
        assert win.status.voices_label.text() == "voices 1/4" and "sine voice" in win.status.device_label.text()
        win.piano.noteOff.emit(69)
        # ... and back to SING: the same source object again, 16-dim table, MIDI reaches the new engine
        voice_engine = win.engine
        assert win.set_synth("sing")
        assert not voice_engine.running and win.engine.source is win.synths.sources["sing"]
        assert len(win.embedding.dim_faders) == 16 and not win.voice_panel.isVisibleTo(win)
        assert (win.audio.device, win.audio.sample_rate, win.audio.block_size) == (1, SR, 128)
        assert not win.engine.mono and win.engine.config.max_voices == 16
        win.midi.feed(mido.Message("note_on", note=60, velocity=100))
        win.midi.feed(mido.Message("note_on", note=64, velocity=100))
        audio = pull(win.engine, 0.3)
        assert held(win.engine) == 2 and np.abs(audio).max() > 0.01
    finally:
        win.shutdown()


def test_voice_panel_controls_reach_the_source_and_the_engine(qtbot, voice_window):
    win = voice_window
    panel, src = win.voice_panel, win.source
    panel.sliders["glide_s"].slider.setValue(300)
    panel.sliders["vibrato_cents"].slider.setValue(0)
    panel.sliders["attack_s"].slider.setValue(20)
    panel.sliders["decay_s"].slider.setValue(500)
    panel.sliders["sustain_db"].slider.setValue(-12)
    panel.sliders["temperature"].slider.setValue(40)
    s = src.settings
    assert (s.glide_s, s.vibrato_cents, s.attack_s, s.decay_s, s.sustain_db) == pytest.approx((0.3, 0, 0.02, 0.5, -12))
    assert s.temperature == pytest.approx(0.4)
    assert panel.sliders["glide_s"].readout.text() == "300 ms"
    # mono: the second key is a legato glide of the same line (heard half way after 150 ms)
    win.piano.noteOn.emit(60, 100)
    pull(win.engine, 0.3)
    win.piano.noteOn.emit(72, 100)
    audio = pull(win.engine, 0.6)
    assert held(win.engine) == 1
    f0s = [estimate_f0(audio[i : i + 2048], SR) for i in range(0, len(audio) - 2048, 2048)]
    assert any(midi_to_hz(62) < f < midi_to_hz(70) for f in f0s)  # passing through, not jumping
    assert f0s[-1] == pytest.approx(midi_to_hz(72), rel=0.01)
    win.panic()
    pull(win.engine, 0.1)
    # poly: the same two keys sound together
    qtbot.mouseClick(panel.poly_button, Qt.MouseButton.LeftButton)
    assert not win.engine.mono and not panel.is_mono()
    win.piano.noteOn.emit(60, 100)
    win.piano.noteOn.emit(72, 100)
    pull(win.engine, 0.2)
    assert held(win.engine) == 2
    qtbot.mouseClick(panel.mono_button, Qt.MouseButton.LeftButton)
    assert win.engine.mono
    win.piano.noteOn.emit(67, 100)  # mono again: the line moves, the chord is not cut
    pull(win.engine, 0.2)
    assert held(win.engine) == 2


def test_voice_mode_is_kept_across_a_switch(qtbot, voice_window):
    win = voice_window
    win.voice_panel.poly_button.click()
    win.voice_panel.sliders["glide_s"].slider.setValue(500)
    assert win.set_synth("sing") and win.set_synth("voice")
    assert not win.engine.mono and not win.voice_panel.is_mono()
    assert win.source.settings.glide_s == pytest.approx(0.5)
    assert win.voice_panel.sliders["glide_s"].slider.value() == 500


def test_voice_entry_is_disabled_when_the_voice_cannot_load(qtbot):
    def broken():
        raise FileNotFoundError("default voice weights not found at assets/voice_default.pt")

    win = make_window(qtbot, voice_factory=broken)
    try:
        act = win.tools.synth_actions["voice"]
        assert not act.isEnabled()
        assert "voice weights not found" in act.toolTip()
        assert "Voice unavailable" in win.statusBar().currentMessage()
        engine = win.engine
        assert win.set_synth("voice") is False
        assert win.synth == "sing" and win.engine is engine and win.tools.synth_actions["sing"].isChecked()
        win.piano.noteOn.emit(60, 100)  # the app keeps working
        assert np.abs(pull(win.engine, 0.3)).max() > 0.01
    finally:
        win.shutdown()
    win = make_window(qtbot, voice_factory=None)
    try:
        assert not win.tools.synth_actions["voice"].isEnabled()
    finally:
        win.shutdown()


def test_cli_voice_option():
    assert build_parser().parse_args([]).voice is None
    assert build_parser().parse_args(["--voice"]).voice == ""
    assert build_parser().parse_args(["--voice", "v.pt"]).voice == "v.pt"


def test_main_starts_in_voice_mode(started_windows):
    code, window = started_windows(["--voice", "--sine", "--no-audio"])
    assert code == 0 and started_windows.voice_paths == [None]
    assert window.synth == "voice" and window.tools.synth_actions["sing"].isEnabled()
    assert started_windows.disposed == [window]  # destroyed before the QApplication goes (no crash at exit)


def test_main_reports_a_bad_voice(tmp_path, capsys):
    from sing_app.main import main

    bad = tmp_path / "voice.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--voice", str(tmp_path / "missing.pt"), "--no-audio"]) == 2
    err = capsys.readouterr().err
    assert "Could not load the voice model" in err and "missing.pt" in err
    assert main(["--voice", str(bad), "--no-audio"]) == 2
    assert "Could not load the voice model" in capsys.readouterr().err


@pytest.fixture
def started_windows(qapp, monkeypatch):
    """``start(argv)`` runs ``sing_app.main.main(argv)`` for a moment with a stand-in voice and returns (exit code,
    window); ``start.voice_paths`` records the paths the voice was loaded from."""
    from PyQt6.QtCore import QTimer

    import sing_app.main_window
    import sing_app.synths
    from sing_app.main import main

    windows, voice_paths = [], []
    monkeypatch.setattr(
        sing_app.synths, "load_voice_source", lambda path, device: voice_paths.append(path) or voice_source()
    )
    original = sing_app.main_window.MainWindow.__init__

    def spy(self, *a, **kw):
        original(self, *a, **kw)
        windows.append(self)

    monkeypatch.setattr(sing_app.main_window.MainWindow, "__init__", spy)
    disposed = []  # main() destroys its window on the way out; these tests read it after: only shut it down
    monkeypatch.setattr(
        sing_app.main_window.MainWindow, "dispose", lambda self: disposed.append(self) or self.shutdown()
    )

    def start(argv):
        QTimer.singleShot(300, qapp.quit)
        code = main(argv)
        return code, windows[-1]

    start.voice_paths, start.disposed = voice_paths, disposed
    yield start
    for w in windows:
        w.shutdown()


def test_main_without_sing_weights_opens_in_voice_mode(started_windows, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROSYNTH_SING_CHECKPOINT", str(tmp_path / "deleted.pt"))
    code, window = started_windows(["--no-audio"])
    assert code == 0 and window.synth == "voice"
    assert not window.tools.synth_actions["sing"].isEnabled()
    assert "deleted.pt" in window.synth_errors["sing"]
    assert "SING unavailable" in window.statusBar().currentMessage()
    assert "starting with the voice" in capsys.readouterr().err


def test_a_damaged_default_says_how_to_restore_it(started_windows, tmp_path, monkeypatch):
    import synth_core.engine.sources as sources

    damaged = tmp_path / "sing_default.pt"
    damaged.write_bytes(b"\x80\x02 truncated download")
    monkeypatch.delenv("NEUROSYNTH_SING_CHECKPOINT", raising=False)
    monkeypatch.setattr(sources, "DEFAULT_CHECKPOINT", damaged)
    code, window = started_windows(["--no-audio"])
    assert code == 0 and window.synth == "voice"
    reason = window.synth_errors["sing"]
    assert "damaged" in reason and "git checkout -- assets/sing_default.pt" in reason
