"""Offline rendering speed of one MIDI file, as a user runs it: ``sing-render`` (SING, the sine tone, the WaveRNN
voice) against FluidSynth, whole commands (start-up included) timed in one run; prints JSON. ``--engine`` adds SING
and the voice through the real-time engine block by block (``--realtime-engine``: the path before batching).

x real time = the file's length / the wall time; ``vs_fluidsynth`` = FluidSynth's wall time / ours (1.0 = as fast
as FluidSynth), a ratio measured on the same machine in the same run, so it carries over between CPUs.

    PYTHONPATH=. python bench/render_speed.py                       # the Maple Leaf Rag (music21's corpus)
    PYTHONPATH=. python bench/render_speed.py song.mid --reps 5 --engine
    PYTHONPATH=. python bench/render_speed.py --reps 1 --engine --rows voice,voice_realtime_engine --breakdown
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido

from bench.common import cpu_model

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def maple_leaf_rag(folder: Path) -> Path:
    """Scott Joplin's Maple Leaf Rag as music21 writes it (129.6 s, 2,308 notes; needs ``pip install music21``)."""
    import music21

    path = folder / "maple_leaf_rag.mid"
    music21.corpus.parse("joplin/maple_leaf_rag").write("midi", fp=str(path))
    return path


def timed(cmd: list[str], reps: int) -> dict:
    """Median and spread of ``reps`` wall times of ``cmd`` (it must succeed)."""
    walls = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - t)
    return {"wall_s": round(statistics.median(walls), 3), "walls_s": [round(w, 3) for w in walls]}


def breakdown(midi: Path, engine: bool) -> dict:
    """Where a SING render's time goes, in this process (start-up excluded): the engine's block-by-block render
    (``engine``), the batch path's plan, its notes computed once per distinct note or once per occurrence, and its
    mix."""
    import numpy as np

    from synth_core.engine import EngineConfig, load_default_source
    from synth_core.engine.batch_render import mix_plan
    from synth_core.engine.plan import NotePlanner
    from synth_core.render import load_midi, prepare_job, render_midi

    source = load_default_source(device="cpu")
    mid = load_midi(midi)
    out: dict = {}
    if engine:
        t = time.perf_counter()
        render_midi(source, mid, batch=False)
        out["engine_render_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    job = prepare_job(source, mid, 48000, None, 2.0)
    planner = NotePlanner(source, EngineConfig(sample_rate=48000, max_voices=32))
    job.set_up(planner.engine)
    plan = planner.run(job.events, job.total_frames)
    out["plan_s"] = round(time.perf_counter() - t, 3)
    out["notes"] = len(plan.notes)
    out["distinct_notes"] = len({n.key() for n in plan.notes})
    lengths = [int((n.end - n.start) * plan.base_rate) + 64 for n in plan.notes]
    sustain = [plan.sustain_step] * len(plan.notes)
    vecs = np.stack([n.vec for n in plan.notes])
    pitches, velocities = [n.note for n in plan.notes], [float(n.velocity) for n in plan.notes]
    t = time.perf_counter()
    source.render_notes(vecs, pitches, velocities, sustain, lengths)
    out["compute_every_occurrence_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    chunks = list(mix_plan(source, plan, 24))
    out["compute_distinct_and_mix_s"] = round(time.perf_counter() - t, 3)
    out["output_s"] = round(sum(len(c) for c in chunks) / 48000, 2)
    return out


def voice_breakdown(midi: Path) -> dict:
    """Where a voice render's time goes, in this process (start-up excluded): the plan, the distinct notes computed
    and mixed; the source samples of the distinct notes against those of every occurrence."""
    from synth_core.engine import EngineConfig
    from synth_core.engine.batch_render import mix_plan
    from synth_core.engine.note_mixer import NoteMixer
    from synth_core.engine.plan import NotePlanner
    from synth_core.engine.wavernn_source import load_default_voice
    from synth_core.render import load_midi, prepare_job

    source = load_default_voice(device="cpu")
    mid = load_midi(midi)
    out: dict = {}
    t = time.perf_counter()
    job = prepare_job(source, mid, 48000, {str(p): 0 for p in range(128)}, 2.0)
    planner = NotePlanner(source, EngineConfig(sample_rate=48000, max_voices=4))  # (sing-render --voice's polyphony)
    job.set_up(planner.engine)
    plan = planner.run(job.events, job.total_frames)
    out["plan_s"] = round(time.perf_counter() - t, 3)
    out["notes"] = len(plan.notes)
    keys = [n.key() for n in plan.notes]
    out["distinct_notes"] = len(set(keys))
    need = [NoteMixer(plan, 24).source_samples(n) for n in plan.notes]
    longest: dict = {}
    for k, n in zip(keys, need, strict=True):
        longest[k] = max(longest.get(k, 0), n)
    out["source_s_every_occurrence"] = round(sum(need) / source.sample_rate, 1)
    out["source_s_distinct"] = round(sum(longest.values()) / source.sample_rate, 1)
    import torch

    torch.set_num_threads(1)  # as render_batch runs it (the notes run on threads of their own)
    t = time.perf_counter()
    chunks = list(mix_plan(source, plan, 24))
    out["compute_distinct_and_mix_s"] = round(time.perf_counter() - t, 3)
    out["output_s"] = round(sum(len(c) for c in chunks) / 48000, 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("midi", nargs="?", help="MIDI file (default: the Maple Leaf Rag from music21's corpus)")
    p.add_argument("--reps", type=int, default=3, help="runs of each command (the voice runs once unless --voice-reps)")
    p.add_argument("--voice-reps", type=int, default=1)
    p.add_argument("--no-voice", action="store_true", help="skip the WaveRNN voice (about a minute per run)")
    p.add_argument("--engine", action="store_true", help="also SING through the real-time engine (--realtime-engine)")
    p.add_argument("--breakdown", action="store_true", help="also time the batch path's stages in this process")
    p.add_argument("--rows", help="only these commands (comma separated: fluidsynth, sing, sine, voice, ...)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="render_speed_"))
    try:
        midi = Path(args.midi) if args.midi else maple_leaf_rag(tmp)
        length = mido.MidiFile(midi).length
        out = str(tmp / "out.wav")
        render = [sys.executable, "-m", "sing_app.render_cli", str(midi), "-o", out, "-q"]
        rows: dict[str, list[str]] = {}
        if shutil.which("fluidsynth") and os.path.isfile(SOUNDFONT):
            rows["fluidsynth"] = ["fluidsynth", "-ni", "-F", out, "-r", "48000", SOUNDFONT, str(midi)]
        rows["sing"] = render
        rows["sine"] = [*render, "--sine"]
        if args.engine:
            rows["sing_realtime_engine"] = [*render, "--realtime-engine"]
        if not args.no_voice:
            rows["voice"] = [*render, "--voice"]
            if args.engine:
                rows["voice_realtime_engine"] = [*render, "--voice", "--realtime-engine"]
        if args.rows:
            wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
            if unknown := [r for r in wanted if r not in rows]:
                p.error(f"unknown rows {unknown}; this run has {list(rows)}")
            rows = {r: rows[r] for r in wanted}
        results = {}
        for name, cmd in rows.items():
            reps = args.voice_reps if name.startswith("voice") else args.reps
            r = timed(cmd, reps)
            r["x_real_time"] = round(length / r["wall_s"], 2)
            results[name] = r
        if "fluidsynth" in results:
            for r in results.values():
                r["vs_fluidsynth"] = round(results["fluidsynth"]["wall_s"] / r["wall_s"], 3)
        extra = {}
        if args.breakdown:
            if not args.rows or any(r in ("sing", "sing_realtime_engine") for r in rows):
                extra["breakdown"] = breakdown(midi, args.engine)
            if not args.no_voice:
                extra["voice_breakdown"] = voice_breakdown(midi)
        print(
            json.dumps(
                {
                    "bench": "render_speed",
                    "midi": midi.name,
                    "length_s": round(length, 2),
                    "notes": sum(1 for m in mido.MidiFile(midi) if m.type == "note_on" and m.velocity > 0),
                    "cpu_model": cpu_model(),
                    "cpu_count": os.cpu_count(),
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2),
                    "results": results,
                    **extra,
                },
                indent=2,
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
