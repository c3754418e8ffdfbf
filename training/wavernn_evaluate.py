"""Evaluate WaveRNN voices: held-out NLL, and resynthesis STOI/PESQ against a WORLD vocoder baseline.

    python -m training.wavernn_evaluate runs/voice/checkpoint.pt [runs/dense/checkpoint.pt ...] \
        --data data/speech --split test --max-utterances 12 --out runs/voice_eval

For every checkpoint: teacher-forced NLL per sample on the split (nats and bits), the parameter
count and the number of non-zero weights (to compare a large sparse GRU with a small dense one at
equal parameter count). For the first checkpoint (or all with ``--resynth-all``): each utterance's
features are extracted, the voice re-synthesises it with the chosen sampler, and STOI / PESQ
(wide band) against the original are reported beside WORLD (pyworld: harvest + CheapTrick + D4C)
analysis-synthesis of the same audio. Writes ``metrics.json``, a markdown table, example WAVs and a
spectrogram PNG to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from synth_core.sing.checkpoint import CheckpointError
from synth_core.wavernn.checkpoint import load_voice
from synth_core.wavernn.features import extract_features, fundamental_phase
from synth_core.wavernn.sampler_factory import make_sampler

from .speech_data import load_split


def count_weights(model: torch.nn.Module) -> dict[str, int]:
    """All parameters and the non-zero ones (pruned weights are stored as zeros)."""
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    gru = model.gru.weight_hh_l0
    return {"params": total, "nonzero": nonzero, "recurrent_nonzero": int((gru != 0).sum())}


@torch.no_grad()
def heldout_nll(model, utterances: list[np.ndarray], chunk_frames: int = 200, aligned_clock: bool = True) -> float:
    """Mean teacher-forced NLL (nats/sample, coarse + fine) over whole utterances, state carried across chunks.

    Like the features, the pitch clock is analysed from the held-out audio (``fundamental_phase``, as in
    training) unless ``aligned_clock`` is False."""
    hop = model.config.hop
    total, count = 0.0, 0
    for audio in utterances:
        n = len(audio) // hop
        if n == 0:
            continue
        sr = model.config.sample_rate
        frames = extract_features(audio[: n * hop], sr, hop)
        phase = torch.from_numpy(fundamental_phase(audio[: n * hop], frames, hop, sr))[None]
        feats = torch.from_numpy(frames)[None]
        wav = torch.from_numpy(audio[: n * hop].astype(np.float32))[None]
        h = None
        # a subscale model's context window reaches across chunk edges: score its utterances whole
        chunk = n if getattr(model, "subscale", 0) else chunk_frames
        for f0 in range(0, n, chunk):
            f1 = min(n, f0 + chunk)
            ph = phase[:, f0 * hop : f1 * hop] if aligned_clock else None
            nll, h = model.loss(feats[:, f0:f1], wav[:, f0 * hop : f1 * hop], h, ph)
            samples = (f1 - f0) * hop
            total += float(nll) * samples
            count += samples
    return total / max(count, 1)


def world_resynthesis(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """WORLD analysis-synthesis (harvest f0, CheapTrick envelope, D4C aperiodicity)."""
    pyworld = _import_pyworld()
    x = audio.astype(np.float64)
    f0, t = pyworld.harvest(x, sample_rate, frame_period=5.0)
    sp = pyworld.cheaptrick(x, f0, t, sample_rate)
    ap = pyworld.d4c(x, f0, t, sample_rate)
    y = pyworld.synthesize(f0, sp, ap, sample_rate, frame_period=5.0)
    return _fit(y.astype(np.float32), len(audio))


def _import_pyworld():
    """pyworld 0.3.5 imports pkg_resources (gone from setuptools >= 81) only for its version string."""
    try:
        import pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
        import importlib.metadata
        import types

        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
        sys.modules["pkg_resources"] = shim
        import pyworld
    return pyworld


def intelligibility(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> dict[str, float]:
    """STOI and wide-band PESQ of ``degraded`` against ``reference`` (NaN where a metric fails)."""
    from pesq import pesq
    from pystoi import stoi

    degraded = _fit(degraded, len(reference))
    out = {"stoi": float(stoi(reference, degraded, sample_rate, extended=False))}
    try:
        out["pesq"] = float(pesq(sample_rate, reference, degraded, "wb"))
    except Exception:  # pesq raises on silent or too-short signals
        out["pesq"] = math.nan
    return out


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def resynthesise(model, audio: np.ndarray, backend: str, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    hop = model.config.hop
    n = len(audio) // hop
    feats = extract_features(audio[: n * hop], model.config.sample_rate, hop)[None].astype(np.float32)
    if getattr(model, "subscale", 0):  # 16 samples per step over the whole utterance (torch)
        return _fit(np.asarray(model.generate(feats, temperature=temperature, seed=seed)[0], np.float32), len(audio))
    sampler = make_sampler(model, backend=backend, device="cpu")
    y, _ = sampler.generate(feats, None, temperature=temperature, seed=seed)
    return _fit(np.asarray(y[0], np.float32), len(audio))


def save_spectrograms(path: Path, rows: list[tuple[str, np.ndarray]], sample_rate: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 2.2 * len(rows)), sharex=True)
    for ax, (title, x) in zip(np.atleast_1d(axes), rows, strict=True):
        spec = torch.stft(torch.from_numpy(x), 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
        ax.imshow(
            (20 * torch.log10(spec + 1e-5)).numpy(),
            origin="lower",
            aspect="auto",
            vmin=-80,
            vmax=20,
            extent=(0, len(x) / sample_rate, 0, sample_rate / 2000),
        )
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("kHz")
    np.atleast_1d(axes)[-1].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wavernn-evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data", default="data/speech")
    p.add_argument("--split", default="test")
    p.add_argument("--max-utterances", type=int, default=12)
    p.add_argument("--max-seconds", type=float, default=4.0, help="crop utterances to this length")
    p.add_argument("--backend", default="auto", choices=["auto", "numba", "torch"])
    p.add_argument("--resynth-all", action="store_true", help="resynthesise with every checkpoint, not the first")
    p.add_argument("--no-resynth", action="store_true")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the resynthesis")
    p.add_argument("--out", default="runs/voice_eval")
    a = p.parse_args(argv)
    with torch.no_grad():
        return _evaluate(a)


def _evaluate(a: argparse.Namespace) -> int:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        utts = load_split(a.data, a.split, max_items=a.max_utterances)
    except (OSError, ValueError) as exc:
        print(f"wavernn-evaluate: {exc}", file=sys.stderr)
        return 2
    utts = [u[: int(a.max_seconds * 16000)] for u in utts]
    report: dict = {
        "data": str(a.data),
        "split": a.split,
        "utterances": len(utts),
        "temperature": a.temperature,
        "models": [],
    }
    world = None
    for i, path in enumerate(a.checkpoints):
        try:
            ckpt = load_voice(path, device="cpu")
        except CheckpointError as exc:
            print(f"wavernn-evaluate: {exc}", file=sys.stderr)
            return 2
        model = ckpt.model.eval()
        sr = model.config.sample_rate
        entry = {"checkpoint": str(path), "hidden": model.config.hidden, **count_weights(model)}
        entry["sparsity"] = model.sparsity()["gru.weight_hh_l0"]
        nll = heldout_nll(model, utts)
        entry.update(nll_nats=nll, nll_bits=nll / math.log(2))
        if not a.no_resynth and (i == 0 or a.resynth_all):
            if world is None:
                world = [world_resynthesis(u, sr) for u in utts]
                report["world"] = _mean([intelligibility(u, w, sr) for u, w in zip(utts, world, strict=True)])
            gen = [resynthesise(model, u, a.backend, seed=k, temperature=a.temperature) for k, u in enumerate(utts)]
            entry.update(_mean([intelligibility(u, g, sr) for u, g in zip(utts, gen, strict=True)]))
            if i == 0:
                for k in range(min(3, len(utts))):
                    for name, x in (("original", utts[k]), ("wavernn", gen[k]), ("world", world[k])):
                        sf.write(out / f"utt{k}_{name}.wav", x, sr)
                save_spectrograms(
                    out / "spectrograms.png",
                    [("original", utts[0]), ("WaveRNN resynthesis", gen[0]), ("WORLD resynthesis", world[0])],
                    sr,
                )
        report["models"].append(entry)
        print(json.dumps(entry))
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    (out / "metrics.md").write_text(markdown_table(report))
    print(markdown_table(report))
    return 0


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def markdown_table(report: dict) -> str:
    lines = [
        f"{report['utterances']} {report['split']} utterances of `{report['data']}`, "
        f"resynthesis at temperature {report.get('temperature', 1.0)}",
        "",
        "| model | hidden | params | non-zero | GRU sparsity | NLL nats/sample | bits/sample | STOI | PESQ (wb) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        lines.append(
            f"| `{m['checkpoint']}` | {m['hidden']} | {m['params']:,} | {m['nonzero']:,} | {m['sparsity']:.1%} | "
            f"{m['nll_nats']:.3f} | {m['nll_bits']:.3f} | {m.get('stoi', math.nan):.3f} | "
            f"{m.get('pesq', math.nan):.2f} |"
        )
    if "world" in report:
        w = report["world"]
        lines.append(f"| WORLD (pyworld) | - | - | - | - | - | - | {w['stoi']:.3f} | {w['pesq']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
