"""Benchmark the embedding fit (a new instrument from N samples, ``training.embed_fit``); prints JSON.

The samples are notes the model itself plays with an instrument vector it does not hold (a blend of two
rows), at N pitches spread over MIDI 40-80, so the benchmark needs nothing but the checkpoint. The time
covers the whole fit: ranking the existing instruments, the starts and the early stops.

    PYTHONPATH=. python bench/embed_fit.py [--notes 1,3,10,20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.common import machine_info
from synth_core.sing import load_checkpoint
from training.embed_fit import FitConfig, fit_embedding, loss_config_of
from training.evaluate import training_gain


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="assets/sing_default.pt")
    ap.add_argument("--notes", default="1,3,10,20", help="sample counts to fit")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint, "cpu")
    model, names = ckpt.model, [i.name for i in ckpt.instruments]
    gain, scale = training_gain(ckpt)
    table = model.instrument_table.detach()
    truth = 0.5 * (table[0] + table[len(table) // 2])
    rows = []
    for n in (int(t) for t in args.notes.split(",")):
        pitches = torch.tensor(np.linspace(40, 80, n).round().astype(int) if n > 1 else [60])
        velocity = torch.full((n,), 100.0)
        notes = model.generate(truth.expand(n, -1), pitches, velocity) * scale
        t0 = time.perf_counter()
        result = fit_embedding(model, notes, pitches, velocity, names, gain=gain, out_scale=scale,
                               loss=loss_config_of(ckpt), config=FitConfig())  # fmt: skip
        rows.append(
            {"notes": n, "seconds": round(time.perf_counter() - t0, 2), "steps": result.steps,
             "loss": round(result.loss, 4), "nearest_loss": round(result.nearest_loss, 4)}
        )  # fmt: skip
    print(json.dumps({"machine": machine_info(torch.device("cpu")), "fit_config": FitConfig().__dict__,
                      "rows": rows, "anchor_seconds": 60.0}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
