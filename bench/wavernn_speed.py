"""WaveRNN sampling speed (samples/s per call) for every sampler; prints JSON.

- numba block-sparse kernel, one thread, single stream: 90/95/97% sparsity in (4, 4) blocks and 95%
  in (16, 1) blocks (the recurrent matrix and the four head matrices all pruned), plus unpruned, for
  hidden 512 (project default) and 896 (paper); 4 streams in one call at 95% (4, 4);
- torch reference sampler (dense) on the CPU, one thread: 1 stream and a batch of 16;
- torch on CUDA with one frame captured in a CUDA graph: 1 stream and batches of 16 / 64 (when a GPU exists);
- subscale WaveRNN (16 samples per step as a batch of 16) with torch, CPU and CUDA: whole sequences
  (`SubscaleWaveRNN.generate`) and streamed frame by frame as the engine plays it (`SubscaleSampler`).

samples_per_s counts all streams of a call; x_real_time is per stream (samples_per_s / streams / 16,000).
Random weights with random block masks (speed does not depend on the values). Anchors: real time is
16,000 samples/s; the WaveRNN paper's WaveRNN-896 GPU kernel ran 96,000 samples/s (P100).

    PYTHONPATH=. python bench/wavernn_speed.py            # about a minute on one core
    PYTHONPATH=. python bench/wavernn_speed.py --quick    # hidden 512 only, shorter runs
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from synth_core.wavernn import WaveRNN, WaveRNNConfig
from synth_core.wavernn.sampler_factory import make_sampler
from synth_core.wavernn.sampling import TorchSampler
from synth_core.wavernn.sparse import prune_blocks_random
from synth_core.wavernn.subscale import SubscaleWaveRNN

REAL_TIME = 16000
PAPER_GPU = 96000


def pruned(hidden: int, block: tuple[int, int], sparsity: float, cls=WaveRNN) -> WaveRNN:
    torch.manual_seed(0)
    m = cls(WaveRNNConfig(hidden=hidden, block=block)).eval()
    if sparsity > 0:
        with torch.no_grad():
            for i, (name, p) in enumerate(m.prunable().items()):
                m.mask(name).copy_(torch.from_numpy(prune_blocks_random(tuple(p.shape), block, sparsity, i)))
            m.apply_masks()
    return m


def features(batch: int, frames: int) -> np.ndarray:
    f = np.zeros((batch, frames, 23), np.float32)
    f[..., 0] = np.linspace(-0.3, 0.3, frames)
    f[..., 1] = 1.0
    f[..., 2] = 1.2
    return f


def rate(sampler, batch: int, frames: int, repeats: int, sync=None) -> float:
    """Best-of-`repeats` samples/s per stream for `frames` frames of `batch` streams in one call.

    `sampler` is anything with `generate(features, seed=)` and `config.hop`: a sampler or a SubscaleWaveRNN."""
    feats = features(batch, frames)
    sampler.generate(feats[:, :2], seed=0)  # compile / warm up / capture
    best = float("inf")
    for r in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        sampler.generate(feats, seed=r)
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return frames * sampler.config.hop / best


def stream_rate(sampler, frames: int) -> float:
    """Samples/s of one stream rendered frame by frame (as the engine plays a voice), after one warm-up frame."""
    feats = features(1, frames + 1)
    _, state = sampler.generate(feats[:, :1], seed=0)
    t0 = time.perf_counter()
    for k in range(1, frames + 1):
        _, state = sampler.generate(feats[:, k : k + 1], state, seed=0)
    return frames * sampler.config.hop / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from synth_core.wavernn.numba_kernel import NumbaSparseSampler  # compiles or loads the cached kernel

    hiddens = (512,) if args.quick else (512, 896)
    frames = 30 if args.quick else 100
    rows = []
    for hidden in hiddens:
        for block, sparsity in [((4, 4), 0.90), ((4, 4), 0.95), ((4, 4), 0.97), ((16, 1), 0.95), ((4, 4), 0.0)]:
            sampler = NumbaSparseSampler(pruned(hidden, block, sparsity))
            n_frames = frames if sparsity > 0 else max(5, frames // 10)
            sps = rate(sampler, 1, n_frames, args.repeats)
            row = {"sampler": "numba sparse", "hidden": hidden, "block": list(block), "sparsity": sparsity}
            row.update(streams=1, samples_per_s=sps, x_real_time=sps / REAL_TIME)
            rows.append(row)
            if block == (4, 4) and sparsity == 0.95:
                sps4 = rate(sampler, 4, n_frames // 2, args.repeats)
                rows.append({**row, "streams": 4, "samples_per_s": sps4 * 4, "x_real_time": sps4 / REAL_TIME})
    # dense torch reference on the CPU (slow: short runs)
    for hidden in hiddens:
        model = pruned(hidden, (4, 4), 0.0)
        sampler = TorchSampler(model, "cpu")
        for batch in (1, 16):
            sps = rate(sampler, batch, 3 if args.quick else 6, 1 if args.quick else 2)
            rows.append(
                {
                    "sampler": "torch cpu (dense)",
                    "hidden": hidden,
                    "block": None,
                    "sparsity": 0.0,
                    "streams": batch,
                    "samples_per_s": sps * batch,
                    "x_real_time": sps / REAL_TIME,
                }
            )
        sub = pruned(hidden, (4, 4), 0.0, SubscaleWaveRNN)
        sps = rate(sub, 1, 10 if args.quick else 20, 1 if args.quick else 2)
        rows.append(
            {
                "sampler": "subscale torch cpu (dense, B=16)",
                "hidden": hidden,
                "block": None,
                "sparsity": 0.0,
                "streams": 1,
                "samples_per_s": sps,
                "x_real_time": sps / REAL_TIME,
            }
        )
    # the subscale voice as the engine streams it (SubscaleSampler: 16 samples per step, 240-sample delay)
    for hidden in (256, *hiddens):
        sampler = make_sampler(pruned(hidden, (4, 4), 0.9, SubscaleWaveRNN), device="cpu")
        sps = stream_rate(sampler, 10 if args.quick else 30)
        rows.append(
            {
                "sampler": "subscale streaming torch cpu (frame by frame, B=16)",
                "hidden": hidden,
                "block": [4, 4],
                "sparsity": 0.9,
                "streams": 1,
                "samples_per_s": sps,
                "x_real_time": sps / REAL_TIME,
            }
        )
    gpu = "not measured (no CUDA device)"
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)

        def sync():
            torch.cuda.synchronize()

        for hidden in hiddens:
            model = pruned(hidden, (4, 4), 0.0)
            sampler = TorchSampler(model, "cuda")
            for batch in (1, 16, 64):
                sps = rate(sampler, batch, 50, args.repeats, sync)
                rows.append(
                    {
                        "sampler": "torch cuda + CUDA graph (dense)",
                        "hidden": hidden,
                        "block": None,
                        "sparsity": 0.0,
                        "streams": batch,
                        "samples_per_s": sps * batch,
                        "x_real_time": sps / REAL_TIME,
                    }
                )
            sub = pruned(hidden, (4, 4), 0.0, SubscaleWaveRNN).cuda()
            sps = rate(sub, 1, 50, args.repeats, sync)
            rows.append(
                {
                    "sampler": "subscale torch cuda (dense, B=16, eager)",
                    "hidden": hidden,
                    "block": None,
                    "sparsity": 0.0,
                    "streams": 1,
                    "samples_per_s": sps,
                    "x_real_time": sps / REAL_TIME,
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "wavernn_speed",
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
                + f", torch {torch.__version__}, 1 thread (shared machine: other jobs may run)",
                "gpu": gpu,
                "anchors": {"real_time_samples_per_s": REAL_TIME, "wavernn_paper_gpu_samples_per_s": PAPER_GPU},
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
