"""Benchmark SING streaming for the real-time engine; prints JSON.

For each model size and dtype: time of one batched hop (256 samples at 16 kHz) versus
polyphony, per-voice cost, the largest real-time polyphony (hop time below the 16 ms a hop
lasts), and note-on-to-first-sample compute latency with a cold start (LSTM warm-up) and
from the engine's note cache (state restore; the cached audio is ready at once).

    PYTHONPATH=. python bench/sing_stream.py                       # random weights, both sizes
    PYTHONPATH=. python bench/sing_stream.py --checkpoint assets/sing_default.pt --device cuda
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.common import DTYPES, SIZES, anchor, build_models, machine_info
from bench.common import sync as _sync
from synth_core.device import select_device
from synth_core.engine.sources import SingSource
from synth_core.sing import SING

CHORDS = (8, 32)  # cold chord sizes timed (issue #22's note-on goals)


def bench_model(model: SING, device: torch.device, dtype: torch.dtype, voices: list[int], hops: int) -> dict:
    c = model.config
    hop_s = c.hop / c.sample_rate
    source = SingSource(model, dtype=dtype)
    table = torch.as_tensor(source.instrument_table)
    rows = []
    for n in voices:
        source.prepare(n)
        slots = list(range(n))
        vecs = table[torch.arange(n) % len(table)].numpy()
        source.start_many(slots, vecs, [48 + (i % 40) for i in slots], [100.0] * n)
        source.step(slots)  # warm the kernels
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(hops):
            source.step(slots)
        _sync(device)
        dt = (time.perf_counter() - t0) / hops
        rows.append(
            {
                "voices": n,
                "hop_ms": dt * 1e3,
                **anchor("hop_budget_ms"),
                "per_voice_ms": dt * 1e3 / n,
                "real_time_factor": hop_s / dt,
                **anchor("real_time"),
                "audio_s_per_s": n * hop_s / dt,
                **anchor("sing_paper_audio_s_per_s"),
            }
        )
    realtime = [r["voices"] for r in rows if r["hop_ms"] < hop_s * 1e3]
    headroom = [r["voices"] for r in rows if r["hop_ms"] < 0.5 * hop_s * 1e3]
    # note-on latency: cold start = warm-up + first hop; cached = restore the state after the cached prefix
    source.prepare(1)
    vec = source.instrument_table[:1]
    cold = []
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        source.start_many([0], vec, [60], [100.0])
        source.step([0])
        _sync(device)
        cold.append(time.perf_counter() - t0)
    chords = {}
    for name, warm in (("fp32", torch.float32), ("bf16", torch.bfloat16)):  # the precisions the app chooses from
        try:
            chord_source = SingSource(model, dtype=dtype, warmup_dtype=warm)
            chords[f"{name}_warmup"] = {str(n): cold_chord_ms(chord_source, n) for n in CHORDS}
        except RuntimeError as exc:  # (bf16 not supported here)
            chords[f"{name}_warmup"] = str(exc)
    state = source.save_state(0)
    warm = []
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        source.load_state(0, state)
        _sync(device)
        warm.append(time.perf_counter() - t0)
    return {
        "hops_timed": hops,
        "polyphony": rows,
        "max_realtime_polyphony": max(realtime, default=0),
        "max_polyphony_50pct_load": max(headroom, default=0),
        "note_on_latency_ms": {"cold": min(cold) * 1e3, "cached": min(warm) * 1e3, **anchor("note_on_target_ms")},
        "cold_chord_note_on_ms": chords,
    }


def cold_chord_ms(source: SingSource, n: int, repeats: int = 20) -> dict:
    """A chord of ``n`` new notes at random pitches (MIDI 36-84) warmed up together, as the engine's worker does for
    a cold chord (its batch size primed first), until their first hop is out (the warm-up computes it; the step
    only hands it over): what the chord waits for, p50 / p95 over ``repeats`` chords."""
    source.prepare(n)
    source.prime(n)
    gen = torch.Generator().manual_seed(n)
    vecs = source.instrument_table[:1].repeat(n, 0)
    slots = list(range(n))
    times = []
    for _ in range(repeats):
        pitches = torch.randint(36, 85, (n,), generator=gen).tolist()
        t0 = time.perf_counter()
        source.start_many(slots, vecs, pitches, [100.0] * n)
        source.step(slots)
        times.append((time.perf_counter() - t0) * 1e3)
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "chords": repeats}


def bench_engine(model: SING, dtype: torch.dtype, voices: list[int], seconds: float) -> dict:
    """The whole engine in real time: worker thread + a paced 256-frame render loop (48 kHz)."""
    from synth_core.engine import Engine, EngineConfig

    rows = []
    for n in voices:
        engine = Engine(SingSource(model, dtype=dtype), EngineConfig(max_voices=max(n, 1)))
        engine.start()
        try:
            for i in range(n):
                engine.note_on(40 + (i * 5) % 60, 100)
            block = 256 / 48000
            worst, t_next = 0.0, time.perf_counter()
            end = t_next + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                engine.render(256)
                worst = max(worst, time.perf_counter() - t0)
                t_next += block
                time.sleep(max(0.0, t_next - time.perf_counter()))
            st = engine.stats()
        finally:
            engine.stop()
        rows.append(
            {
                "voices": n,
                "underruns": st.underruns,
                "worker_load": st.render_load,
                "worst_render_ms": worst * 1e3,
                "cold_note_latency_ms": st.note_latency_s * 1e3,
                **anchor("note_on_target_ms"),
            }
        )
    ok = [r["voices"] for r in rows if r["underruns"] == 0]
    return {"seconds": seconds, "runs": rows, "max_polyphony_without_underruns": max(ok, default=0)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="benchmark this checkpoint instead of random-weight models")
    p.add_argument("--sizes", default="reference,small", help=f"comma list of {sorted(SIZES)}")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--voices", default="1,2,4,8,16,32")
    p.add_argument("--hops", type=int, default=3, help="timed hops per point")
    p.add_argument("--device", default="auto")
    p.add_argument("--engine", type=float, default=0.0, help="also run the real engine N seconds per point (fp32)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    voices = [int(v) for v in args.voices.split(",")]
    result = {**machine_info(device), **anchor("hop_budget_ms"), "models": {}}
    for name, model in build_models(device, args.sizes.split(","), args.checkpoint):
        model.eval()
        entry = {"config": model.config.to_dict(), "parameters": model.num_parameters()}
        for dname in args.dtypes.split(","):
            t0 = time.perf_counter()
            entry[dname] = bench_model(model, device, DTYPES[dname], voices, args.hops)
            entry[dname]["bench_s"] = time.perf_counter() - t0
        if args.engine > 0:
            entry["engine_fp32"] = bench_engine(model, torch.float32, voices, args.engine)
        result["models"][name] = entry
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
