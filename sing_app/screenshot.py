"""Regenerate docs/screenshots/*.png from the real window (no audio device).

``python -m sing_app.screenshot [--checkpoint PATH] [--voice PATH] [--out docs/screenshots]``: the window at its
preferred size, offscreen (main_window.png, settings_dialog.png, voice_mode.png). Uses the default weights when
they exist, else a sine test source with realistic instrument names; the Voice mode likewise uses the voice
weights when they load, else a gliding sine stand-in with preset names.

``python -m sing_app.screenshot --xvfb 1280x800 [--scale 2]``: the whole screen as a user sees it, on a virtual X
screen of that size with a window manager (``Xvfb`` and, when installed, ``openbox`` or ``fluxbox``; Debian:
``apt-get install xvfb openbox``), the window at the size it picks itself (``screen_1280x800.png``,
``screen_2560x1600@2x.png`` with ``QT_SCALE_FACTOR=2``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt

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
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        app.processEvents()
        time.sleep(0.005)


def make_window(args, screen: bool):
    """The app's window over the default weights (or the demo source), offline."""
    import mido
    from PyQt6.QtWidgets import QApplication

    from synth_core.engine import SingSource

    from .main_window import MainWindow
    from .theme import apply_dark_theme
    from .widgets.settings_dialog import AudioMidiSettings

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
    if not screen:  # the preferred size, whatever the offscreen screen is
        win.setWindowState(win.windowState() & ~Qt.WindowState.WindowMaximized)
        win.resize(1400, 880)
    win.show()
    win.instrument_list.select(min(2, len(win.instruments) - 1))
    win.morph.pad.set_position(0.3, 0.62)
    for note in (60, 64, 67):
        win.piano.noteOn.emit(note, 100)
        win.piano._key_notes[1000 + note] = note  # show them held
    win._show_midi(mido.Message("note_on", note=48, velocity=90))
    settle(app, 1.0 if screen else 0.6)
    win.refresh_display()
    win.status.clearMessage()  # the permanent fields, not a start-up notice
    app.processEvents()
    return app, win


def offscreen_shots(args) -> None:
    import mido

    from .widgets.settings_dialog import SettingsDialog

    app, win = make_window(args, screen=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
    win.status.clearMessage()  # show the permanent audio/MIDI labels, not the switch notice
    app.processEvents()
    win.grab().save(str(out / "voice_mode.png"))
    win.shutdown()
    print(f"wrote {out / 'main_window.png'}, {out / 'settings_dialog.png'} and {out / 'voice_mode.png'}")


def screen_shot(args) -> Path:
    """Under a real X display: the whole screen with the window as it opens there."""
    app, win = make_window(args, screen=True)
    screen = app.primaryScreen()
    size = screen.size() * screen.devicePixelRatio()
    scale = f"@{screen.devicePixelRatio():g}x" if screen.devicePixelRatio() != 1 else ""
    out = Path(args.out) / f"screen_{size.width()}x{size.height()}{scale}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    screen.grabWindow(0).save(str(out))
    frame = win.frameGeometry()
    print(f"wrote {out}: window {frame.width()}x{frame.height()} at {frame.x()},{frame.y()} on "
          f"{screen.availableGeometry().width()}x{screen.availableGeometry().height()} logical")  # fmt: skip
    win.shutdown()
    return out


def run_under_xvfb(args) -> int:
    """Start Xvfb (and a window manager when one is installed), take :func:`screen_shot` in a child, stop them."""
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is not installed (Debian: apt-get install xvfb openbox)")
    display = f":{args.display}"
    started = [subprocess.Popen(["Xvfb", display, "-screen", "0", f"{args.xvfb}x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    try:
        time.sleep(1.0)
        wm = next((w for w in ("openbox", "fluxbox") if shutil.which(w)), None)
        if wm:
            started.append(subprocess.Popen([wm], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        else:
            print("no window manager found (apt-get install openbox): the window has no frame")
        if args.scale != 1:
            env["QT_SCALE_FACTOR"] = f"{args.scale:g}"
        cmd = [sys.executable, "-m", "sing_app.screenshot", "--screen", "--out", args.out]
        cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
        return subprocess.run(cmd, env=env).returncode
    finally:
        for proc in reversed(started):
            proc.terminate()
            proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--voice", help="voice checkpoint for the Voice mode shot (default: assets/voice_default.pt)")
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--xvfb", metavar="WxH", help="take the whole-screen shot on a virtual X screen of this size")
    ap.add_argument("--scale", type=float, default=1.0, help="with --xvfb: QT_SCALE_FACTOR (2 for HiDPI)")
    ap.add_argument("--display", type=int, default=97, help="with --xvfb: the X display number to use")
    ap.add_argument("--screen", action="store_true", help=argparse.SUPPRESS)  # the child under Xvfb
    args = ap.parse_args(argv)
    if args.xvfb:
        raise SystemExit(run_under_xvfb(args))
    if args.screen:
        screen_shot(args)
        return
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    offscreen_shots(args)


if __name__ == "__main__":
    main()
