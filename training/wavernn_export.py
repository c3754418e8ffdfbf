"""Export a trained WaveRNN voice for shipping: fp16 weights, pruning masks kept, no optimiser state.

python -m training.wavernn_export runs/voice/best.pt -o assets/voice_default.pt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from synth_core.wavernn.checkpoint import CheckpointError, export_voice, load_voice


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.wavernn_export", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    args = p.parse_args(argv)
    try:
        export_voice(args.checkpoint, args.out, torch.float32 if args.fp32 else torch.float16)
        ck = load_voice(args.out)
    except CheckpointError as exc:
        print(f"wavernn_export: {exc}", file=sys.stderr)
        return 2
    sparsity = sum(ck.model.sparsity().values()) / len(ck.model.sparsity())
    print(
        f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB, hidden {ck.config.hidden}, "
        f"mean sparsity {sparsity:.3f}, {len(ck.presets)} presets"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
