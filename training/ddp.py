"""Minimal DistributedDataParallel plumbing for torchrun launches."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's env vars when WORLD_SIZE > 1.

    Uses nccl for CUDA devices and gloo for the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def run_training(
    prog: str,
    device_pref: str,
    out: Path,
    train: Callable[[torch.device, DistInfo, bool], object],
    resume: bool,
) -> None:
    """Run ``train(device, dist, resume)`` on the chosen device under torchrun or alone.

    Non-main ranks log errors only; each rank takes its own GPU. A GPU failure outside DDP falls back
    to the CPU, resuming from ``out/checkpoint.pt`` when one was written.
    """
    from synth_core.device import is_gpu_failure, select_device

    device = select_device(device_pref)
    info = init_distributed(device)
    if not info.is_main:
        logging.getLogger().setLevel(logging.ERROR)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    try:
        try:
            train(device, info, resume)
        except Exception as exc:
            if device.type == "cpu" or info.enabled or not is_gpu_failure(exc):
                raise
            print(f"{prog}: GPU failed ({str(exc).splitlines()[0]}); continuing on the CPU", file=sys.stderr)
            torch.cuda.empty_cache()
            train(torch.device("cpu"), info, (out / "checkpoint.pt").is_file())
    finally:
        shutdown(info)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way into an epoch (for mid-epoch resume).

    With ``num_replicas=1`` it needs no process group and is a seeded per-epoch shuffle.
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.start = 0

    def set_start(self, n_items: int) -> None:
        """Skip the first ``n_items`` of this rank's order in the current epoch."""
        self.start = max(0, int(n_items))

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return max(0, super().__len__() - self.start)
