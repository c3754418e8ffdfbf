"""Regenerate docs/screenshots/*.png from the real window (offscreen, no audio device).

``python -m sing_app.screenshot [--checkpoint PATH] [--out docs/screenshots]``: uses the default weights
when they exist, else a sine test source with realistic NSynth-like instrument names.
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
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
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_ports=lambda: [])
    win.show()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    win.instrument_list.select(min(2, len(win.instruments) - 1))
    win.morph.pad.set_position(0.3, 0.62)
    for note in (60, 64, 67):
        win.piano.noteOn.emit(note, 100)
        win.piano._key_notes[1000 + note] = note  # show them held
    win._show_midi(mido.Message("note_on", note=48, velocity=90))
    t_end = __import__("time").monotonic() + 0.6
    while __import__("time").monotonic() < t_end:
        app.processEvents()
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
    win.shutdown()
    print(f"wrote {out / 'main_window.png'} and {out / 'settings_dialog.png'}")


if __name__ == "__main__":
    main()
