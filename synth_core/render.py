"""Offline rendering of Standard MIDI Files with the engine (used by ``sing-render``)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from .atomic_file import atomic_write
from .device import is_gpu_failure
from .engine import Engine, EngineConfig
from .engine.mpe import carries_mpe
from .gm import gm_family
from .sing.checkpoint import InstrumentInfo, find_instrument

log = logging.getLogger(__name__)

DRUM_CHANNEL = 9  # MIDI channel 10
MAX_RENDER_S = 3600.0  # longer files (e.g. a corrupt delta time of days) are refused, not allocated


class MidiFileError(ValueError):
    """A MIDI file could not be read or rendered."""


_GM_NAME = re.compile(r"gm(\d{3})_")


def default_program_map(instruments: list[InstrumentInfo]) -> dict[int, int]:
    """GM program -> an instrument for it.

    An instrument named after the program (``gmNNN_...``, as in the default GM pack) wins; otherwise the
    instrument of the program's family whose own GM program is nearest, else the family's first
    instrument, else instrument 0.
    """
    programs = {i: int(m.group(1)) for i, info in enumerate(instruments) if (m := _GM_NAME.match(info.name))}
    by_family: dict[str, list[int]] = {}
    for i, info in enumerate(instruments):
        by_family.setdefault(info.family, []).append(i)
    result = {}
    for p in range(128):
        family = by_family.get(gm_family(p) or "", [])
        if family:
            result[p] = min(family, key=lambda i: abs(programs.get(i, 1000) - p))
        else:
            result[p] = 0
    return result


def parse_program_map(spec: str, instruments: list[InstrumentInfo]) -> dict[str, int]:
    """``"0=piano,40=violin,drums=kit"`` or a JSON file ``{"0": "piano"}`` -> {key: instrument index}.

    Keys are GM programs 0..127 or ``drums`` (channel 10).
    """
    if os.path.isfile(spec):
        try:
            raw = json.loads(Path(spec).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read program map {spec}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"program map {spec} must be a JSON object")
        bad = [k for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, str | int)]
        if bad:
            raise ValueError(f"program map {spec}: {bad[0]!r} must map to an instrument name or index")
        items = [(str(k), str(v)) for k, v in raw.items()]
    else:
        items = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if "=" not in part:
                raise ValueError(f"program map entry {part!r} is not PROGRAM=INSTRUMENT")
            k, v = part.split("=", 1)
            items.append((k.strip(), v.strip()))
    result: dict[str, int] = {}
    for k, v in items:
        if k != "drums" and not (k.isdigit() and 0 <= int(k) <= 127):
            raise ValueError(f"program map key {k!r} must be a GM program 0..127 or 'drums'")
        result[k] = find_instrument(instruments, v)
    return result


def midi_events(mid: mido.MidiFile, sample_rate: int) -> tuple[list[tuple[int, mido.Message]], float]:
    """All channel messages of all tracks as (frame, message), tempo changes applied; and the length (s)."""
    events = []
    t = 0.0
    try:
        for msg in mid:  # merged tracks, delta times in seconds (tempo map applied)
            t += msg.time
            if not msg.is_meta and hasattr(msg, "channel"):
                events.append((int(round(t * sample_rate)), msg))
    except (ValueError, TypeError, KeyError, EOFError) as exc:
        raise MidiFileError(f"cannot read MIDI events: {exc}") from exc
    return events, t


def load_midi(path: str | os.PathLike) -> mido.MidiFile:
    try:
        return mido.MidiFile(path)
    except FileNotFoundError as exc:
        raise MidiFileError(f"{path}: no such file") from exc
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise MidiFileError(f"{path}: not a valid Standard MIDI File ({str(exc) or type(exc).__name__})") from exc


@dataclass
class RenderJob:
    """A MIDI file's events ready for an engine: what plays, how long, on which instruments."""

    events: list[tuple[int, mido.Message]]
    total_frames: int
    programs: dict[int, int]
    drums: int | None

    def set_up(self, engine: Engine) -> None:
        """The job's instruments on ``engine`` (channels start on GM program 0; channel 10 on the drum kit)."""
        engine.set_program_map(self.programs)
        engine.set_instrument(self.programs[0])
        if self.drums is not None:
            engine.set_instrument(self.drums, DRUM_CHANNEL)


def prepare_job(
    source, mid: mido.MidiFile, sample_rate: int, program_map: dict[str, int] | None, tail_s: float
) -> RenderJob:
    """The events to render (channel 10 dropped unless the map has ``drums``) and the render's length."""
    events, length = midi_events(mid, sample_rate)
    programs = default_program_map(source.instruments)
    drums = None
    for k, v in (program_map or {}).items():
        if k == "drums":
            drums = v
        else:
            programs[int(k)] = v
    kept = [
        (frame, msg)
        for frame, msg in events
        if not (msg.channel == DRUM_CHANNEL and (drums is None or msg.type == "program_change"))
    ]
    seconds = length + max(0.0, tail_s)
    if not seconds <= MAX_RENDER_S:
        raise MidiFileError(f"the file lasts {length:.0f} s; at most {MAX_RENDER_S:.0f} s can be rendered")
    return RenderJob(kept, int(round(seconds * sample_rate)), programs, drums)


def can_batch(source) -> bool:
    """The source computes whole notes at once (``render_notes``): SING, the sine test tone and the WaveRNN voice. A
    source whose mono notes glide (``supports_glide``) batches only if its ``render_notes`` takes the glides
    (``renders_glides``: the voice; the sine voice stand-in renders through the real-time engine)."""
    if not callable(getattr(source, "render_notes", None)):
        return False
    return not getattr(source, "supports_glide", False) or bool(getattr(source, "renders_glides", False))


def render_midi_chunks(
    source,
    mid: mido.MidiFile,
    sample_rate: int = 48000,
    program_map: dict[str, int] | None = None,
    tail_s: float = 2.0,
    max_voices: int = 32,
    progress: Callable[[int, int, str], None] | None = None,
    mono: bool = False,
    batch: bool | None = None,
) -> Iterator[np.ndarray]:
    """The render of ``mid`` (see :func:`render_midi`) as consecutive float32 chunks, for writing as they come.

    ``batch`` (default: where the source can, :func:`can_batch`, and the file sets no MPE zone, whose per-note
    bend, pressure and slide are the real-time engine's: :func:`~synth_core.engine.mpe.carries_mpe`): plan the notes
    with the engine's event handling, compute them in batches, mix them window by window
    (:mod:`synth_core.engine.batch_render`); the same samples as the real-time engine's ``render_offline``
    (``batch=False``), many times faster.
    """
    job = prepare_job(source, mid, sample_rate, program_map, tail_s)
    config = EngineConfig(sample_rate=sample_rate, max_voices=max_voices, mono=mono)
    if batch is None:
        batch = can_batch(source) and not carries_mpe(msg for _, msg in job.events)
    if batch:
        from .engine.batch_render import render_batch

        staged = None if progress is None else (lambda done, stage: progress(done, job.total_frames, stage))
        yield from render_batch(source, config, job.set_up, job.events, job.total_frames, staged)
        return
    cb = None if progress is None else (lambda done: progress(done, job.total_frames, "rendering"))
    engine = Engine(source, config)
    job.set_up(engine)
    use_cores = getattr(source, "use_cores", None)  # (the voice: its streams on every core)
    before = use_cores(os.cpu_count() or 1) if use_cores else None
    try:
        yield engine.render_offline(job.events, job.total_frames, progress=cb)
    finally:
        if use_cores:
            use_cores(before)


def render_midi(
    source,
    mid: mido.MidiFile,
    sample_rate: int = 48000,
    program_map: dict[str, int] | None = None,
    tail_s: float = 2.0,
    max_voices: int = 32,
    progress: Callable[[int, int, str], None] | None = None,
    mono: bool = False,
    batch: bool | None = None,
) -> np.ndarray:
    """Render every track/channel of ``mid``; per-channel program changes pick instruments.

    ``program_map`` (from :func:`parse_program_map`) overrides :func:`default_program_map`;
    channel 10 (drums) is skipped unless the map has a ``drums`` entry. ``mono``: one legato line
    per channel (gliding for sources that glide). ``batch``: see :func:`render_midi_chunks`.
    ``progress(frames_done, total_frames, stage)``: stage "planning" (batch renders), then "rendering".
    A GPU that fails is left for the CPU, and the render starts again there.
    """
    args = (source, mid, sample_rate, program_map, tail_s, max_voices, progress, mono, batch)
    try:
        chunks = list(render_midi_chunks(*args))
    except Exception as exc:
        if not (is_gpu_failure(exc) and getattr(source, "fall_back_to_cpu", lambda: False)()):
            raise
        log.warning("GPU failed (%s); rendering again on the CPU", str(exc).splitlines()[0])
        chunks = list(render_midi_chunks(*args))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def render_midi_to_wav(
    path: str | os.PathLike,
    source,
    mid: mido.MidiFile,
    sample_rate: int = 48000,
    program_map: dict[str, int] | None = None,
    tail_s: float = 2.0,
    max_voices: int = 32,
    progress: Callable[[int, int, str], None] | None = None,
    mono: bool = False,
    batch: bool | None = None,
    subtype: str = "PCM_16",
) -> tuple[int, float]:
    """Render ``mid`` (see :func:`render_midi`) into a WAV file chunk by chunk, atomically: memory holds a few
    windows, not the file. Returns (frames, peak)."""
    args = (source, mid, sample_rate, program_map, tail_s, max_voices, progress, mono, batch)
    try:
        return _write_wav(path, render_midi_chunks(*args), sample_rate, subtype)
    except Exception as exc:
        if not (is_gpu_failure(exc) and getattr(source, "fall_back_to_cpu", lambda: False)()):
            raise
        log.warning("GPU failed (%s); rendering again on the CPU", str(exc).splitlines()[0])
        return _write_wav(path, render_midi_chunks(*args), sample_rate, subtype)


def _write_wav(path, chunks: Iterator[np.ndarray], sample_rate: int, subtype: str) -> tuple[int, float]:
    frames, peak = 0, 0.0

    def write(f) -> None:
        nonlocal frames, peak
        with sf.SoundFile(f, "w", sample_rate, 1, subtype=subtype, format="WAV") as wav:
            for chunk in chunks:
                wav.write(chunk)
                frames += len(chunk)
                if len(chunk):
                    peak = max(peak, float(np.max(np.abs(chunk))))

    atomic_write(path, write)
    return frames, peak
