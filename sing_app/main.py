"""``sing-app``: the NeuroSynth instrument window.

Loads the SING weights (``--checkpoint``, default assets/sing_default.pt) and the WaveRNN voice (``--voice
[PATH]`` starts with it; default assets/voice_default.pt), opens the audio output and
the MIDI input when available and stays playable without them: with no audio device the app runs
offline (meters, scope and WAV recording still work, nothing is heard); with no MIDI device the
on-screen and computer keyboards play.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .widgets.settings_dialog import AudioMidiSettings

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sing-app", description=__doc__.splitlines()[0].replace("``", ""))
    p.add_argument("--checkpoint", help="SING checkpoint (default: assets/sing_default.pt)")
    p.add_argument("--device", default="auto", help="model device: auto (GPU if any), cpu, cuda, cuda:1 …")
    p.add_argument("--audio-device", help="output device index or (part of its) name; default: system default")
    p.add_argument("--sample-rate", type=int, default=48000, help="output sample rate (default 48000)")
    p.add_argument("--block-size", type=int, default=256, help="audio block size in frames (default 256)")
    p.add_argument(
        "--midi-port",
        help="MIDI input port (ALSA or JACK): its name or a part of it, any case, e.g. 'keystep' (default: none; "
        "pick one in Audio/MIDI settings; other programs can also send to the app's own port NeuroSynth:midi_in)",
    )
    p.add_argument("--midi-channel", type=int, choices=range(1, 17), metavar="1-16", help="only this channel")
    p.add_argument("--no-audio", action="store_true", help="do not open an audio device (offline mode)")
    p.add_argument(
        "--recordings",
        metavar="DIR",
        help="folder for Record's takes (default: the one chosen in the app, else $NEUROSYNTH_RECORDINGS or "
        "~/Music/NeuroSynth; created as needed)",
    )
    p.add_argument(
        "--exact-warmup",
        action="store_true",
        help="warm new SING notes up in fp32 (default on the CPU: bf16 where a short measurement at start finds it "
        "clearly faster)",
    )
    p.add_argument("--sine", action="store_true", help="use the built-in sine test source for SING (no weights needed)")
    p.add_argument(
        "--voice",
        nargs="?",
        const="",
        metavar="PATH",
        help="start with the WaveRNN voice (PATH: a voice checkpoint; default assets/voice_default.pt)",
    )
    return p


def load_source(args: argparse.Namespace):
    """The voice source the arguments ask for; FileNotFoundError / CheckpointError with a clear message."""
    from synth_core.engine import SineSource, SingSource, load_default_source

    if args.sine:
        return SineSource(n_instruments=8)
    warmup = None if args.exact_warmup else "auto"  # measured at start: bf16 where it is clearly faster
    if args.checkpoint:
        source = SingSource.from_checkpoint(args.checkpoint, device=args.device, warmup_dtype=warmup)
    else:
        source = load_default_source(device=args.device, warmup_dtype=warmup)
    use_measured_speed(source)
    return source


def use_measured_speed(source) -> None:
    """A SING engine on the CPU runs torch on the thread count the start-up probe chose (the probe runs here for
    the threads alone when the warm-up precision was given); the choice is logged and shown in the device name.
    A GPU engine keeps torch's default."""
    import torch

    from synth_core.device import describe, use_realtime_threads
    from synth_core.sing.speed_probe import cpu_speed

    if source.device.type != "cpu":
        return
    speed = source.speed or cpu_speed(source.model, source.dtype, warmup=False)
    use_realtime_threads(source.device, speed.threads)
    warmup = "bf16" if source.warmup_dtype == torch.bfloat16 else "fp32"
    source.device_name = f"{describe(source.device)}, {warmup} warm-up"
    log.info("SING on the CPU: %s, measured at start in %.0f ms", speed.summary(), speed.probe_ms)


def voice_factory(args: argparse.Namespace):
    """A function loading the voice the arguments ask for (errors say what is wrong)."""
    from .synths import load_voice_source

    return lambda: load_voice_source(args.voice or None, device=args.device)


def settings_from_args(args: argparse.Namespace) -> AudioMidiSettings:
    dev = args.audio_device
    if dev is not None and dev.isdigit():
        dev = int(dev)
    return AudioMidiSettings(
        audio_device=dev,
        sample_rate=args.sample_rate,
        block_size=args.block_size,
        audio_enabled=not args.no_audio,
        midi_port=args.midi_port,
        midi_channel=None if args.midi_channel is None else args.midi_channel - 1,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from PyQt6.QtWidgets import QApplication, QMessageBox

    from synth_core.device import select_device, use_realtime_threads

    from .app_settings import app_settings
    from .custom_instruments import APP_NAME
    from .main_window import MainWindow
    from .theme import apply_dark_theme
    from .widgets.recorder_view_model import RecorderViewModel

    use_realtime_threads(select_device(args.device))  # an engine on the CPU: one torch thread (SING: as measured)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    apply_dark_theme(app)
    start = "voice" if args.voice is not None else "sing"
    load_voice = voice_factory(args)
    try:
        source, error = (load_voice() if start == "voice" else load_source(args)), None
    except Exception as e:  # noqa: BLE001 - missing/bad weights: fall back to the voice, else tell the user and stop
        source, error = None, e
    if source is None and start == "sing":
        # SING weights missing or damaged: play the voice; the window's status bar says why SING is off
        print(f"sing-app: SING unavailable ({error}); starting with the voice", file=sys.stderr)
        try:
            source, start = load_voice(), "voice"
        except Exception as voice_error:  # noqa: BLE001
            print(f"sing-app: the voice could not be loaded either: {voice_error}", file=sys.stderr)
    if source is None:
        hint = "Try --voice PATH, or leave out --voice to play SING." if start == "voice" else (
            "Try --checkpoint PATH, or --sine to test the app.")  # fmt: skip
        msg = f"Could not load the {'voice' if start == 'voice' else 'instrument'} model:\n{error}\n\n{hint}"
        print(f"sing-app: {msg}", file=sys.stderr)
        if app.platformName() not in ("offscreen", "minimal"):
            QMessageBox.critical(None, "NeuroSynth", msg)
        return 2
    recorder = RecorderViewModel(app_settings(), folder=args.recordings)
    window = MainWindow(source, settings_from_args(args), synth=start, sing_factory=lambda: load_source(args),
                        voice_factory=load_voice, recorder=recorder)  # fmt: skip
    app.aboutToQuit.connect(window.shutdown)
    window.show()
    window.piano.setFocus()
    code = app.exec()
    window.dispose()
    return code


if __name__ == "__main__":
    sys.exit(main())
