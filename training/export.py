"""Export a training checkpoint as shippable weights: no optimizer or encoder, fp16, with a JSON sidecar.

python -m training.export CKPT -o assets/sing_default.pt [--dtype float16] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from synth_core.sing.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_json_sidecar
from synth_core.sing.model import NSYNTH_VELOCITIES, SING, velocity_weights
from training.evaluate import median_level_error, split_seed

MAX_BYTES = 40 * 1024 * 1024
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
#: Training-dict entries never shipped (resumable training state); tensors and large values are dropped too.
DROP_TRAINING = ("optim", "scheduler", "scaler", "encoder", "state", "rng")


def _shippable(key: str, value: object) -> bool:
    """Small JSON-like bookkeeping (seed, steps, data, timings) is kept; training state is not."""
    if any(word in key.lower() for word in DROP_TRAINING) or isinstance(value, torch.Tensor):
        return False
    return isinstance(value, (str, int, float, bool, type(None))) or len(repr(value)) < 4096


def fill_velocity_rows(model: SING, velocities: list[int]) -> list[int]:
    """Give the velocity rows that training never reached values from those it did; returns the filled rows.

    The velocity embedding has one row per NSynth velocity and a MIDI velocity interpolates between its two
    neighbours, so a pack recorded at a few velocities trains only the rows around them. Untrained rows keep
    their random initialisation, which would make other velocities play noise: a row between trained rows is
    interpolated linearly in velocity, a row outside them copies the nearest one.
    """
    lo, hi, w = velocity_weights(torch.tensor(velocities, dtype=torch.float32))
    trained = sorted(
        {int(i) for i, wt in zip(lo, 1 - w, strict=True) if wt > 0}
        | {int(i) for i, wt in zip(hi, w, strict=True) if wt > 0}
    )
    table = model.generator.velocity_embedding.weight
    if not trained or len(trained) == len(NSYNTH_VELOCITIES):
        return []
    grid = np.array(NSYNTH_VELOCITIES, dtype=np.float64)
    filled = [r for r in range(len(grid)) if r not in trained]
    with torch.no_grad():
        known = table[trained].double().numpy()
        for r in filled:
            row = [np.interp(grid[r], grid[trained], known[:, d]) for d in range(known.shape[1])]
            table[r] = torch.tensor(row, dtype=table.dtype)
    return filled


def export(
    src: str | Path,
    dst: str | Path,
    dtype: str = "float16",
    force: bool = False,
    calibrate: str | Path | None = None,
    calibrate_notes: int = 64,
) -> int:
    """Write ``dst`` (and ``dst`` with a .json suffix) from checkpoint ``src``; returns the file size in bytes.

    ``calibrate``: a pack (NSynth format) whose training notes set the output level: the median level error of
    the model's notes against them is folded into the synthesis layer (recorded as ``level_calibration_db``).
    The log-spectral loss leaves a model quieter than its targets while its spectra are still blurred.
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    ckpt = load_checkpoint(src, "cpu")
    training = {k: v for k, v in (ckpt.training or {}).items() if _shippable(str(k), v)} or None
    metadata = dict(ckpt.metadata or {})
    metadata.update({"exported_from": Path(src).name, "dtype": dtype})
    gain = float((training or {}).get("gain") or 1.0)
    if gain != 1.0:  # trained on audio scaled by `gain`: fold 1/gain into the (linear) synthesis layer
        ckpt.model.decoder.scale_output(1.0 / gain)
        training["gain"] = 1.0
        metadata["folded_training_gain"] = gain
    velocities = (training or {}).get("velocities")
    if velocities:
        filled = fill_velocity_rows(ckpt.model, [int(v) for v in velocities])
        if filled:
            metadata["filled_velocity_rows"] = [NSYNTH_VELOCITIES[r] for r in filled]
    if calibrate is not None:
        seed = split_seed(training)
        error_db = median_level_error(ckpt.model.eval(), ckpt.instruments, calibrate, seed, calibrate_notes)
        ckpt.model.decoder.scale_output(10 ** (-error_db / 20))
        metadata["level_calibration_db"] = round(-error_db, 2)
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.export")
    save_checkpoint(tmp, ckpt.model, ckpt.instruments, training=training, metadata=metadata, dtype=DTYPES[dtype])
    size = tmp.stat().st_size
    if size > MAX_BYTES and not force:
        tmp.unlink()
        raise ValueError(f"export would be {size / 2**20:.1f} MiB (> {MAX_BYTES / 2**20:.0f} MiB); pass --force")
    tmp.replace(dst)
    ckpt.metadata = metadata
    write_json_sidecar(dst.with_suffix(".json"), ckpt)
    return size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="training checkpoint (save_checkpoint format)")
    ap.add_argument("-o", "--out", default="assets/sing_default.pt", help="exported weights")
    ap.add_argument("--dtype", default="float16", choices=sorted(DTYPES), help="weight dtype")
    ap.add_argument("--force", action="store_true", help=f"write even if larger than {MAX_BYTES // 2**20} MiB")
    ap.add_argument("--calibrate", metavar="PACK", help="set the output level from this pack's training notes")
    ap.add_argument("--calibrate-notes", type=int, default=64, help="notes used for --calibrate")
    args = ap.parse_args(argv)
    try:
        size = export(args.checkpoint, args.out, args.dtype, args.force, args.calibrate, args.calibrate_notes)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    src_size = Path(args.checkpoint).stat().st_size
    print(f"wrote {args.out}: {size / 2**20:.2f} MiB ({args.dtype}; source {src_size / 2**20:.2f} MiB)")
    print(f"wrote {Path(args.out).with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
