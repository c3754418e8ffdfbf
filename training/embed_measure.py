"""Measure new instruments made from a few samples, on instruments the model was not trained on.

For each instrument of a held-out pack (NSynth format, e.g. FluidR3 programs missing from the default pack)
the notes are split into fitting pitches (1, 3 or 10 samples, spread over the range) and test pitches used by
no fit. On the test pitches it compares, by spectral L1 (at the model's training gain) and pitch accuracy:

* the embedding fitted from 1, 3 and 10 samples (``training.embed_fit``);
* the nearest existing instrument (the fit's best starting row, ranked on the 10 samples);
* a short end-to-end fine-tune on the 10 samples (``sing-train --stage e2e --init``), optional;
* the pitch-shift baseline: the nearest fitting sample, resampled to the test pitch.

    python -m training.embed_measure --pack data/heldout_pack --checkpoint assets/sing_default.pt \
        --out runs/embed_measure [--finetune-steps 300] [--threads 1]

Writes ``<out>/embed_measure.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from synth_core.sing.checkpoint import load_checkpoint
from synth_core.sing.loss import spectral_l1
from training import perceptual
from training.baseline import pitch_shift
from training.embed_fit import FitConfig, fit_embedding, loss_config_of
from training.evaluate import level_errors, load_audio, pitch_hit, read_pack, spread, training_gain

log = logging.getLogger("embed_measure")
FIT_SIZES = (1, 3, 10)


def fitting_pitches(pitches: list[int], k: int) -> list[int]:
    """``k`` pitches spread over the sorted ``pitches``, away from the ends (a musician samples mid-range)."""
    if k == 1:
        return [pitches[len(pitches) // 2]]
    inner = pitches[1:-1] if len(pitches) > k + 2 else pitches
    return spread(inner, k)


class TestNotes:
    """An instrument's test notes: scores any rendering of them by spectral L1 and pitch accuracy (and ViSQOL, the
    envelope correlation and the level error with ``visqol``, as ``training.evaluate --visqol``)."""

    def __init__(
        self,
        pitches: list[int],
        audio: dict[int, np.ndarray],
        gain: float,
        sample_rate: int,
        visqol: bool = False,
    ):
        self.pitches = pitches
        self.visqol = visqol
        self.pitch = torch.tensor(pitches)
        self.velocity = torch.full((len(pitches),), 100.0)
        self.want = torch.from_numpy(np.stack([audio[p] for p in pitches]))
        self.gain = gain
        self.sample_rate = sample_rate

    def play(self, model, vec: torch.Tensor, scale: float) -> torch.Tensor:
        return model.generate(vec.expand(len(self.pitches), -1), self.pitch, self.velocity) * scale

    def score(self, outputs: torch.Tensor) -> dict:
        outputs = outputs.float()
        g = self.gain
        l1 = [float(spectral_l1(o[None] * g, w[None] * g)) for o, w in zip(outputs, self.want, strict=True)]
        hits = [pitch_hit(o.numpy(), p, self.sample_rate) for o, p in zip(outputs, self.pitches, strict=True)]
        score = {"spectral_l1": float(np.mean(l1)), "pitch_accuracy": float(np.mean(hits))}
        if self.visqol:
            pairs = list(zip(outputs.numpy(), self.want.numpy(), strict=True))
            sr = self.sample_rate
            score["visqol"] = float(np.mean([perceptual.visqol_mos(w, o, sr) for o, w in pairs]))
            corr = [c for c in (perceptual.envelope_correlation(o, w) for o, w in pairs) if c is not None]
            score["envelope_corr"] = float(np.mean(corr)) if corr else float("nan")
            errors = level_errors(outputs.numpy(), self.want.numpy(), sr)
            score["level_error_db_mean_abs"] = float(np.mean(np.abs(errors))) if len(errors) else float("nan")
        return score


def measure(
    pack: Path,
    checkpoint: Path,
    out: Path,
    finetune_steps: int = 0,
    test_notes: int = 12,
    instruments: list[str] | None = None,
    config: FitConfig | None = None,
    visqol: bool = False,
) -> dict:
    """Measure every (or each named) instrument of ``pack``; writes ``<out>/embed_measure.json``. ``visqol``: also
    ViSQOL, envelope correlation and level error of every method (``TestNotes``)."""
    config = config or FitConfig()
    ckpt = load_checkpoint(checkpoint, "cpu")
    names = [i.name for i in ckpt.instruments]
    by_inst: dict[str, dict[int, Path]] = {}
    for n in read_pack(pack):
        if instruments is None or n.instrument in instruments:
            by_inst.setdefault(n.instrument, {})[n.pitch] = n.path
    known = [i for i in by_inst if i in names]
    if known:
        raise ValueError(f"{pack}: {', '.join(known)} are in the checkpoint already; measure unseen instruments")
    results = []
    for inst, paths in sorted(by_inst.items()):
        row = measure_instrument(ckpt, inst, paths, test_notes, config, visqol)
        if finetune_steps:
            gain, sr = training_gain(ckpt)[0], ckpt.config.sample_rate
            tests = TestNotes(row["test_pitches"], row.pop("_audio"), gain, sr, visqol)
            files = {p: paths[p] for p in row["fit_pitches"][max(FIT_SIZES)]}
            row["methods"]["finetune_10"] = finetune(checkpoint, inst, files, out, finetune_steps, tests)
        row.pop("_audio", None)
        results.append(row)
        log.info("%s: %s", inst, {m: round(v["spectral_l1"], 3) for m, v in row["methods"].items()})
    report = {
        "pack": str(pack),
        "checkpoint": str(checkpoint),
        "fit_config": config.__dict__,
        "finetune_steps": finetune_steps,
        "threads": torch.get_num_threads(),
        "instruments": results,
        "summary": summarise(results),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "embed_measure.json").write_text(json.dumps(report, indent=1))
    return report


def measure_instrument(
    ckpt, inst: str, paths: dict[int, Path], test_notes: int, config: FitConfig, visqol: bool = False
) -> dict:
    """Fits from 1, 3 and 10 samples, the nearest instrument and the pitch-shift baselines on one instrument."""
    model, cfg = ckpt.model, ckpt.config
    names = [i.name for i in ckpt.instruments]
    gain, scale = training_gain(ckpt)
    loss = loss_config_of(ckpt)
    pitches = sorted(paths)
    fit_sets = {k: fitting_pitches(pitches, k) for k in FIT_SIZES}
    used = set().union(*fit_sets.values())
    audio = {p: load_audio(paths[p], cfg.note_samples, cfg.sample_rate) for p in pitches}
    tests = TestNotes(spread([p for p in pitches if p not in used], test_notes), audio, gain, cfg.sample_rate, visqol)
    row: dict = {"instrument": inst, "test_pitches": tests.pitches, "fit_pitches": fit_sets, "methods": {}}
    nearest = None
    for k in FIT_SIZES:
        chosen = fit_sets[k]
        x = torch.from_numpy(np.stack([audio[p] for p in chosen]))
        result = fit_embedding(
            model,
            x,
            torch.tensor(chosen),
            torch.full((len(chosen),), 100),
            names,
            gain=gain,
            out_scale=scale,
            loss=loss,
            config=config,
        )
        score = tests.score(tests.play(model, result.vector, scale))
        row["methods"][f"fit_{k}"] = {**score, "seconds": result.seconds, "nearest": result.nearest}
        nearest = result.nearest  # the last (10 samples) ranks best
        sources = [min(chosen, key=lambda c, p=p: (abs(c - p), c)) for p in tests.pitches]
        base = [pitch_shift(audio[c], p - c, cfg.note_samples) for c, p in zip(sources, tests.pitches, strict=True)]
        row["methods"][f"pitch_shift_{k}"] = tests.score(torch.from_numpy(np.stack(base)))
    vec = model.instrument_table[names.index(nearest)].detach()
    row["methods"]["nearest"] = {**tests.score(tests.play(model, vec, scale)), "instrument": nearest}
    row["_audio"] = audio
    return row


def finetune(checkpoint, inst: str, files: dict[int, Path], out: Path, steps: int, tests: TestNotes) -> dict:
    """``sing-train --stage e2e --init`` on the fitting samples for ``steps`` steps; scored like the others."""
    from training.sing_train import main as train

    pack = out / "finetune_packs" / inst
    if pack.exists():
        shutil.rmtree(pack)
    pack.mkdir(parents=True)
    for p, path in files.items():
        shutil.copy(path, pack / f"{inst}_{p}_100.wav")
    run = out / "finetune_runs" / inst
    t0 = time.monotonic()
    train(
        [
            "--pack",
            str(pack),
            "--init",
            str(checkpoint),
            "--stage",
            "e2e",
            "--out",
            str(run),
            "--max-steps",
            str(steps),
            "--epochs",
            "1000000",
            "--batch-size",
            "8",
            "--crop-steps",
            "16",
            "--lr",
            "2e-4",
            "--p-valid",
            "0",
            "--p-test",
            "0",
            "--eval-notes",
            "2",
            "--no-progress",
            "--checkpoint-every",
            "0",
            "--threads",
            str(torch.get_num_threads()),
        ]
    )
    seconds = time.monotonic() - t0
    ft = load_checkpoint(run / "checkpoint.pt", "cpu")
    _, scale = training_gain(ft)
    vec = ft.model.instrument_table[[i.name for i in ft.instruments].index(inst)].detach()
    # calibrate its level on its own training notes, as `training.export --calibrate` would
    cfg = ft.config
    pitches = sorted(files)
    own = np.stack([load_audio(files[p], cfg.note_samples, cfg.sample_rate) for p in pitches])
    played = ft.model.generate(vec.expand(len(pitches), -1), torch.tensor(pitches), torch.full((len(pitches),), 100.0))
    errors = level_errors((played * scale).numpy(), own, cfg.sample_rate)
    calibration_db = -float(np.median(errors)) if len(errors) else 0.0
    scale *= 10 ** (calibration_db / 20)
    return {**tests.score(tests.play(ft.model, vec, scale)), "seconds": seconds, "steps": steps,
            "calibration_db": calibration_db}  # fmt: skip


SUMMED = ("spectral_l1", "pitch_accuracy", "seconds", "visqol", "envelope_corr", "level_error_db_mean_abs")


def summarise(results: list[dict]) -> dict:
    """Each method's figures averaged over the instruments."""
    methods = results[0]["methods"].keys() if results else []
    return {
        m: {
            k: float(np.nanmean([r["methods"][m][k] for r in results])) for k in SUMMED if k in results[0]["methods"][m]
        }
        for m in methods
    }


def markdown(report: dict) -> str:
    lines = [
        "| method | spectral L1 (test pitches) | pitch accuracy | ViSQOL | envelope corr. | level error | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, v in report["summary"].items():
        t = f"{v['seconds']:.1f} s" if "seconds" in v else ""
        extra = (
            f"{v['visqol']:.2f} | {v['envelope_corr']:.2f} | {v['level_error_db_mean_abs']:.1f} dB"
            if "visqol" in v
            else " | "
        )
        lines.append(f"| {m} | {v['spectral_l1']:.3f} | {100 * v['pitch_accuracy']:.0f} % | {extra} | {t} |")
    lines += ["", "| instrument | " + " | ".join(report["summary"]) + " |", "|---|" + "---|" * len(report["summary"])]
    for r in report["instruments"]:
        lines.append(
            f"| {r['instrument']} | "
            + " | ".join(f"{r['methods'][m]['spectral_l1']:.3f}" for m in report["summary"])
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="embed-measure", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", type=Path, required=True, help="held-out pack (examples.json + audio/)")
    ap.add_argument("--checkpoint", type=Path, default=Path("assets/sing_default.pt"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--finetune-steps", type=int, default=0, help="also fine-tune e2e on the 10 samples")
    ap.add_argument("--test-notes", type=int, default=12, help="test pitches per instrument")
    ap.add_argument("--instruments", help="comma list (default: all of the pack)")
    ap.add_argument("--visqol", action="store_true", help="also ViSQOL, envelope correlation and level error")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    insts = [s.strip() for s in args.instruments.split(",")] if args.instruments else None
    report = measure(
        args.pack, args.checkpoint, args.out, args.finetune_steps, args.test_notes, insts, visqol=args.visqol
    )
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
