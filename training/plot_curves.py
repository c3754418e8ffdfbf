"""Plot a sing-train run's curves (train loss, valid/test spectral L1 against silence) for the model card.

python -m training.plot_curves runs/default/ae runs/default/lstm runs/default/e2e -o docs/sing_training.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_metrics(run: Path) -> list[dict]:
    """The records of ``run/metrics.jsonl`` (a record per line)."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is {run} a sing-train run folder?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot(runs: list[Path], out: Path) -> None:
    """One panel per run: train loss (running mean) and, per split, evaluated spectral L1 over silence's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.4), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        records = read_metrics(run)
        stage = next((r["stage"] for r in records if r.get("stage")), run.name)
        train = [(r["step"], r["train_loss"]) for r in records if "train_loss" in r]
        if train:
            ax.plot(*zip(*train, strict=True), lw=0.8, color="0.6", label="train loss")
        evals = {
            split: [
                (r["step"], r[f"{split}_spectral_l1"] / r[f"{split}_silence_l1"])
                for r in records
                if f"{split}_spectral_l1" in r and r.get(f"{split}_silence_l1")
            ]
            for split in ("train", "valid", "test")
        }
        if any(evals.values()):
            ax2 = ax.twinx()
            for (split, pts), color in zip(evals.items(), ("C0", "C1", "C2"), strict=True):
                if pts:
                    ax2.plot(*zip(*pts, strict=True), "o-", ms=3, color=color, label=f"{split} L1 / silence")
            ax2.set_ylim(0, 1.05)
            ax2.set_ylabel("spectral L1 / silence L1")
            ax2.legend(fontsize=7, loc="upper right")
        ax.set_title(f"{run.name} (stage {stage})" if run.name != stage else f"stage {stage}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (latent MSE)" if stage == "lstm" else "train loss")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.plot_curves", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="sing-train run folders (one per stage)")
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/sing_training.png"))
    args = ap.parse_args(argv)
    try:
        plot(args.runs, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"plot_curves: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
