"""Soak: the real engine playing a SING voice through JACK (dummy driver) for a long time; prints JSON.

The app's default settings, nothing tuned for the test: 48 kHz output, 256-frame blocks (5.3 ms),
``EngineConfig`` defaults (16 voices, the worker renders 0.25 s ahead of playback, note cache on),
fp32 model of the shipped size (LSTM 3 x 256, decoder 512, a harmonic bank; ``--size small``: 3 x 512,
1024, frame atoms) with random weights (speed does not depend on them) or ``--checkpoint``. ``--voices`` notes
are held at a time; every ``--period`` seconds they are released and the next chord starts (the released voices
are stolen, so up to twice as many slots run for a moment). Reports engine underruns, device underflows, jackd
xruns, the render worker's step time per hop (budget 16 ms), its load, the process CPU use, silent stretches, stuck
voices at the end, and note-on latencies (p50 / p95 / max of every note played, cold and cached): until the
first sample is ready for the audio side (``note_on_latency_ms``) and until the audio block that starts playing
it (``note_on_to_block_ms``; the device's output latency comes on top). ``--no-cache`` makes every note cold.

    PYTHONPATH=. python bench/soak.py                # 600 s, 16 voices
    PYTHONPATH=. python bench/soak.py --seconds 60 --voices 24 --checkpoint assets/sing_default.pt
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch

from bench.common import SIZES, anchor, busy_core, cpu_steal_s, machine_info
from bench.jack_keys import chord
from synth_core.device import select_device
from synth_core.engine import Engine, EngineConfig
from synth_core.engine.audio_output import DEFAULT_AHEAD_BLOCKS, AudioOutput
from synth_core.engine.sources import SingSource
from synth_core.sing import SING, SINGConfig, load_checkpoint


class TimedSource:
    """Wraps a voice source and records the duration and width of every ``step`` (worker thread)."""

    def __init__(self, source):
        self._source = source
        self.step_s: list[float] = []
        self.step_slots: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def step(self, slots, *args):
        t0 = time.perf_counter()
        out = self._source.step(slots, *args)
        self.step_s.append(time.perf_counter() - t0)
        self.step_slots.append(len(slots))
        return out


class TimedRender:
    """Replaces ``engine.render`` on one engine to time every block it mixes (in the feeder thread, or in the audio
    callback on the Python path; preallocated, no locks)."""

    def __init__(self, engine: Engine, max_calls: int):
        self._render = engine.render
        self.times = np.zeros(max_calls)
        self.n = 0
        engine.render = self  # instance attribute: AudioOutput's callback calls this

    def __call__(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        result = self._render(frames, out)
        if self.n < len(self.times):
            self.times[self.n] = time.perf_counter() - t0
            self.n += 1
        return result

    def stats_ms(self, block_s: float) -> dict:
        t = self.times[: self.n] * 1e3
        if not len(t):
            return {"calls": 0}
        return {"calls": self.n, "mean": float(t.mean()), "max": float(t.max()), "block_ms": block_s * 1e3}


class LatencyRecord:
    """Every note's latencies over the whole run (the engine logs only the last 1,024 notes): ``take(n)`` copies the
    engine's newest ``n`` entries, called once per chord for the chord before."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._ready: list[tuple[np.ndarray, np.ndarray]] = []
        self._started: list[tuple[np.ndarray, np.ndarray]] = []

    def take(self, n: int) -> None:
        if n <= 0:
            return
        for log, arrays in (
            (self._ready, self._engine.note_latencies()),
            (self._started, self._engine.note_start_latencies()),
        ):
            log.append((arrays[0][-n:], arrays[1][-n:]))

    @staticmethod
    def _joined(log: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if not log:
            return np.zeros(0), np.zeros(0, bool)
        return np.concatenate([x for x, _ in log]), np.concatenate([c for _, c in log])

    def ready(self) -> tuple[np.ndarray, np.ndarray]:
        """note-on -> first sample ready (seconds), and whether each note came from the cache."""
        return self._joined(self._ready)

    def started(self) -> tuple[np.ndarray, np.ndarray]:
        """note-on -> the audio block that starts the note (seconds), and whether it came from the cache."""
        return self._joined(self._started)


def random_source(
    device: str = "auto",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    size: str = "shipped",
    warmup_dtype: torch.dtype | str | None = None,
) -> SingSource:
    """A SING of size ``size`` (see ``bench.common.SIZES``) with random weights on the chosen device (fp32 as the app
    loads it); speed does not depend on the weights."""
    torch.manual_seed(seed)
    model = SING(SINGConfig(n_instruments=16, **SIZES[size])).to(select_device(device))
    return SingSource(model, dtype=dtype, warmup_dtype=warmup_dtype)


def run_soak(
    source,
    audio_device: int | str | None,
    seconds: float,
    voices: int = 16,
    period_s: float = 2.0,
    config: EngineConfig | None = None,
    jack=None,
    callback: str = "native",
    ahead_blocks: int = DEFAULT_AHEAD_BLOCKS,
    realtime: bool = True,
) -> dict:
    """Play ``voices``-note chords for ``seconds`` on ``audio_device``; returns the measurements.

    ``jack``: a ``bench.jack_dummy.JackServer`` to read xruns from (optional). ``callback``, ``ahead_blocks``,
    ``realtime``: the audio path (:class:`~synth_core.engine.audio_output.AudioOutput`).
    """
    cfg = config or EngineConfig(sample_rate=48000, block_size=256)
    if voices > cfg.max_voices:
        raise ValueError(f"{voices} voices need max_voices >= {voices} (have {cfg.max_voices})")
    timed = TimedSource(source)
    engine = Engine(timed, cfg)
    audio = AudioOutput(
        engine,
        audio_device,
        cfg.sample_rate,
        cfg.block_size,
        callback=callback,
        ahead_blocks=ahead_blocks,
        realtime=realtime,
    )
    callbacks = TimedRender(engine, int((seconds + 5) * cfg.sample_rate / cfg.block_size * 2) + 1000)
    xruns0 = jack.xruns() if jack is not None else None
    steal0 = cpu_steal_s()
    poll_rms: list[float] = []
    notes: list[int] = []
    loads: list[float] = []
    max_active = 0
    latencies = LatencyRecord(engine)
    load0 = os.getloadavg()[0]
    engine.start()
    cpu0, t_start = os.times(), time.perf_counter()
    try:
        audio.start()
        k, t_next_chord, t_next_poll = 0, t_start, t_start + 0.5
        end = t_start + seconds
        while (now := time.perf_counter()) < end:
            if now >= t_next_chord:
                for n in notes:
                    engine.note_off(n)
                latencies.take(len(notes))  # the last chord's notes, all logged a period ago
                notes = chord(k, voices)
                for n in notes:
                    engine.note_on(n, 100 - 10 * (k % 3))
                k += 1
                t_next_chord += period_s
            if now >= t_next_poll:  # the last 100 ms of output: is it sounding (not just a DC offset)?
                x = engine.scope(cfg.sample_rate // 10).astype(np.float64)
                poll_rms.append(float(np.sqrt(np.mean((x - x.mean()) ** 2))))
                st = engine.stats()
                loads.append(st.render_load)
                max_active = max(max_active, st.active_voices)
                t_next_poll += 0.25
            time.sleep(max(0.0, min(t_next_chord, t_next_poll, end) - time.perf_counter()))
        played_s = time.perf_counter() - t_start
        cpu1 = os.times()
        for n in notes:
            engine.note_off(n)
        time.sleep(cfg.release_s + 0.5)
        latencies.take(len(notes))
        st = engine.stats()
        tail = engine.scope(cfg.sample_rate // 5)
    finally:
        audio.stop()
        engine.stop()
    counters = audio.counters()
    steps = np.asarray(timed.step_s) * 1e3
    widths = np.asarray(timed.step_slots)
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    rms = np.asarray(poll_rms)
    return {
        "seconds": played_s,
        "load_average_1m": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "voices": voices,
        "chord_period_s": period_s,
        "chords_played": k,
        "engine": {
            "sample_rate": cfg.sample_rate,
            "block_size": cfg.block_size,
            "max_voices": cfg.max_voices,
            "render_ahead_s": cfg.render_ahead_s,
            "output_latency_s": audio.latency_s,
        },
        "audio_path": {
            "callback": audio.callback,
            "ahead_blocks": audio.ahead_blocks if audio.feeder else 0,
            "callback_thread": audio.callback_scheduling.describe(),
        },
        "underruns": st.underruns,
        "device_underflows": counters.device_underflows,
        "late_blocks": counters.late_blocks,
        "jack_xruns": None if jack is None else jack.xruns() - xruns0,
        "host_steal_s": None if steal0 is None else round(cpu_steal_s() - steal0, 2),
        "voices_stolen": st.voices_stolen,
        "cache_hits": st.cache_hits,
        "cache_misses": st.cache_misses,
        "max_active_voices": max_active,
        "hops_stepped": len(steps),
        "worker_step_ms": {
            "mean": float(steps.mean()) if len(steps) else 0.0,
            "p99": float(np.percentile(steps, 99)) if len(steps) else 0.0,
            "max": float(steps.max()) if len(steps) else 0.0,
            "mean_slots_per_step": float(widths.mean()) if len(widths) else 0.0,
            **anchor("hop_budget_ms"),
        },
        "slot_hops": int(widths.sum()),
        "render_block_ms": callbacks.stats_ms(cfg.block_size / cfg.sample_rate),
        "worker_load": {"mean": float(np.mean(loads)) if loads else 0.0, "max": max(loads, default=0.0)},
        "process_cpu_percent_of_one_core": 100.0 * cpu_s / played_s,
        "note_on_latency_ms": latency_stats(*latencies.ready()),
        "note_on_to_block_ms": latency_stats(*latencies.started()),
        "notes_in_engine_log": len(engine.note_latencies()[0]),  # (it keeps the last 1,024 notes)
        **anchor("note_on_target_ms"),
        "output_ac_rms": {"polls": len(rms), "min": float(rms.min()) if len(rms) else 0.0, "mean": float(rms.mean())},
        "silent_polls": int(np.sum(rms < 1e-3)),
        "active_voices_at_end": st.active_voices,
        "tail_peak_after_release": float(np.max(np.abs(tail))),
        "audio_error": None if audio.error is None else repr(audio.error),
        "worker_error": None if engine.worker_error is None else repr(engine.worker_error),
    }


def summary_ms(x: np.ndarray) -> dict:
    """p50 / p95 / max of latencies ``x`` (seconds) in ms."""
    if not len(x):
        return {"notes": 0}
    ms = x * 1e3
    return {
        "notes": len(x),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "max": float(ms.max()),
    }


def latency_stats(latencies: np.ndarray, cached: np.ndarray) -> dict:
    """Latencies (ms) of notes warmed up by the model (cold) and from the note cache."""
    return {"cold": summary_ms(latencies[~cached]), "cached": summary_ms(latencies[cached])}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--voices", type=int, default=16, help="notes held at a time (max_voices grows to fit)")
    p.add_argument("--period", type=float, default=2.0, help="seconds between chord changes")
    p.add_argument("--checkpoint", help="play this checkpoint instead of a random-weight model")
    p.add_argument("--size", choices=sorted(SIZES), default="shipped", help="random-weight model size")
    p.add_argument("--device", default="auto", help="model device: auto (GPU if any), cpu, cuda")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1, as sing-app on the CPU; 0: torch's default)",
    )
    p.add_argument(
        "--warmup-dtype",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="precision of notes' warm-up (auto, as sing-app: bf16 where the start-up probe finds it clearly faster)",
    )
    p.add_argument("--no-cache", action="store_true", help="note cache off: every note is warmed up by the model")
    p.add_argument("--callback", choices=["native", "python"], default="native", help="audio path (as sing-app)")
    p.add_argument("--ahead", type=int, default=DEFAULT_AHEAD_BLOCKS, help="blocks the feeder mixes ahead (native)")
    p.add_argument("--busy-core", action="store_true", help="keep one core busy in another process meanwhile")
    p.add_argument(
        "--no-realtime-thread", action="store_true", help="leave the callback's thread as the driver made it"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from bench.jack_dummy import jack_dummy_server

    device = select_device(args.device)
    warmup = {"auto": "auto", "fp32": None, "bf16": torch.bfloat16}[args.warmup_dtype]  # "auto": as sing-app
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint, device, with_training=False)
        source = SingSource(ckpt.model, ckpt.instruments, warmup_dtype=warmup)
    else:
        source = random_source(args.device, size=args.size, warmup_dtype=warmup)
    entries = 0 if args.no_cache else EngineConfig.cache_entries
    config = EngineConfig(sample_rate=48000, block_size=256, max_voices=max(16, args.voices), cache_entries=entries)
    with jack_dummy_server(sample_rate=48000, period=256) as jack, busy_core(args.busy_core):
        result = run_soak(
            source,
            jack.device["index"],
            args.seconds,
            args.voices,
            args.period,
            config,
            jack,
            args.callback,
            args.ahead,
            not args.no_realtime_thread,
        )
    bf16 = source.warmup_dtype == torch.bfloat16
    settings = {"warmup_dtype": "bf16" if bf16 else "fp32", "note_cache": not args.no_cache}
    print(json.dumps({**machine_info(device), "model": source.config.to_dict(), **settings, **result}, indent=1))


if __name__ == "__main__":
    main()
