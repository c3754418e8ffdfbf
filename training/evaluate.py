"""Evaluate a SING checkpoint on an NSynth-format pack against the pitch-shift baseline.

    python -m training.evaluate CKPT --data data/gm_pack [--max-notes N] [--out report_dir] [--threads 2]
    python -m training.evaluate CKPT --data data/gm_pack --visqol 64   # plus what a listener hears

Reports the spectral L1 (SING's loss) of SING, of the pitch-shift baseline and of silence on train and test
notes (the seeded SING split over (instrument, pitch) pairs, seed from the checkpoint's training dict, default
0), pitch accuracy (fraction of notes whose f0 over the held part is within a semitone of the requested pitch;
also over the notes whose target is measurable that way), the output level against the target's, and the
pitch accuracy of notes from random two-instrument blends (the morph pad). The spectral L1 is computed at the
model's training gain (``--gain`` overrides): at a quiet pack's own level log(1 + |X|^2) is nearly linear in
tiny powers and cannot tell a model from silence. Raw training checkpoints are scaled back by their gain
(exported ones already are). Writes ``metrics.json`` and ``spectrograms.png`` (target / SING / baseline for a
few test notes) and prints a markdown table for the model card. The baseline of a train note uses the nearest
*other* training pitch. ``--visqol N`` adds the perceptual report on N test notes (``training.perceptual``): ViSQOL
of SING, the baseline and two anchors (the real note with noise at 20 dB SNR, low-passed at 3.5 kHz) per family
and pitch band, the envelope correlation of decaying families, the level error and the energy between harmonics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from synth_core.dsp import estimate_f0, hz_to_midi
from synth_core.sing.checkpoint import CheckpointError, load_checkpoint
from synth_core.sing.fit import training_gain  # noqa: F401 - re-exported (the app's fit needs it too)
from synth_core.sing.loss import spectral_l1
from training import perceptual
from training.baseline import PitchShiftBaseline, pitch_shift
from training.split import split_of

F0_WINDOW = (0.25, 1.25)  # seconds of the held part used for f0 (early: decaying notes are still loud)
LEVEL_WINDOW = (0.05, 3.0)  # seconds over which output and target levels are compared (the held part)
LEVEL_FLOOR_DB = -70.0  # targets quieter than this are left out of the level comparison


def level_db(audio: np.ndarray, sample_rate: int) -> float:
    """Mean power of the held part, in dB (re full scale)."""
    lo, hi = (int(t * sample_rate) for t in LEVEL_WINDOW)
    return float(10 * np.log10(np.mean(np.square(audio[lo:hi], dtype=np.float64)) + 1e-12))


def level_errors(generated: np.ndarray, targets: np.ndarray, sample_rate: int) -> np.ndarray:
    """Output minus target level (dB) per note, leaving out targets quieter than ``LEVEL_FLOOR_DB``."""
    levels = [(level_db(g, sample_rate), level_db(t, sample_rate)) for g, t in zip(generated, targets, strict=True)]
    return np.array([g - t for g, t in levels if t > LEVEL_FLOOR_DB])


def split_seed(training: dict | None) -> int:
    """The seed of the SING split a checkpoint was trained with (its training dict; default 0)."""
    training = training or {}
    return int(training.get("split_seed", training.get("seed", 0)))


@dataclass(frozen=True)
class PackNote:
    note_str: str
    instrument: str  # instrument_str
    pitch: int
    velocity: int
    path: Path


def read_pack(data: str | Path) -> list[PackNote]:
    """The notes of an NSynth-format folder (examples.json + audio/), sorted by note_str."""
    data = Path(data)
    meta = data / "examples.json"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found (is {data} an NSynth-format pack?)")
    examples = json.loads(meta.read_text())
    return sorted(
        (
            PackNote(k, e["instrument_str"], int(e["pitch"]), int(e["velocity"]), data / "audio" / f"{k}.wav")
            for k, e in examples.items()
        ),
        key=lambda n: n.note_str,
    )


def load_audio(path: Path, n_samples: int, sample_rate: int) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise ValueError(f"{path}: {sr} Hz, the model expects {sample_rate} Hz")
    audio = audio.mean(axis=1)
    out = np.zeros(n_samples, np.float32)
    out[: min(n_samples, len(audio))] = audio[:n_samples]
    return out


def generate_notes(model, names: dict[str, int], notes: list[PackNote], batch_size: int = 8) -> torch.Tensor:
    """The model's rendering of ``notes`` (instrument row from ``names``, pitch, velocity): [N, note_samples]."""
    vec = model.instrument_table[torch.tensor([names[n.instrument] for n in notes])].detach()
    pitch = torch.tensor([n.pitch for n in notes])
    velocity = torch.tensor([float(n.velocity) for n in notes])
    with torch.inference_mode():
        return model.generate(vec, pitch, velocity, n_samples=model.config.note_samples, batch_size=batch_size).float()


def spread(items: list, n: int | None) -> list:
    """At most ``n`` items evenly spread over the (sorted) list: deterministic and covers all instruments."""
    if n is None or len(items) <= n:
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def pitch_hit(audio: np.ndarray, pitch: int, sample_rate: int) -> bool:
    """True when the f0 of the held part is within one semitone of ``pitch``."""
    lo, hi = (int(t * sample_rate) for t in F0_WINDOW)
    f0 = estimate_f0(audio[lo:hi], sample_rate)
    return f0 > 0 and abs(hz_to_midi(f0) - pitch) < 1.0


def evaluate(
    ckpt_path: str | Path,
    data: str | Path,
    max_notes: int | None = 200,
    out: str | Path | None = None,
    batch_size: int = 8,
    n_plot: int = 4,
    loss_gain: float | None = None,
    n_blends: int = 10,
    visqol_notes: int = 0,
) -> dict:
    """Compute the metrics (and write the report files into ``out`` when given); ``visqol_notes`` > 0 adds the
    perceptual report (:func:`perceptual_report`) on that many test notes."""
    ckpt = load_checkpoint(ckpt_path, "cpu")
    model, cfg = ckpt.model.eval(), ckpt.config
    seed = split_seed(ckpt.training)
    names = {info.name: k for k, info in enumerate(ckpt.instruments)}
    notes = read_pack(data)
    known = [n for n in notes if n.instrument in names]
    if not known:
        raise ValueError(f"none of the pack's instruments are in the checkpoint ({len(names)} instruments)")
    splits = {n: split_of(n.instrument, n.pitch, seed) for n in known}
    train_all = [n for n in known if splits[n] == "train"]
    by_key = {(n.instrument, n.pitch, n.velocity): n for n in known}
    n_samples, sr = cfg.note_samples, cfg.sample_rate

    def load(instrument: str, pitch: int, velocity: int) -> np.ndarray:
        return load_audio(by_key[(instrument, pitch, velocity)].path, n_samples, sr)

    baseline = PitchShiftBaseline(((n.instrument, n.pitch, n.velocity) for n in train_all), load)

    def baseline_note(n: PackNote, leave_out: bool) -> np.ndarray | None:
        pitches = baseline._pitches.get((n.instrument, n.velocity), [])
        if leave_out:
            pitches = [p for p in pitches if p != n.pitch]
        if not pitches:
            return None
        src = min(pitches, key=lambda p: (abs(p - n.pitch), p))
        return pitch_shift(load(n.instrument, src, n.velocity), n.pitch - src, n_samples)

    trained_gain, scale = training_gain(ckpt)
    gain = float(loss_gain or trained_gain)

    def l1(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(spectral_l1(a[None] * gain, b[None] * gain))

    metrics: dict = {
        "checkpoint": str(ckpt_path),
        "data": str(data),
        "split_seed": seed,
        "loss_gain": gain,
        "splits": {},
    }
    plots = []
    t0 = time.perf_counter()
    for split in ("train", "test"):
        chosen = spread([n for n in known if splits[n] == split], max_notes)
        if not chosen:
            metrics["splits"][split] = {"notes": 0}
            continue
        targets = torch.from_numpy(np.stack([load_audio(n.path, n_samples, sr) for n in chosen]))
        generated = generate_notes(model, names, chosen, batch_size) * scale
        sing_l1 = [l1(g, t) for g, t in zip(generated, targets, strict=True)]
        silence_l1 = [l1(torch.zeros_like(t), t) for t in targets]
        base_l1, base_hits = [], []
        plot_idx = set(spread(list(range(len(chosen))), n_plot))
        for i, n in enumerate(chosen):
            b = baseline_note(n, leave_out=split == "train")
            if b is None:
                continue
            base_l1.append(l1(torch.from_numpy(b), targets[i]))
            base_hits.append(pitch_hit(b, n.pitch, sr))
            if split == "test" and i in plot_idx:
                plots.append((n.note_str, targets[i].numpy(), generated[i].numpy(), b))
        gen_np, tgt_np = generated.numpy(), targets.numpy()
        sing_hits = np.array([pitch_hit(g, n.pitch, sr) for g, n in zip(gen_np, chosen, strict=True)])
        target_hits = np.array([pitch_hit(t, n.pitch, sr) for t, n in zip(tgt_np, chosen, strict=True)])
        level_err = level_errors(gen_np, tgt_np, sr)
        metrics["splits"][split] = {
            "notes": len(chosen),
            "sing_spectral_l1": float(np.mean(sing_l1)),
            "baseline_spectral_l1": float(np.mean(base_l1)) if base_l1 else None,
            "silence_spectral_l1": float(np.mean(silence_l1)),
            "baseline_notes": len(base_l1),
            "sing_pitch_accuracy": float(np.mean(sing_hits)),
            "sing_pitch_accuracy_measurable": float(np.mean(sing_hits[target_hits])) if target_hits.any() else None,
            "measurable_notes": int(target_hits.sum()),
            "baseline_pitch_accuracy": float(np.mean(base_hits)) if base_hits else None,
            "target_pitch_accuracy": float(np.mean(target_hits)),
            "level_error_db_mean": float(np.mean(level_err)) if len(level_err) else None,
            "level_error_db_median": float(np.median(level_err)) if len(level_err) else None,
            "level_error_db_mean_abs": float(np.mean(np.abs(level_err))) if len(level_err) else None,
        }
    if visqol_notes:
        chosen = spread([n for n in known if splits[n] == "test"], visqol_notes)
        families = {info.name: info.family for info in ckpt.instruments}
        generated = (generate_notes(model, names, chosen, batch_size) * scale).numpy()
        metrics["perceptual"] = perceptual_report(
            chosen, generated, [load_audio(n.path, n_samples, sr) for n in chosen],
            [baseline_note(n, leave_out=False) for n in chosen], families, sr,
        )  # fmt: skip
    metrics["blends"] = blend_pitch_accuracy(model, sorted({n.pitch for n in known}), n_blends, batch_size, seed)
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    metrics["skipped_unknown_instruments"] = len(notes) - len(known)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        if plots:
            plot_spectrograms(plots, out / "spectrograms.png")
    return metrics


DECAYING = ("keyboard", "mallet", "guitar", "bass")  # families whose notes decay while held


def perceptual_report(
    notes: list[PackNote],
    generated: list[np.ndarray],
    targets: list[np.ndarray],
    baselines: list[np.ndarray | None],
    families: dict[str, str],
    sample_rate: int,
) -> dict:
    """ViSQOL of SING, the pitch-shift baseline and the two anchors (noise at 20 dB SNR, low-pass at 3.5 kHz)
    against the real notes, per family and pitch band, with the envelope correlation, the level error, the
    energy between harmonics and the upper bands' levels (``training.perceptual``)."""
    rows = []
    for n, g, t, b in zip(notes, generated, targets, baselines, strict=True):
        if level_db(t, sample_rate) <= LEVEL_FLOOR_DB:
            continue  # a silent target has nothing to compare with
        row = {
            "note": n.note_str,
            "family": families.get(n.instrument, "unknown"),
            "band": perceptual.pitch_band(n.pitch),
            "sing": perceptual.visqol_mos(t, g, sample_rate),
            "noise_20db": perceptual.visqol_mos(t, perceptual.with_noise(t, 20.0), sample_rate),
            "lowpass_3k5": perceptual.visqol_mos(t, perceptual.low_passed(t, sample_rate), sample_rate),
            "baseline": perceptual.visqol_mos(t, b, sample_rate) if b is not None else None,
            "envelope_corr": perceptual.envelope_correlation(g, t),
            "baseline_envelope_corr": perceptual.envelope_correlation(b, t) if b is not None else None,
            "between_harmonics_db": perceptual.between_harmonics_db(g, t, n.pitch, sample_rate),
            "level_error_db": level_db(g, sample_rate) - level_db(t, sample_rate),
            "upper_bands_db": perceptual.upper_bands_db(g, t, sample_rate),
        }
        rows.append(row)

    def mean(key: str, subset: list[dict]) -> float | None:
        vals = [r[key] for r in subset if r[key] is not None]
        return float(np.mean(vals)) if vals else None

    signals = ("sing", "baseline", "noise_20db", "lowpass_3k5")

    def table(group: str) -> dict:
        out = {}
        for name in sorted({r[group] for r in rows}):
            subset = [r for r in rows if r[group] == name]
            out[name] = {"notes": len(subset), **{s: mean(s, subset) for s in signals}}
        return out

    decaying = [r for r in rows if r["family"] in DECAYING]
    worst = min(rows, key=lambda r: r["sing"]) if rows else None
    return {
        "notes": len(rows),
        "visqol": {s: mean(s, rows) for s in signals},
        "by_family": table("family"),
        "by_band": table("band"),
        "envelope_corr_decaying": mean("envelope_corr", decaying),
        "baseline_envelope_corr_decaying": mean("baseline_envelope_corr", decaying),
        "decaying_notes": len(decaying),
        "level_error_db_mean_abs": float(np.mean([abs(r["level_error_db"]) for r in rows])) if rows else None,
        "between_harmonics_db_mean": mean("between_harmonics_db", rows),
        "upper_bands_db_median": {
            band: float(np.median([r["upper_bands_db"][band] for r in rows])) for band in rows[0]["upper_bands_db"]
        }
        if rows
        else {},
        "worst": {"note": worst["note"], "sing": worst["sing"]} if worst else None,
        "per_note": rows,
    }


def perceptual_table(report: dict) -> str:
    """The perceptual report as markdown (model card)."""

    def f(x: float | None, digits: int = 2) -> str:
        return "" if x is None else f"{x:.{digits}f}"

    v = report["visqol"]
    bands = ", ".join(f"{k} {x:+.1f} dB" for k, x in report.get("upper_bands_db_median", {}).items())
    lines = [
        f"ViSQOL v3 (audio mode, 48 kHz, first {perceptual.VISQOL_SECONDS} s), {report['notes']} test notes: "
        f"SING **{f(v['sing'])}**, baseline {f(v['baseline'])}, noise at 20 dB SNR {f(v['noise_20db'])}, "
        f"low-pass 3.5 kHz {f(v['lowpass_3k5'])}; envelope correlation (keyboard, mallet, guitar, bass; "
        f"{report['decaying_notes']} notes) SING {f(report['envelope_corr_decaying'])} / baseline "
        f"{f(report['baseline_envelope_corr_decaying'])}; level error (mean abs) "
        f"{f(report['level_error_db_mean_abs'], 1)} dB; energy between harmonics "
        f"{f(report['between_harmonics_db_mean'], 1)} dB over the target's; upper bands against the target's "
        f"(median) {bands or '-'}; worst note {report['worst']['note']} "
        f"{f(report['worst']['sing'])}.",
        "",
        "| group | notes | SING | baseline | noise 20 dB | low-pass 3.5 kHz |",
        "|---|---|---|---|---|---|",
    ]
    for group in ("by_family", "by_band"):
        for name, r in report[group].items():
            lines.append(
                f"| {name} | {r['notes']} | {f(r['sing'])} | {f(r['baseline'])} | {f(r['noise_20db'])} | "
                f"{f(r['lowpass_3k5'])} |"
            )
    return "\n".join(lines)


def median_level_error(
    model, instruments, data: str | Path, seed: int, n_notes: int = 64, batch_size: int = 8
) -> float:
    """Median level error (dB, output minus target) of ``model``'s notes over ``n_notes`` train-split notes of the
    pack at ``data`` (targets quieter than ``LEVEL_FLOOR_DB`` left out)."""
    names = {info.name: k for k, info in enumerate(instruments)}
    train = [n for n in read_pack(data) if n.instrument in names and split_of(n.instrument, n.pitch, seed) == "train"]
    chosen = spread(train, n_notes)
    if not chosen:
        raise ValueError(f"no training notes of the model's instruments in {data}")
    cfg = model.config
    targets = np.stack([load_audio(n.path, cfg.note_samples, cfg.sample_rate) for n in chosen])
    errors = level_errors(generate_notes(model, names, chosen, batch_size).numpy(), targets, cfg.sample_rate)
    if not len(errors):
        raise ValueError("every calibration target is silent")
    return float(np.median(errors))


def blend_pitch_accuracy(model, pitches: list[int], n: int, batch_size: int, seed: int = 0) -> dict:
    """Pitch accuracy of notes from ``n`` random two-instrument blends (the XY pad's interpolation).

    Each blend mixes two random instrument vectors with a random weight in [0.2, 0.8] and plays a random pitch
    of the pack's range at velocity 100.
    """
    if n <= 0:
        return {"notes": 0}
    rng = np.random.default_rng(seed + 7)
    table = model.instrument_table.detach()
    cfg = model.config
    pairs = [rng.choice(len(table), 2, replace=False) for _ in range(n)]
    weights = rng.uniform(0.2, 0.8, n)
    vec = torch.stack([(1 - w) * table[a] + w * table[b] for (a, b), w in zip(pairs, weights, strict=True)])
    pitch = torch.tensor(rng.choice(pitches, n))
    with torch.inference_mode():
        audio = model.generate(vec, pitch, torch.full((n,), 100.0), n_samples=cfg.note_samples, batch_size=batch_size)
    hits = [pitch_hit(a, int(p), cfg.sample_rate) for a, p in zip(audio.float().numpy(), pitch, strict=True)]
    return {
        "notes": n,
        "pitch_accuracy": float(np.mean(hits)),
        "blends": [
            {"a": int(a), "b": int(b), "weight": round(float(w), 3), "pitch": int(p), "pitched": bool(h)}
            for (a, b), w, p, h in zip(pairs, weights, pitch, hits, strict=True)
        ],
    }


def power_db(audio: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Power spectrogram in dB (same STFT as the spectral loss) for display."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=False, return_complex=True)
    return (10 * torch.log10(spec.abs().square() + 1e-10)).numpy()


def plot_spectrograms(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    """One row per note: power spectrograms (dB, 80 dB range) of target, SING and baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 2.6 * len(rows)), squeeze=False)
    for r, (name, *audios) in enumerate(rows):
        specs = [power_db(a) for a in audios]
        vmax = max(s.max() for s in specs)
        for c, (title, s) in enumerate(zip(("target", "SING", "baseline"), specs, strict=True)):
            ax = axes[r, c]
            ax.imshow(s, origin="lower", aspect="auto", vmin=vmax - 80, vmax=vmax, cmap="magma")
            ax.set_title(f"{name} {title}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown_table(metrics: dict) -> str:
    """The model card's metrics table."""

    def fmt(x: float | None, pct: bool = False) -> str:
        if x is None:
            return "n/a"
        return f"{100 * x:.1f}%" if pct else f"{x:.3f}"

    def db(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.1f} dB"

    lines = [
        f"Spectral L1 at gain {metrics.get('loss_gain', 1.0):g}.",
        "",
        "| split | notes | SING spectral L1 | baseline spectral L1 | silence spectral L1 "
        "| SING pitch acc. | SING pitch acc. (measurable targets) | baseline pitch acc. | target pitch acc. "
        "| level error (mean / median / mean abs) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for split, m in metrics["splits"].items():
        if not m.get("notes"):
            lines.append(f"| {split} | 0 |" + " n/a |" * 8)
            continue
        lines.append(
            f"| {split} | {m['notes']} | {fmt(m['sing_spectral_l1'])} | {fmt(m['baseline_spectral_l1'])} | "
            f"{fmt(m.get('silence_spectral_l1'))} | {fmt(m['sing_pitch_accuracy'], True)} | "
            f"{fmt(m.get('sing_pitch_accuracy_measurable'), True)} ({m.get('measurable_notes', 'n/a')} notes) | "
            f"{fmt(m['baseline_pitch_accuracy'], True)} | {fmt(m['target_pitch_accuracy'], True)} | "
            f"{db(m.get('level_error_db_mean'))} / {db(m.get('level_error_db_median'))} / "
            f"{db(m.get('level_error_db_mean_abs'))} |"
        )
    blends = metrics.get("blends") or {}
    if blends.get("notes"):
        acc = fmt(blends["pitch_accuracy"], True)
        lines += ["", f"Blends of two instruments: {acc} pitched ({blends['notes']} notes)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default="data/gm_pack", help="NSynth-format pack (examples.json + audio/)")
    ap.add_argument("--max-notes", type=int, default=200, help="notes per split (evenly spread); 0 = all")
    ap.add_argument("--out", default=None, help="folder for metrics.json and spectrograms.png")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--gain", type=float, default=None, help="spectral L1 at this gain (default: the training gain)")
    ap.add_argument("--blends", type=int, default=10, help="random two-instrument blends to check for pitch")
    ap.add_argument("--visqol", type=int, nargs="?", const=64, default=0, metavar="N",
                    help="perceptual report (ViSQOL, envelopes, floor) on N test notes (default N: 64)")  # fmt: skip
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        metrics = evaluate(
            args.checkpoint,
            args.data,
            args.max_notes or None,
            args.out,
            args.batch_size,
            loss_gain=args.gain,
            n_blends=args.blends,
            visqol_notes=args.visqol,
        )
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(markdown_table(metrics))
    if "perceptual" in metrics:
        print("\n" + perceptual_table(metrics["perceptual"]))
    if args.out:
        print(f"\nwrote {Path(args.out) / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
