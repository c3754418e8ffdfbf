"""``sing-render``: render a MIDI file or a single note to WAV with a SING checkpoint or the WaveRNN voice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sing-render", description=__doc__)
    p.add_argument("midi", nargs="?", help="Standard MIDI File to render")
    p.add_argument("-o", "--output", help="output WAV path")
    p.add_argument("--program-map", help="'0=piano,40=violin,drums=NAME' or a JSON file {program: instrument}")
    p.add_argument("--checkpoint", help="SING checkpoint (default: assets/sing_default.pt)")
    p.add_argument(
        "--sine",
        action="store_true",
        help="render with the engine's built-in harmonic test tone instead of SING (no weights needed)",
    )
    p.add_argument(
        "--voice",
        nargs="?",
        const="",
        metavar="PATH",
        help="render with the WaveRNN voice (PATH: a voice checkpoint; default assets/voice_default.pt); "
        "its timbre presets are the instruments",
    )
    p.add_argument("--mono", action="store_true", help="one legato line per channel (the voice glides)")
    p.add_argument("--glide", type=float, metavar="S", help="voice glide (portamento) time in seconds")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--tail", type=float, default=2.0, help="seconds rendered after the last event")
    p.add_argument("--note", type=int, help="render one note (MIDI pitch) instead of a file")
    p.add_argument(
        "--instrument",
        default="0",
        help="instrument for --note: its name, a part of it ('grand piano', 'nylon'), its id or index "
        "(with --voice: the preset of all notes)",
    )
    p.add_argument("--velocity", type=int, default=100)
    p.add_argument("--duration", type=float, default=4.0, help="seconds the --note is held")
    p.add_argument("--max-voices", type=int, help="polyphony (default 32; 4 with --voice)")
    p.add_argument("--float", action="store_true", help="write 32-bit float WAV (default 16-bit PCM)")
    p.add_argument(
        "--realtime-engine",
        action="store_true",
        help="render through the real-time engine block by block, as the app plays (the same notes, slower; "
        "by default notes are computed in batches, the voice's with noise drawn per note)",
    )
    p.add_argument(
        "--list-instruments",
        action="store_true",
        help="print the instruments: index, name, family and id (each, or a part of a name, is an --instrument)",
    )
    p.add_argument(
        "--custom-dir",
        metavar="DIR",
        help="the folder of your own instruments (made in sing-app; default: the app's), played by name with SING",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def _fail(msg: str) -> int:
    print(f"sing-render: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _load_source(args: argparse.Namespace):
    """The source the arguments ask for (CheckpointError, FileNotFoundError, RuntimeError on failure)."""
    from synth_core.engine import SineSource, SingSource, load_default_source

    from . import synths

    if args.voice is not None:
        source = synths.load_voice_source(args.voice or None, device=args.device)
        if args.glide is not None:
            source.set_settings(glide_s=args.glide)
        return source
    if args.sine:
        return SineSource()
    if args.checkpoint:
        return SingSource.from_checkpoint(args.checkpoint, device=args.device)
    return load_default_source(device=args.device)


def _custom_dir(arg: str | None) -> Path:
    """The folder of the user's own instruments: ``arg``, else the app's (``sing_app.custom_instruments``)."""
    from .custom_instruments import default_custom_dir

    return Path(arg) if arg else default_custom_dir()


def add_custom_instruments(source, folder: Path) -> int:
    """Append the user's instruments fitted to ``source``'s model (the app's files in ``folder``) to its instruments,
    table and gains (each plays at its own level, as in the app); how many."""
    import numpy as np

    from synth_core.sing.checkpoint import InstrumentInfo

    from .custom_instruments import CustomInstrumentStore, model_fingerprint

    table = np.asarray(source.instrument_table, np.float32)
    insts = [
        i for i in CustomInstrumentStore(folder).for_model(model_fingerprint(table)) if i.vector.size == table.shape[1]
    ]
    if not insts:
        return 0
    gains = getattr(source, "instrument_gains", None)
    source.instruments = [*source.instruments, *(InstrumentInfo(i.name, "custom") for i in insts)]
    source.instrument_table = np.concatenate([table, np.stack([i.vector for i in insts]).astype(np.float32)])
    source.instrument_gains = np.concatenate(
        [np.ones(len(table), np.float32) if gains is None else np.asarray(gains, np.float32),
         np.array([10.0 ** (i.gain_db / 20.0) for i in insts], np.float32)]
    )  # fmt: skip
    return len(insts)


def _one_note(note: int, velocity: int, duration: float):
    """A MIDI file of one note held ``duration`` seconds on channel 1."""
    import mido

    track = mido.MidiTrack(
        [
            mido.Message("program_change", program=0, time=0),
            mido.Message("note_on", note=note, velocity=max(1, min(127, velocity)), time=0),
            mido.Message("note_off", note=note, time=int(round(max(0.01, duration) * 960))),
        ]
    )
    mid = mido.MidiFile(ticks_per_beat=480)  # default tempo 120 bpm: 960 ticks/s
    mid.tracks.append(track)
    return mid


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.voice and args.midi is None and args.voice.lower().endswith((".mid", ".midi", ".kar")):
        args.midi, args.voice = args.voice, ""  # "--voice song.mid": the file is what to render
    import soundfile as sf

    from synth_core.render import MidiFileError, load_midi, parse_program_map, render_midi_to_wav
    from synth_core.sing.checkpoint import CheckpointError, find_instrument

    if args.voice is not None and (args.sine or args.checkpoint):
        return _fail("--voice renders with the WaveRNN voice; leave out --sine / --checkpoint")
    if args.glide is not None and (args.voice is None or not 0.0 <= args.glide <= 10.0):
        return _fail("--glide needs --voice and a time of 0..10 s")
    if args.max_voices is None:
        args.max_voices = 4 if args.voice is not None else 32
    if not 1 <= args.max_voices <= 256:
        return _fail("--max-voices must be 1..256")
    if not args.list_instruments:
        if args.output is None:
            return _fail("an output file is required (-o out.wav)")
        if (args.midi is None) == (args.note is None):
            return _fail("give either a MIDI file or --note PITCH")
        if args.sample_rate < 22050 or args.sample_rate > 192000:
            return _fail("--sample-rate must be between 22050 and 192000")
    mid = None
    if args.midi is not None and not args.list_instruments:
        try:
            mid = load_midi(args.midi)
        except MidiFileError as exc:
            return _fail(str(exc))
    try:
        source = _load_source(args)
    except (CheckpointError, FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc))
    except (OSError, ValueError) as exc:  # a voice checkpoint the loader could not make sense of
        return _fail(f"cannot load {args.voice or 'the voice'}: {exc}")
    if args.voice is None and not args.sine:  # the user's own instruments (the app's files) play by name too
        add_custom_instruments(source, _custom_dir(args.custom_dir))
    if args.list_instruments:
        from synth_core.sing.instrument_names import display_name, family_label

        for i, info in enumerate(source.instruments):
            print(f"{i}\t{display_name(info.name)}\t{family_label(info.family) or '-'}\t{info.name}")
        return 0
    sr = args.sample_rate
    progress = None
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, unit="s", desc="rendering", file=sys.stderr, leave=False)

        def progress(done: int, total: int, stage: str = "rendering") -> None:
            if stage != bar.desc:  # a new stage (planning the notes, then rendering them): its own rate and ETA
                bar.set_description_str(stage, refresh=False)
                bar.reset(total=round(total / sr, 2))
            bar.total = round(total / sr, 2)
            bar.n = round(done / sr, 2)
            bar.refresh()

    out = Path(args.output)
    try:
        if mid is not None:
            pmap = parse_program_map(args.program_map, source.instruments) if args.program_map else None
            if args.voice is not None and pmap is None:  # the voice's presets are no GM instruments
                preset = find_instrument(source.instruments, args.instrument)
                pmap = {str(p): preset for p in range(128)}
        else:
            if not 0 <= args.note <= 127:
                return _fail("--note must be 0..127")
            pmap = {"0": find_instrument(source.instruments, args.instrument)}
            mid = _one_note(args.note, args.velocity, args.duration)
        frames, peak = render_midi_to_wav(
            out,
            source,
            mid,
            sr,
            pmap,
            args.tail,
            args.max_voices,
            progress,
            args.mono,
            batch=False if args.realtime_engine else None,
            subtype="FLOAT" if args.float else "PCM_16",
        )
    except MidiFileError as exc:
        return _fail(f"{args.midi}: {exc}")
    except (KeyError, ValueError) as exc:
        return _fail(str(exc.args[0]) if exc.args else str(exc))
    except (OSError, sf.LibsndfileError) as exc:
        return _fail(f"cannot write {out}: {exc}")
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"wrote {out} ({frames / sr:.2f} s, {sr} Hz, peak {peak:.2f})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
