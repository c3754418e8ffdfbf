"""Benchmark SING offline rendering (whole 4 s notes, ``SING.generate``); prints JSON.

For each model size, dtype and batch size: seconds of audio generated per second of compute
(real time = 1.0; the SING paper reports ~512 s of audio per second on a GPU). bf16 runs under
``torch.autocast`` (the velocity interpolation and the LSTM inputs stay fp32, so the weights are
not cast). Timings synchronise the GPU before reading the clock.

    PYTHONPATH=. python bench/sing_render.py                      # CPU: --quick is the default there
    PYTHONPATH=. python bench/sing_render.py --device cuda --repeats 10
    PYTHONPATH=. python bench/sing_render.py --checkpoint assets/sing_default.pt
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench.common import DTYPES, SIZES, anchor, autocast, build_models, machine_info, time_calls
from synth_core.device import select_device
from synth_core.sing import SING


def bench_render(model: SING, device: torch.device, dtype: torch.dtype, batches: list[int], repeats: int) -> list:
    """One row per batch size: seconds per batch of 4 s notes and audio seconds per compute second.

    Each point is warmed up by one untimed call of the same shape (bf16 kernels are built per shape).
    """
    c = model.config
    model.eval()
    note_s = c.note_samples / c.sample_rate
    table = model.instrument_table.detach()
    rows = []
    for b in batches:
        idx = torch.arange(b, device=device)
        vecs = table[idx % len(table)]
        pitches = 36 + idx % 48
        velocities = torch.tensor([100.0], device=device).expand(b)

        def render(vecs=vecs, pitches=pitches, velocities=velocities, b=b) -> torch.Tensor:
            with autocast(device, dtype):
                return model.generate(vecs, pitches, velocities, batch_size=b)

        times = time_calls(render, device, repeats, warmup=1)
        best = min(times)
        rows.append(
            {
                "batch": b,
                "repeats": len(times),
                "s_per_batch": best,
                "s_per_note": best / b,
                "audio_s_per_s": b * note_s / best,
                **anchor("sing_paper_audio_s_per_s"),
                **anchor("real_time"),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="benchmark this checkpoint instead of random-weight models")
    p.add_argument("--sizes", default="reference,small", help=f"comma list of {sorted(SIZES)}")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda")
    p.add_argument("--repeats", type=int, default=0, help="timed calls per point (0: 5 on GPU, 1 with --quick)")
    p.add_argument(
        "--quick",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="1 timed repeat per point (default on the CPU)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    quick = args.quick if args.quick is not None else device.type == "cpu"
    repeats = args.repeats or (1 if quick else 5)
    batches = [int(b) for b in args.batches.split(",")]
    result = {**machine_info(device), "quick": quick, "note_s": None, "models": {}}
    for name, model in build_models(device, args.sizes.split(","), args.checkpoint):
        c = model.config
        result["note_s"] = c.note_samples / c.sample_rate
        entry = {"config": c.to_dict(), "parameters": model.num_parameters()}
        for dname in args.dtypes.split(","):
            t0 = time.perf_counter()
            entry[dname] = {"rows": bench_render(model, device, DTYPES[dname], batches, repeats)}
            entry[dname]["bench_s"] = time.perf_counter() - t0
        result["models"][name] = entry
        del model
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
