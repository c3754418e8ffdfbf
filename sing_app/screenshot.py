"""Regenerate docs/screenshots/*.png from the real window (offscreen, no audio device).

``python -m sing_app.screenshot [--checkpoint PATH] [--voice PATH] [--out docs/screenshots]``: uses the default
weights when they exist, else a sine test source with realistic NSynth-like instrument names; the Voice mode
(voice_mode.png) likewise uses the voice weights when they load, else a gliding sine stand-in with preset names.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

DEMO_NAMES = [
    ("keyboard_acoustic_004", "keyboard"), ("bass_synthetic_033", "bass"), ("flute_acoustic_002", "flute"),
    ("guitar_electronic_022", "guitar"), ("string_acoustic_012", "string"), ("brass_acoustic_006", "brass"),
    ("organ_electronic_007", "organ"), ("reed_acoustic_023", "reed"), ("mallet_acoustic_047", "mallet"),
    ("synth_lead_synthetic_000", "synth_lead"), ("vocal_synthetic_003", "vocal"), ("bass_electronic_018", "bass"),
    ("keyboard_electronic_001", "keyboard"), ("guitar_acoustic_010", "guitar"), ("string_acoustic_056", "string"),
    ("flute_synthetic_000", "flute"), ("brass_acoustic_016", "brass"), ("mallet_acoustic_062", "mallet"),
]  # fmt: skip


def demo_source():
    """SineSource dressed with NSynth-like names and a spread-out random table (for screenshots only)."""
    from synth_core.engine import SineSource
    from synth_core.sing import InstrumentInfo

    src = SineSource(n_instruments=len(DEMO_NAMES))
    src.instruments = [InstrumentInfo(n, f) for n, f in DEMO_NAMES]
    rng = np.random.default_rng(3)
    src.instrument_table = (rng.standard_normal((len(DEMO_NAMES), 16)) * np.linspace(1.2, 0.3, 16)).astype(np.float32)
    return src


VOICE_PRESETS = ["dark 1", "dark 2", "warm 1", "warm 2", "mid 1", "mid 2", "bright 1", "bright 2"]


def demo_voice_source():
    """The sine voice stand-in with brightness-named presets (for screenshots only)."""
    from synth_core.engine.sine_voice import SineVoiceSource

    src = SineVoiceSource(n_presets=len(VOICE_PRESETS), names=VOICE_PRESETS)
    tilt = np.linspace(-1.0, 1.0, len(VOICE_PRESETS))[:, None] * np.linspace(0.6, 0.05, 20)  # dark .. bright
    rng = np.random.default_rng(5)
    src.instrument_table = (tilt + 0.08 * rng.standard_normal(tilt.shape)).astype(np.float32)
    return src


def voice_factory(path: str | None):
    """The real voice when it loads, else the stand-in (a screenshot should never fail for want of weights)."""

    def load():
        from .synths import load_voice_source

        try:
            return load_voice_source(path, device="cpu")
        except Exception as e:  # noqa: BLE001
            print(f"voice not loaded ({e}); using the sine stand-in")
            return demo_voice_source()

    return load


def settle(app, seconds: float) -> None:
    import time

    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        app.processEvents()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--voice", help="voice checkpoint for the Voice mode shot (default: assets/voice_default.pt)")
    ap.add_argument("--out", default="docs/screenshots")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import mido
    from PyQt6.QtWidgets import QApplication

    from synth_core.engine import SingSource

    from .main_window import MainWindow
    from .theme import apply_dark_theme
    from .widgets.settings_dialog import AudioMidiSettings, SettingsDialog

    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    default = Path("assets/sing_default.pt")
    if args.checkpoint or default.exists():
        source = SingSource.from_checkpoint(args.checkpoint or default, device="cpu")
    else:
        source = demo_source()
    win = MainWindow(
        source, AudioMidiSettings(audio_enabled=False), list_ports=lambda: [], voice_factory=voice_factory(args.voice)
    )
    win.show()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    win.instrument_list.select(min(2, len(win.instruments) - 1))
    win.morph.pad.set_position(0.3, 0.62)
    for note in (60, 64, 67):
        win.piano.noteOn.emit(note, 100)
        win.piano._key_notes[1000 + note] = note  # show them held
    win._show_midi(mido.Message("note_on", note=48, velocity=90))
    settle(app, 0.6)
    win.refresh_display()
    app.processEvents()
    win.grab().save(str(out / "main_window.png"))
    devices = [{"name": "Built-in Audio Analog Stereo", "index": 0, "default_samplerate": 48000.0, "is_default": True}]
    ports = ["Arturia KeyStep 32 MIDI 1", "Midi Through Port-0"]
    dlg = SettingsDialog(replace(win.settings, audio_enabled=True), lambda: devices, lambda: ports, win)
    dlg.show()
    app.processEvents()
    dlg.grab().save(str(out / "settings_dialog.png"))
    dlg.close()
    # Voice mode: mono line gliding to a new key, a preset blended on the pad
    win.piano.release_all()
    win.piano._key_notes.clear()
    win._show_midi(mido.Message("note_off", note=48))
    if not win.set_synth("voice"):
        raise SystemExit(f"cannot switch to the voice: {win.synth_errors.get('voice')}")
    win.instrument_list.select(min(5, len(win.instruments) - 1))
    win.morph.pad.set_position(0.7, 0.35)
    win.voice_panel.sliders["glide_s"].slider.setValue(120)
    win.piano.noteOn.emit(62, 100)
    settle(app, 0.3)
    win.piano.noteOn.emit(69, 100)
    win.piano._key_notes[1069] = 69
    settle(app, 0.6)
    win.refresh_display()
    win.statusBar().clearMessage()  # show the permanent audio/MIDI labels, not the switch notice
    app.processEvents()
    win.grab().save(str(out / "voice_mode.png"))
    win.shutdown()
    print(f"wrote {out / 'main_window.png'}, {out / 'settings_dialog.png'} and {out / 'voice_mode.png'}")


if __name__ == "__main__":
    main()
