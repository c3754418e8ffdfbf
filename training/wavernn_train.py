"""Train a sparse WaveRNN voice on a speech corpus (teacher-forced NLL on random crops, gradual block pruning).

Examples::

    python -m training.speech_data --out data/speech
    wavernn-train --data data/speech --out runs/voice --hidden 384 --steps 6000 --sparsity 0.9
    wavernn-train --data data/speech --out runs/voice --resume --steps 12000
    torchrun --nproc_per_node=4 -m training.wavernn_train --data data/speech --out runs/voice
    wavernn-train --data data/speech --out runs/sub --subscale 16           # 16 samples per GRU step
    wavernn-train --synthetic 16 --out runs/test --hidden 32 --steps 20     # no corpus needed

Features are extracted once and cached in ``<out>/features.npz``. Only rank 0 logs and writes: tqdm,
tensorboard in ``<out>/tb``, ``<out>/metrics.jsonl``, ``<out>/checkpoint.pt`` (latest, with the optimiser
state), ``<out>/best.pt`` (best validation NLL). Every checkpoint holds presets extracted from the training
features. Export for shipping with ``python -m training.wavernn_export <out>/best.pt -o assets/voice.pt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from synth_core.wavernn.checkpoint import CheckpointError, architecture, build_model, load_voice, save_voice
from synth_core.wavernn.features import FEATURE_NAMES, extract_features, extract_presets, fundamental_phase
from synth_core.wavernn.model import WaveRNN, WaveRNNConfig
from training.ddp import DistInfo, barrier, run_training
from training.pruning import Pruner
from training.speech_data import SAMPLE_RATE, read_audio, read_manifest, synthetic_clips

log = logging.getLogger("wavernn_train")
HOP = 160
# training arguments a resumed run takes from its checkpoint, whatever the command line says
RESUMED_ARGS = (
    "seed", "sparsity", "block", "prune_start", "prune_end", "prune_every", "seq_frames", "batch_size",
    "lr", "lr_decay", "free_clock",
)  # fmt: skip
FEATURES_VERSION = 2  # 2: per-sample fundamental phase


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wavernn-train", description="Train a sparse WaveRNN voice.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help="corpus folder (manifest.csv from training.speech_data, or WAV/FLAC)")
    src.add_argument("--synthetic", type=int, metavar="N", help="train on N synthetic harmonic tones (tests)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, tb/, metrics.jsonl)")
    p.add_argument("--hidden", type=int, default=512, help="GRU units (even)")
    p.add_argument("--cond-channels", type=int, default=128)
    p.add_argument("--head-hidden", type=int, default=256)
    p.add_argument("--no-excitation", action="store_true", help="do not feed the f0 phase at sample rate")
    p.add_argument(
        "--free-clock", action="store_true", help="train on the free-running pitch clock, not one aligned to the audio"
    )
    p.add_argument(
        "--subscale",
        type=int,
        default=0,
        metavar="S",
        help="train a subscale WaveRNN (S interleaved sub-sequences, 16 in the paper; 0: plain, sample by sample)",
    )
    p.add_argument("--sparsity", type=float, default=0.95, help="final fraction of pruned weights (0: dense)")
    p.add_argument("--block", default="4x4", help="pruning block ROWSxCOLS: 4x4 or 16x1")
    p.add_argument("--prune-start", type=int, default=None, help="step where pruning starts (default steps/10)")
    p.add_argument("--prune-end", type=int, default=None, help="step where the target is reached (default steps/2)")
    p.add_argument("--prune-every", type=int, default=50, help="steps between mask updates on the ramp")
    p.add_argument("--steps", type=int, default=20000, help="total optimiser steps (a resumed run continues to it)")
    p.add_argument("--batch-size", type=int, default=16, help="global batch (split across DDP ranks)")
    p.add_argument("--seq-frames", type=int, default=12, help="frames per training crop (x 160 samples)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", type=float, default=1e-4, help="lr / (1 + decay * step)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--init", type=Path, help="start from a voice checkpoint's weights (fresh optimiser, step 0)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--valid-every", type=int, default=500)
    p.add_argument("--valid-crops", type=int, default=64, help="fixed validation crops")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--presets", type=int, default=8, help="number of envelope presets saved with the voice")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


def parse_block(text: str) -> tuple[int, int]:
    try:
        r, c = (int(t) for t in text.lower().split("x"))
    except ValueError as exc:
        raise SystemExit(f"wavernn-train: --block must look like 4x4 or 16x1, got {text!r}") from exc
    if r < 1 or c < 1:
        raise SystemExit(f"wavernn-train: bad --block {text!r}")
    return r, c


# ---- data ----------------------------------------------------------------------------------------


@dataclass
class Split:
    """One split's audio and features, files concatenated; ``files`` holds (first frame, n frames)."""

    audio: np.ndarray  # float32 [frames * HOP]
    features: np.ndarray  # float32 [frames, 23]
    files: np.ndarray  # int64 [n_files, 2]
    phase: np.ndarray  # float32 [frames * HOP], the fundamental's phase (features.fundamental_phase)

    def per_file_features(self) -> list[np.ndarray]:
        return [self.features[s : s + n] for s, n in self.files]

    def crops(self, n: int, frames: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` random crops of ``frames`` frames from files long enough: (features [n,frames,23], audio, phase)."""
        ok = self.files[self.files[:, 1] >= frames]
        if len(ok) == 0:
            raise ValueError(f"no file has {frames} frames")
        weight = (ok[:, 1] - frames + 1).astype(np.float64)
        pick = rng.choice(len(ok), size=n, p=weight / weight.sum())
        start = ok[pick, 0] + (rng.random(n) * (ok[pick, 1] - frames + 1)).astype(np.int64)
        fidx = start[:, None] + np.arange(frames)[None]
        aidx = start[:, None] * HOP + np.arange(frames * HOP)[None]
        return (
            torch.from_numpy(self.features[fidx]),
            torch.from_numpy(self.audio[aidx]),
            torch.from_numpy(self.phase[aidx]),
        )


def _pack(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Split:
    files, start = [], 0
    for _, f, _ in items:
        files.append((start, len(f)))
        start += len(f)
    if not items:
        empty = np.zeros(0, np.float32)
        return Split(empty, np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros((0, 2), np.int64), empty)
    return Split(
        np.concatenate([a for a, _, _ in items]).astype(np.float32),
        np.concatenate([f for _, f, _ in items]).astype(np.float32),
        np.asarray(files, dtype=np.int64).reshape(-1, 2),
        np.concatenate([p for _, _, p in items]).astype(np.float32),
    )


def _clip(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(audio) // HOP
    audio = np.clip(audio[: n * HOP], -1.0, 32767 / 32768).astype(np.float32)
    features = extract_features(audio, SAMPLE_RATE, HOP)
    return audio, features, fundamental_phase(audio, features, HOP, SAMPLE_RATE)


def load_corpus(args: argparse.Namespace, cache: Path, log_fn=log.info) -> dict[str, Split]:
    """Audio and features per split, from the feature cache when it matches the sources."""
    if args.synthetic:
        clips = synthetic_clips(args.synthetic, seconds=1.0, seed=args.seed)
        n_valid = max(1, len(clips) // 8)
        items = [_clip(c) for c in clips]
        return {"train": _pack(items[n_valid:]), "valid": _pack(items[:n_valid])}
    if args.data is None:
        raise SystemExit("wavernn-train: give --data CORPUS_FOLDER or --synthetic N")
    try:
        entries = read_manifest(args.data, args.seed)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wavernn-train: {exc}") from exc
    key_src = [FEATURES_VERSION, HOP, SAMPLE_RATE]
    for e in entries:
        p = args.data / e.file
        st = p.stat() if p.is_file() else None
        key_src.append((e.file, e.split, st.st_size if st else -1, st.st_mtime_ns if st else -1))
    key = hashlib.sha256(json.dumps(key_src).encode()).hexdigest()
    if cache.is_file():
        try:
            with np.load(cache) as z:
                if str(z["key"]) == key:
                    return {
                        s: Split(z[f"{s}_audio"], z[f"{s}_features"], z[f"{s}_files"], z[f"{s}_phase"])
                        for s in ("train", "valid")
                    }
        except (OSError, KeyError, ValueError) as exc:
            log.warning(f"ignoring unreadable feature cache {cache}: {exc}")
    items: dict[str, list] = {"train": [], "valid": []}
    skipped = 0
    for e in tqdm(entries, desc="features", disable=args.no_progress, leave=False, dynamic_ncols=True):
        if e.split not in items:
            continue
        try:
            items[e.split].append(_clip(read_audio(args.data / e.file)))
        except (OSError, RuntimeError, ValueError, sf.LibsndfileError) as exc:
            skipped += 1
            log.warning(f"skipping {e.file}: {exc}")
    splits = {s: _pack(v) for s, v in items.items()}
    if len(splits["train"].files) == 0:
        raise SystemExit(f"wavernn-train: no usable training files in {args.data} ({skipped} skipped)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        key=np.asarray(key),
        **{f"{s}_{k}": getattr(sp, k) for s, sp in splits.items() for k in ("audio", "features", "files", "phase")},
    )
    tmp.replace(cache)
    log_fn(f"features cached in {cache} ({skipped} files skipped)")
    return splits


# ---- training ------------------------------------------------------------------------------------


class _Loss(nn.Module):
    """model.loss as a forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: WaveRNN):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, audio: torch.Tensor, phase: torch.Tensor | None) -> torch.Tensor:
        return self.model.loss(features, audio, phase=phase)[0]


class Trainer:
    def __init__(self, args: argparse.Namespace, device: torch.device, dist: DistInfo):
        self.args = args
        self.device = device
        self.dist = dist
        self.out: Path = args.out
        self.step = 0
        self.best = math.inf
        self.optimizer_state = None
        self.writer = None
        self._setup()

    def _info(self, msg: str) -> None:
        if self.dist.is_main:
            log.info(msg)

    def _load(self, path: Path):
        try:
            return load_voice(path, "cpu")
        except CheckpointError as exc:
            raise SystemExit(f"wavernn-train: {exc}") from exc

    def _setup(self) -> None:
        args = self.args
        model = None
        if args.resume:
            ck = self._load(self.out / "checkpoint.pt")
            model = ck.model
            tr = ck.training or {}
            self.step = int(tr.get("step", 0))
            self.best = math.inf if tr.get("best") is None else float(tr["best"])
            self.optimizer_state = tr.get("optimizer")
            for k in RESUMED_ARGS:
                if tr.get(k) is not None:
                    setattr(args, k, tr[k])
            self._info(f"resuming at step {self.step} of {args.steps}")
        elif args.init is not None:
            model = self._load(args.init).model
        if model is None:
            torch.manual_seed(args.seed)
            block = parse_block(args.block) if isinstance(args.block, str) else tuple(args.block)
            config = WaveRNNConfig(
                hop=HOP,
                hidden=args.hidden,
                cond_channels=args.cond_channels,
                head_hidden=args.head_hidden,
                block=block,
                excitation=not args.no_excitation,
            )
            arch = {"kind": "subscale", "subscale": args.subscale} if args.subscale else None
            try:
                model = build_model(config, arch)
            except ValueError as exc:
                raise SystemExit(f"wavernn-train: {exc}") from exc
        if model.config.hop != HOP or model.config.sample_rate != SAMPLE_RATE:
            raise SystemExit(f"wavernn-train: the features are {SAMPLE_RATE} Hz / hop {HOP}, the model is not")
        self.model = model.to(self.device)
        steps = args.steps
        start = args.prune_start if args.prune_start is not None else steps // 10
        end = args.prune_end if args.prune_end is not None else steps // 2
        args.prune_start, args.prune_end = start, end
        self.pruner = Pruner(args.sparsity, start, end, args.prune_every, model.config.block)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.splits = load_corpus(args, self.out / "features.npz", self._info)
        barrier(self.dist)
        self.presets = extract_presets(self.splits["train"].per_file_features(), args.presets, args.seed)
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"))
            n_params = sum(p.numel() for p in model.parameters())
            secs = {s: len(sp.audio) / SAMPLE_RATE for s, sp in self.splits.items()}
            self._info(
                f"{len(self.splits['train'].files)} train files ({secs['train'] / 60:.1f} min), "
                f"{len(self.splits['valid'].files)} valid ({secs['valid'] / 60:.1f} min); "
                f"{architecture(model)['kind']} WaveRNN, hidden {model.config.hidden}, "
                f"{n_params / 1e6:.2f}M parameters; "
                f"sparsity {args.sparsity} in {model.config.block} blocks "
                f"from step {start} to {end}; device {self.device}"
            )

    # -- logs and checkpoints --------------------------------------------------------------------

    def training_dict(self, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        a = self.args
        return {
            "step": self.step,
            "best": self.best if math.isfinite(self.best) else None,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "seed": a.seed,
            "sparsity": a.sparsity,
            "block": list(self.model.config.block),
            "prune_start": a.prune_start,
            "prune_end": a.prune_end,
            "prune_every": a.prune_every,
            "seq_frames": a.seq_frames,
            "batch_size": a.batch_size,
            "lr": a.lr,
            "lr_decay": a.lr_decay,
            "free_clock": a.free_clock,
        }

    def save(self, name: str, optimizer: torch.optim.Optimizer | None) -> None:
        if not self.dist.is_main:
            return
        meta = {
            "step": self.step,
            "data": f"synthetic:{self.args.synthetic}" if self.args.synthetic else str(self.args.data),
            "valid_nll": self.best if math.isfinite(self.best) else None,
            "sparsity": self.model.sparsity(),
            "saved": time.time(),
        }
        save_voice(self.out / name, self.model, self.presets, self.training_dict(optimizer), meta)

    def metric(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        record = {"step": self.step, **record}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if isinstance(v, float) and self.writer is not None:
                self.writer.add_scalar(k, v, self.step)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Held-out NLL on fixed crops of the valid split (nats and bits per sample)."""
        valid = self.splits["valid"]
        frames = self.args.seq_frames
        if len(valid.files) == 0 or not np.any(valid.files[:, 1] >= frames):
            return {}
        feats, audio, phase = valid.crops(self.args.valid_crops, frames, np.random.default_rng(12345))
        self.model.eval()
        total = 0.0
        bs = max(1, self.args.batch_size)
        for i in range(0, len(feats), bs):
            f, a = feats[i : i + bs].to(self.device), audio[i : i + bs].to(self.device)
            p = None if self.args.free_clock else phase[i : i + bs].to(self.device)
            total += float(self.model.loss(f, a, phase=p)[0]) * len(f)
        self.model.train()
        nats = total / len(feats)
        return {"valid_nll": nats, "valid_bits": nats / math.log(2)}

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> dict[str, float]:
        args = self.args
        model = self.model
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
            self.optimizer_state = None
        module: nn.Module = _Loss(model)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=ids)
        per_rank = max(1, args.batch_size // self.dist.world_size)
        model.train()
        bar = tqdm(
            total=args.steps,
            initial=self.step,
            desc="wavernn",
            disable=not self.dist.is_main or args.no_progress,
            dynamic_ncols=True,
        )
        running, n_running, t0 = 0.0, 0, time.perf_counter()
        last: dict[str, float] = {}
        while self.step < args.steps:
            rng = np.random.default_rng([args.seed, self.step, self.dist.rank])
            feats, audio, phase = self.splits["train"].crops(per_rank, args.seq_frames, rng)
            feats, audio = feats.to(self.device), audio.to(self.device)
            phase = None if args.free_clock else phase.to(self.device)
            for g in optimizer.param_groups:
                g["lr"] = args.lr / (1.0 + args.lr_decay * self.step)
            optimizer.zero_grad(set_to_none=True)
            loss = module(feats, audio, phase)
            loss.backward()
            grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), args.clip))
            optimizer.step()
            model.apply_masks()
            self.step += 1
            sparsity = self.pruner.update(model, self.step)
            value = float(loss.detach())
            running += value
            n_running += 1
            bar.update(1)
            bar.set_postfix(nll=f"{value:.3f}")
            if self.step % args.log_every == 0 or self.step == args.steps:
                dt = time.perf_counter() - t0
                rec = {
                    "train_nll": running / n_running,
                    "grad_norm": grad_norm,
                    "lr": optimizer.param_groups[0]["lr"],
                    "density": self.pruner.density(self.step),
                    "steps_per_s": n_running / dt,
                }
                if sparsity is not None:
                    rec["sparsity"] = float(np.mean(list(sparsity.values())))
                self.metric(rec)
                last.update(rec)
                running, n_running, t0 = 0.0, 0, time.perf_counter()
            if self.dist.is_main and (self.step % args.valid_every == 0 or self.step == args.steps):
                v = self.validate()
                if v:
                    self.metric(v)
                    last.update(v)
                    self._info(f"step {self.step}: valid {v['valid_nll']:.4f} nats ({v['valid_bits']:.3f} bits)/sample")
                    if v["valid_nll"] < self.best and self.step >= self.pruner.end:
                        # best.pt only once the target sparsity is reached, so it is always a sparse voice
                        self.best = v["valid_nll"]
                        self.save("best.pt", None)
            if args.checkpoint_every and self.step % args.checkpoint_every == 0:
                self.save("checkpoint.pt", optimizer)
                barrier(self.dist)
        bar.close()
        self.presets = extract_presets(self.splits["train"].per_file_features(), args.presets, args.seed)
        self.save("checkpoint.pt", optimizer)
        if self.dist.is_main and not (self.out / "best.pt").is_file():
            self.save("best.pt", None)
        barrier(self.dist)
        return last


def _train(args: argparse.Namespace, device: torch.device, dist: DistInfo) -> dict[str, float]:
    trainer = Trainer(args, device, dist)
    try:
        return trainer.run()
    finally:
        if trainer.writer is not None:
            trainer.writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume and args.init is not None:
        raise SystemExit("wavernn-train: --resume and --init exclude each other")
    if args.seq_frames < 1 or args.steps < 0 or args.batch_size < 1:
        raise SystemExit("wavernn-train: --seq-frames and --batch-size must be positive, --steps not negative")
    if args.subscale < 0 or args.subscale == 1:
        raise SystemExit("wavernn-train: --subscale is 0 (plain) or the number of sub-sequences (>= 2, e.g. 16)")
    parse_block(args.block)

    def train(device: torch.device, dist: DistInfo, resume: bool) -> None:
        args.resume = resume
        _train(args, device, dist)

    run_training("wavernn-train", args.device, args.out, train, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
