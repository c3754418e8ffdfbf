"""How far a bf16 warm-up moves a SING note from the fp32 one; prints JSON.

``SingStreamer(warmup_dtype=torch.bfloat16)`` (sing-app's choice where measured faster at start) runs a new note's
warm-up, the 14 latent steps and decoder frames before its first sample, in bf16 and steps on in fp32. This renders
the same random notes (instrument, pitch, velocity) both ways and reports the relative error energy
(10 log10 |bf16 - fp32|^2 / |fp32|^2 per note) over three stretches of the note, with the time each warm-up took.

    PYTHONPATH=. python bench/warmup_precision.py --checkpoint assets/sing_default.pt
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.common import machine_info
from synth_core.sing import load_checkpoint
from synth_core.sing.streaming import SingStreamer


def error_db(ref: torch.Tensor, other: torch.Tensor) -> np.ndarray:
    """Per-note relative error energy in dB ([notes, samples] -> [notes])."""
    err = ((other - ref) ** 2).sum(1)
    return (10 * torch.log10(err / (ref**2).sum(1).clamp_min(1e-20))).numpy()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="assets/sing_default.pt")
    p.add_argument("--notes", type=int, default=64)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint, torch.device("cpu"), with_training=False).model
    table = model.instrument_table.detach()
    rng = np.random.default_rng(args.seed)
    n = args.notes
    vecs = table[torch.as_tensor(rng.integers(0, len(table), n))]
    pitches = rng.integers(30, 96, n).tolist()
    velocities = rng.choice([20.0, 45.0, 64.0, 100.0, 127.0], n).tolist()
    slots = list(range(n))
    sr, hop = model.config.sample_rate, model.config.hop
    hops = int(args.seconds * sr) // hop
    out, warm_ms = {}, {}
    for name, warmup in (("fp32", None), ("bf16", torch.bfloat16)):
        s = SingStreamer(model, max_voices=n, warmup_dtype=warmup)
        s.start_many(slots, vecs, pitches, velocities, [150] * n)  # once for the kernels' first-call set-up
        t0 = time.perf_counter()
        s.start_many(slots, vecs, pitches, velocities, [150] * n)
        warm_ms[name] = (time.perf_counter() - t0) * 1e3
        out[name] = torch.cat([s.step(slots) for _ in range(hops)], 1)
    stretches = {"0-0.1 s": (0.0, 0.1), "0.1-0.5 s": (0.1, 0.5), f"0.5-{args.seconds:g} s": (0.5, args.seconds)}
    report = {}
    for label, (a, b) in stretches.items():
        sl = slice(int(a * sr), int(b * sr))
        db = error_db(out["fp32"][:, sl], out["bf16"][:, sl])
        report[label] = {"median_db": float(np.median(db)), "worst_db": float(db.max())}
    print(
        json.dumps(
            {
                **machine_info(torch.device("cpu")),
                "checkpoint": args.checkpoint,
                "notes": n,
                "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
                "warm_up_ms_all_notes": warm_ms,
                "relative_error": report,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
