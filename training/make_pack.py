"""Render an NSynth-format note pack from a General MIDI SoundFont with FluidSynth.

    python -m training.make_pack --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 --out data/gm_pack \
        [--programs default|0,24,40-42] [--pitches 24-96] [--velocities 25,50,75,100,127] [--workers 2]

Each note is 4 s of mono 16 kHz 16-bit audio: key down at 0 s, key up at 3 s, then 1 s of release.
Notes are rendered at ``--render-rate`` (44.1 kHz: FluidSynth's interpolation aliases less there) and
resampled to 16 kHz. Levels are comparable across notes and velocities: one fixed gain, no per-note
normalisation. Reverb and chorus are off and every note starts from a reset synth, so renders are
deterministic and independent of order or worker count. Existing wavs are kept (resumable); notes whose
render is silent (the SoundFont has nothing there) are dropped and listed in ``pack_report.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from synth_core.dsp import peak_db, resample
from synth_core.gm import (
    NSYNTH_FAMILIES,
    NSYNTH_QUALITIES,
    NSYNTH_SOURCES,
    gm_family,
    instrument_str,
    parse_int_ranges,
    parse_programs,
)

SAMPLE_RATE = 16000
NOTE_SECONDS = 4.0
HOLD_SECONDS = 3.0
NSYNTH_VELOCITIES = (25, 50, 75, 100, 127)
#: Synth gain: with FluidR3_GM the loudest default-pack note (overdriven guitar, velocity 127) peaks at 0.79
#: (-2 dBFS) and velocity-25 notes at about -35 dBFS.
DEFAULT_GAIN = 1.0
#: Notes whose peak is below this (dBFS) count as silent and are dropped.
DEFAULT_SILENCE_DB = -80.0
BLOCK = 64  # FluidSynth's internal block size (frames)


@dataclass(frozen=True)
class Note:
    program: int
    pitch: int
    velocity: int

    @property
    def instrument_str(self) -> str:
        return instrument_str(self.program)

    @property
    def note_str(self) -> str:
        return f"{self.instrument_str}-{self.pitch:03d}-{self.velocity:03d}"


def note_record(note: Note, note_id: int, sample_rate: int = SAMPLE_RATE) -> dict:
    """The NSynth ``examples.json`` entry of one rendered note."""
    family = gm_family(note.program)
    if family is None:
        raise ValueError(f"GM program {note.program} has no NSynth family")
    return {
        "note": note_id,
        "note_str": note.note_str,
        "instrument": note.program,
        "instrument_str": note.instrument_str,
        "pitch": note.pitch,
        "velocity": note.velocity,
        "sample_rate": sample_rate,
        "instrument_family": NSYNTH_FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": NSYNTH_SOURCES.index("synthetic"),
        "instrument_source_str": "synthetic",
        "qualities": [0] * len(NSYNTH_QUALITIES),
        "qualities_str": [],
    }


def all_notes(programs: list[int], pitches: list[int], velocities: list[int]) -> list[Note]:
    """Every (program, pitch, velocity), in a fixed order."""
    return [Note(p, k, v) for p in sorted(programs) for k in sorted(pitches) for v in sorted(velocities)]


class FluidRenderer:
    """One FluidSynth instance rendering isolated notes as float32 mono at 16 kHz."""

    def __init__(self, soundfont: str | os.PathLike, gain: float = DEFAULT_GAIN, render_rate: int = 44100):
        try:
            import fluidsynth
        except ImportError as exc:  # pyfluidsynth missing, or libfluidsynth not found
            raise RuntimeError(
                f"pyfluidsynth is needed to render packs (pip install pyfluidsynth; apt install fluidsynth): {exc}"
            ) from exc
        if not Path(soundfont).is_file():
            raise FileNotFoundError(f"no SoundFont at {soundfont}")
        self.render_rate = int(render_rate)
        settings = {
            "synth.reverb.active": 0,
            "synth.chorus.active": 0,
            "synth.cpu-cores": 1,
            "synth.polyphony": 64,
        }
        self._synth = fluidsynth.Synth(gain=float(gain), samplerate=self.render_rate, **settings)
        self._write_float = fluidsynth._fl.fluid_synth_write_float
        self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p, ctypes.c_int, ctypes.c_int] * 2
        self._write_float.restype = ctypes.c_int
        self._sfid = self._synth.sfload(str(soundfont))
        if self._sfid < 0:
            raise RuntimeError(f"FluidSynth could not load the SoundFont {soundfont}")

    def _render(self, n: int) -> np.ndarray:
        left = np.zeros(n, np.float32)
        right = np.zeros(n, np.float32)
        self._write_float(self._synth.synth, n, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
        return 0.5 * (left + right)

    def render(self, note: Note) -> np.ndarray:
        """4 s float32 mono at 16 kHz: held 3 s, then released (unclipped: values may exceed 1)."""
        synth = self._synth
        synth.system_reset()  # silence every voice and reset controllers: notes never leak into each other
        if synth.program_select(0, self._sfid, 0, note.program) != 0:
            raise RuntimeError(f"the SoundFont has no bank 0 preset {note.program}")
        # Voices keep a little state (filter start-up) from the note they last played: priming them with a few
        # blocks of this very note makes each render bit-identical whatever was rendered before.
        synth.noteon(0, note.pitch, note.velocity)
        self._render(4 * BLOCK)
        synth.system_reset()
        self._render(BLOCK)
        synth.program_select(0, self._sfid, 0, note.program)
        # FluidSynth renders in blocks of 64 frames and buffers the rest of a block between calls; rendering whole
        # blocks only keeps every note aligned the same way (no leftovers of the previous note, same key-up time).
        hold = -(-round(HOLD_SECONDS * self.render_rate) // BLOCK) * BLOCK
        total = -(-round(NOTE_SECONDS * self.render_rate) // BLOCK) * BLOCK
        self._synth.noteon(0, note.pitch, note.velocity)
        held = self._render(hold)
        self._synth.noteoff(0, note.pitch)
        audio = np.concatenate([held, self._render(total - hold)])
        out = resample(audio, self.render_rate, SAMPLE_RATE)
        n = round(NOTE_SECONDS * SAMPLE_RATE)
        return np.pad(out[:n], (0, max(0, n - len(out))))

    def close(self) -> None:
        self._synth.delete()


def write_wav_atomic(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM wav, written beside ``path`` then renamed (an interrupted run leaves no truncated wav)."""
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


# ---- worker processes: one FluidRenderer each ------------------------------------------------------------------

_renderer: FluidRenderer | None = None
_job: dict = {}


def _init_worker(soundfont: str, gain: float, render_rate: int, audio_dir: str, silence_db: float) -> None:
    global _renderer, _job
    _renderer = FluidRenderer(soundfont, gain, render_rate)
    _job = {"audio_dir": Path(audio_dir), "silence_db": silence_db}


def _render_one(note: Note) -> tuple[Note, str, float]:
    """Render and save one note -> (note, 'ok' | 'silent' | 'clipped', peak)."""
    assert _renderer is not None
    audio = _renderer.render(note)
    peak = float(np.max(np.abs(audio)))
    if peak_db(audio) < _job["silence_db"]:
        return note, "silent", peak
    write_wav_atomic(_job["audio_dir"] / f"{note.note_str}.wav", audio)
    return note, ("clipped" if peak >= 1.0 else "ok"), peak


def _run(todo: list[Note], workers: int, init_args: tuple) -> Iterator[tuple[Note, str, float]]:
    if workers <= 1 or len(todo) <= 1:
        _init_worker(*init_args)
        yield from map(_render_one, todo)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(_render_one, todo, chunksize=16)


def make_pack(
    soundfont: str | os.PathLike,
    out: str | os.PathLike,
    programs: list[int],
    pitches: list[int],
    velocities: list[int],
    workers: int = 2,
    gain: float = DEFAULT_GAIN,
    render_rate: int = 44100,
    silence_db: float = DEFAULT_SILENCE_DB,
    progress: bool = True,
) -> dict:
    """Render the pack into ``out`` (``audio/*.wav``, ``examples.json``, ``pack_report.json``); returns the report."""
    from tqdm import tqdm

    if not Path(soundfont).is_file():
        raise FileNotFoundError(f"no SoundFont at {soundfont}")
    out = Path(out)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for bad in (p for p in pitches if not 0 <= p <= 127):
        raise ValueError(f"pitch {bad} is outside MIDI 0..127")
    for bad in (v for v in velocities if not 1 <= v <= 127):
        raise ValueError(f"velocity {bad} is outside MIDI 1..127")
    notes = all_notes(programs, pitches, velocities)
    existing = {n for n in notes if (audio_dir / f"{n.note_str}.wav").is_file()}
    todo = [n for n in notes if n not in existing]
    init_args = (str(soundfont), float(gain), int(render_rate), str(audio_dir), float(silence_db))

    t0 = time.perf_counter()
    rendered, silent, clipped, peak = set(), [], [], 0.0
    bar = tqdm(total=len(todo), desc="render", unit="note", disable=not progress, smoothing=0.05)
    for note, status, note_peak in _run(todo, workers, init_args):
        bar.update()
        peak = max(peak, note_peak)
        if status == "silent":
            silent.append(note)
            continue
        rendered.add(note)
        if status == "clipped":
            clipped.append(note)
    bar.close()
    seconds = time.perf_counter() - t0

    kept = [n for n in notes if n in existing or n in rendered]  # the fixed order gives stable note ids
    examples = {n.note_str: note_record(n, i) for i, n in enumerate(kept)}
    tmp = out / ".examples.json.tmp"
    lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in examples.items())  # one note per line
    tmp.write_text("{\n" + lines + "\n}\n")
    os.replace(tmp, out / "examples.json")

    audio_seconds = len(todo) * NOTE_SECONDS
    report = {
        "soundfont": str(Path(soundfont).resolve()),
        "programs": sorted(programs),
        "pitches": sorted(pitches),
        "velocities": sorted(velocities),
        "gain": gain,
        "render_rate": render_rate,
        "sample_rate": SAMPLE_RATE,
        "silence_db": silence_db,
        "notes": len(kept),
        "instruments": len({n.program for n in kept}),
        "rendered": len(rendered),
        "skipped_existing": len(existing),
        "dropped_silent": [n.note_str for n in silent],
        "clipped": [n.note_str for n in clipped],
        "peak": round(peak, 4),
        "peak_dbfs": round(peak_db(np.array([peak])), 2) if peak > 0 else None,
        "render_seconds": round(seconds, 2),
        "realtime_factor": round(audio_seconds / seconds, 1) if todo and seconds > 0 else None,
        "workers": workers,
        "bytes": sum(f.stat().st_size for f in audio_dir.glob("*.wav")),
    }
    (out / "pack_report.json").write_text(json.dumps(report, indent=1))
    return report


def parse_range(spec: str) -> list[int]:
    """'24-96' or '60,62,64' or '24-48,60' -> sorted unique ints (argparse type)."""
    try:
        return parse_int_ranges(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _programs(spec: str) -> list[int]:
    try:
        return parse_programs(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.make_pack", description=__doc__.split("\n\n")[0])
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2", help="General MIDI .sf2 file")
    ap.add_argument("--out", default="data/gm_pack", help="output folder (audio/, examples.json)")
    ap.add_argument("--programs", type=_programs, default="default", help="'default' or GM programs, e.g. 0,24,40-42")
    ap.add_argument("--pitches", type=parse_range, default="24-96", help="MIDI pitches, e.g. 24-96")
    ap.add_argument("--velocities", type=parse_range, default="25,50,75,100,127", help="MIDI velocities")
    ap.add_argument("--workers", type=int, default=2, help="render processes (one synth each)")
    ap.add_argument("--gain", type=float, default=DEFAULT_GAIN, help="fixed FluidSynth gain for every note")
    ap.add_argument("--render-rate", type=int, default=44100, help="FluidSynth sample rate before resampling")
    ap.add_argument("--silence-db", type=float, default=DEFAULT_SILENCE_DB, help="drop notes peaking below this")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        report = make_pack(
            args.soundfont, args.out, args.programs, args.pitches, args.velocities, max(1, args.workers),
            args.gain, args.render_rate, args.silence_db, progress=not args.no_progress,
        )  # fmt: skip
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"make_pack: error: {exc}", file=sys.stderr)
        return 1
    summary = {k: v for k, v in report.items() if k not in ("programs", "pitches", "dropped_silent", "clipped")}
    summary["dropped_silent"] = len(report["dropped_silent"])
    summary["clipped"] = len(report["clipped"])
    print(json.dumps(summary, indent=1))
    if report["dropped_silent"]:
        dropped = report["dropped_silent"]
        print(f"dropped {len(dropped)} silent notes: {', '.join(dropped[:10])}{' ...' if len(dropped) > 10 else ''}")
    if report["clipped"]:
        n = len(report["clipped"])
        print(f"WARNING: {n} notes clipped (peak {report['peak']:.3f}); lower --gain", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
