"""Benchmark training throughput (examples/s and audio-seconds/s); prints JSON.

SING: the end-to-end stage (``training.sing_steps.EndToEndStage``: LSTM + decoder, spectral loss)
with Adam, as ``sing-train`` runs it, on random data shaped like real NSynth notes (4 s at 16 kHz,
random instruments, pitches and NSynth velocities). fp32, plus bf16 ``torch.autocast`` on CUDA.

The JSON holds a list of entries, each with a ``"model"`` key. Other models add a function
``(args, device) -> list[dict]`` to :data:`THROUGHPUT_BENCHES` (e.g. ``"wavernn"``); ``--models``
picks which run.

    PYTHONPATH=. python bench/train_throughput.py                         # CPU: 1 timed step each
    PYTHONPATH=. python bench/train_throughput.py --device cuda --steps 20 --batch 64
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from bench.common import DTYPES, SIZES, anchor, autocast, build_models, machine_info, sync
from synth_core.device import select_device
from synth_core.sing import NSYNTH_VELOCITIES, SING
from training.sing_steps import CropGeometry, EndToEndStage

#: Notes in the training split of NSynth as ``sing-train`` splits it (80% of the 305,979 notes).
NSYNTH_TRAIN_NOTES = int(0.8 * 305_979)


def random_note_batch(model: SING, batch: int, device: torch.device, generator: torch.Generator) -> tuple:
    """(instrument, pitch, velocity, wav) like one batch of the NSynth loader: 4 s notes at 16 kHz."""
    c = model.config
    inst = torch.randint(0, c.n_instruments, (batch,), generator=generator)
    pitch = torch.randint(24, 97, (batch,), generator=generator)
    vels = torch.tensor(NSYNTH_VELOCITIES, dtype=torch.float32)
    vel = vels[torch.randint(0, len(vels), (batch,), generator=generator)]
    env = torch.linspace(1.0, 0.0, c.note_samples).sqrt()
    wav = 0.1 * torch.randn(batch, c.note_samples, generator=generator) * env
    return tuple(t.to(device) for t in (inst, pitch, vel, wav))


def sing_e2e_step(
    stage: EndToEndStage,
    optimizer: torch.optim.Optimizer,
    batch: tuple,
    device: torch.device,
    dtype: torch.dtype,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """One optimizer step of the e2e stage (what ``sing-train`` does per batch); returns the loss."""
    inst, pitch, vel, wav = batch
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, dtype):
        loss = stage(inst, pitch, vel, wav, offsets)
    loss.backward()
    optimizer.step()
    return loss.detach()


def sing_entries(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """SING e2e training throughput for each size and dtype."""
    entries = []
    for size, model in build_models(device, args.sizes.split(","), args.checkpoint):
        model.train()
        c = model.config
        crop = CropGeometry(c, args.crop_steps) if args.crop_steps else None
        stage = EndToEndStage(model, crop)
        optimizer = torch.optim.Adam(stage.parameters(), lr=3e-4)
        gen = torch.Generator().manual_seed(0)
        batch = random_note_batch(model, args.batch, device, gen)
        offsets = crop.random_offsets(args.batch, gen).to(device) if crop else None
        for dname in args.dtypes.split(","):
            dtype = DTYPES[dname]
            for _ in range(args.warmup):
                sing_e2e_step(stage, optimizer, batch, device, dtype, offsets)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                loss = sing_e2e_step(stage, optimizer, batch, device, dtype, offsets)
            sync(device)
            dt = (time.perf_counter() - t0) / args.steps
            examples_s = args.batch / dt
            audio_per_example = (crop.samples if crop else c.note_samples) / c.sample_rate
            entry = {
                "model": "sing",
                "size": size,
                "stage": "e2e",
                "parameters": model.num_parameters(),
                "dtype": dname,
                "batch": args.batch,
                "crop_steps": args.crop_steps,
                "warmup_steps": args.warmup,
                "timed_steps": args.steps,
                "s_per_step": dt,
                "examples_per_s": examples_s,
                "audio_s_per_s": examples_s * audio_per_example,
                **anchor("real_time"),
                "hours_per_epoch_nsynth_train": NSYNTH_TRAIN_NOTES / examples_s / 3600,
                "final_loss": float(loss),
            }
            if device.type == "cuda":
                entry["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
                torch.cuda.reset_peak_memory_stats(device)
            entries.append(entry)
        del stage, optimizer, model
    return entries


def wavernn_entries(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """WaveRNN teacher-forced training throughput (wavernn-train's step: NLL, Adam, masks re-applied)."""
    from synth_core.wavernn import WaveRNN, WaveRNNConfig

    entries = []
    frames = args.seq_frames
    for hidden in (int(h) for h in args.wavernn_hidden.split(",")):
        torch.manual_seed(0)
        model = WaveRNN(WaveRNNConfig(hidden=hidden, head_hidden=hidden // 2)).to(device).train()
        c = model.config
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        feats = torch.randn(args.batch, frames, c.n_features, device=device)
        audio = torch.rand(args.batch, frames * c.hop, device=device) * 1.8 - 0.9

        def step(model=model, optimizer=optimizer, feats=feats, audio=audio) -> torch.Tensor:
            loss, _ = model.loss(feats, audio)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.apply_masks()
            return loss.detach()

        for _ in range(args.warmup):
            step()
        sync(device)
        t0 = time.perf_counter()
        for _ in range(max(1, args.steps)):
            loss = step()
        sync(device)
        dt = (time.perf_counter() - t0) / max(1, args.steps)
        samples_s = args.batch * frames * c.hop / dt
        entries.append(
            {
                "model": "wavernn",
                "hidden": hidden,
                "parameters": sum(p.numel() for p in model.parameters()),
                "dtype": "fp32",
                "batch": args.batch,
                "seq_frames": frames,
                "s_per_step": dt,
                "steps_per_s": 1 / dt,
                "audio_samples_per_s": samples_s,
                "audio_s_per_s": samples_s / c.sample_rate,
                **anchor("real_time"),
                "final_loss": float(loss),
            }
        )
    return entries


#: name -> ``(args, device) -> list of entries`` (each entry a dict with a "model" key).
THROUGHPUT_BENCHES: dict[str, Callable[[argparse.Namespace, torch.device], list[dict]]] = {
    "sing": sing_entries,
    "wavernn": wavernn_entries,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(THROUGHPUT_BENCHES), help=f"comma list of {list(THROUGHPUT_BENCHES)}")
    p.add_argument("--sizes", default="small,reference", help=f"SING sizes: comma list of {sorted(SIZES)}")
    p.add_argument("--checkpoint", help="SING: time this checkpoint's model instead of random-weight sizes")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--wavernn-hidden", default="256,512", help="WaveRNN: comma list of GRU sizes")
    p.add_argument("--seq-frames", type=int, default=12, help="WaveRNN: crop length in 10 ms frames")
    p.add_argument("--crop-steps", type=int, default=0, help="SING: decode a window of K hops (sing-train's option)")
    p.add_argument("--dtypes", default=None, help="default: fp32 on the CPU, fp32,bf16 (autocast) on CUDA")
    p.add_argument("--steps", type=int, default=0, help="timed steps (0: 1 on the CPU, 10 on CUDA)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    args.dtypes = args.dtypes or ("fp32,bf16" if device.type == "cuda" else "fp32")
    args.steps = args.steps or (10 if device.type == "cuda" else 1)
    names = args.models.split(",")
    unknown = set(names) - set(THROUGHPUT_BENCHES)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {list(THROUGHPUT_BENCHES)}")
    entries = []
    for name in names:
        entries.extend(THROUGHPUT_BENCHES[name](args, device))
    print(json.dumps({**machine_info(device), "entries": entries}, indent=1))


if __name__ == "__main__":
    main()
