"""Plain vs subscale WaveRNN of the same size on a synthetic conditioned signal; prints JSON.

Data: harmonic tones (f0 held per 10 ms frame, gliding and jumping; loudness varying per frame;
a per-clip spectral tilt given as feature column 3) plus white noise at -60 dBFS. Both models are
trained for the same number of steps on the same batches, then compared on held-out clips by
teacher-forced NLL (nats per sample, coarse + fine) and by the log-spectral distance (dB) of
generated audio against the target, with white noise of the target's loudness as a baseline.

    PYTHONPATH=. python bench/wavernn_subscale.py                 # ~ a few minutes on one core
    PYTHONPATH=. python bench/wavernn_subscale.py --steps 50      # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np
import torch

from synth_core.wavernn import WaveRNN, WaveRNNConfig
from synth_core.wavernn.sampler_factory import make_sampler
from synth_core.wavernn.subscale import SubscaleWaveRNN

SR, HOP = 16000, 160


def synth_clip(rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(audio [n_frames * HOP], features [n_frames, 23]) of one synthetic harmonic clip."""
    midi = rng.uniform(50, 72) + np.cumsum(rng.normal(0, 0.15, n_frames))  # glide
    for _ in range(rng.integers(0, 3)):  # note jumps
        midi[rng.integers(0, n_frames) :] += rng.choice([-5, -3, 3, 4, 7])
    midi = np.clip(midi, 40, 84)
    db = np.clip(-20 + np.cumsum(rng.normal(0, 1.0, n_frames)), -40, -6)  # loudness in dBFS (RMS)
    tilt = rng.uniform(0.2, 1.2)  # harmonic amplitude decay per harmonic
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    inc = np.repeat(2 * np.pi * f0 / SR, HOP)
    phase = np.cumsum(inc) - inc
    n_harm = 12
    amps = np.exp(-tilt * np.arange(n_harm))
    wave = np.zeros_like(phase)
    for h, a in enumerate(amps, start=1):
        wave += a * np.sin(h * phase) * (h * np.repeat(f0, HOP) < SR / 2)
    wave /= np.sqrt(np.mean(wave**2)) + 1e-9
    gain = np.interp(np.arange(n_frames * HOP), np.arange(n_frames) * HOP + HOP / 2, 10 ** (db / 20))
    audio = gain * wave + 10 ** (-60 / 20) * rng.standard_normal(len(wave))  # noise floor at -60 dBFS
    audio = np.clip(audio, -1, 1).astype(np.float32)
    feats = np.zeros((n_frames, 23), np.float32)
    feats[:, 0] = (midi - 60) / 24
    feats[:, 1] = 1.0
    rms = np.sqrt(np.mean(audio.reshape(n_frames, HOP) ** 2, 1))
    feats[:, 2] = (20 * np.log10(rms + 1e-5) + 50) / 25
    feats[:, 3] = (tilt - 0.7) * 2
    return audio, feats


def dataset(n: int, n_frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    clips = [synth_clip(rng, n_frames) for _ in range(n)]
    return torch.from_numpy(np.stack([c[0] for c in clips])), torch.from_numpy(np.stack([c[1] for c in clips]))


def log_spectral_distance(x: np.ndarray, y: np.ndarray, n_fft: int = 512, hop: int = 128) -> float:
    """Mean over frames of the RMS (over bins) dB difference of magnitude spectra, floor -100 dB."""
    win = torch.hann_window(n_fft)

    def db(a):
        s = torch.stft(torch.as_tensor(a), n_fft, hop, window=win, center=False, return_complex=True).abs()
        return 20 * torch.log10(s / n_fft + 1e-5)

    d = db(x) - db(y)
    return float(d.square().mean(-2).sqrt().mean())


def train(model: WaveRNN, audio, feats, steps: int, batch: int, crop_frames: int, lr: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()
    losses, t0 = [], time.perf_counter()
    for step in range(steps):
        idx = rng.integers(0, len(audio), batch)
        start = rng.integers(0, feats.shape[1] - crop_frames + 1, batch)
        a = torch.stack([audio[i, s * HOP : (s + crop_frames) * HOP] for i, s in zip(idx, start, strict=True)])
        f = torch.stack([feats[i, s : s + crop_frames] for i, s in zip(idx, start, strict=True)])
        for g in opt.param_groups:  # cosine decay
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss, _ = model.loss(f, a)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.apply_masks()
        losses.append(loss.item())
    model.eval()
    return {"train_seconds": time.perf_counter() - t0, "final_train_nll": float(np.mean(losses[-20:]))}


@torch.no_grad()
def evaluate(model: WaveRNN, audio, feats, generate) -> dict:
    nll = float(model.loss(feats, audio)[0])
    t0 = time.perf_counter()
    out = generate(feats.numpy())
    gen_s = time.perf_counter() - t0
    lsd = float(np.mean([log_spectral_distance(o, a) for o, a in zip(out, audio.numpy(), strict=True)]))
    return {
        "heldout_nll_nats_per_sample": nll,
        "log_spectral_distance_db": lsd,
        "generation_samples_per_s": out.size / gen_s,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop-frames", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_audio, train_feats = dataset(48, 60, seed=1)
    test_audio, test_feats = dataset(6, 50, seed=2)
    cfg = WaveRNNConfig(hidden=args.hidden, cond_channels=32, head_hidden=64, block=(4, 4))
    results = {}
    for name in ("plain", "subscale"):
        torch.manual_seed(args.seed)
        model = WaveRNN(cfg) if name == "plain" else SubscaleWaveRNN(cfg)
        n_params = sum(p.numel() for p in model.parameters())
        r = {"params": n_params}
        r.update(train(model, train_audio, train_feats, args.steps, args.batch, args.crop_frames, args.lr, args.seed))
        if name == "plain":
            sampler = make_sampler(model, backend="torch", device="cpu")

            def gen(f, sampler=sampler):
                return sampler.generate(f, seed=0)[0]
        else:

            def gen(f, model=model):
                return model.generate(f, seed=0)

        r.update(evaluate(model, test_audio, test_feats, gen))
        results[name] = r
    rng = np.random.default_rng(3)
    noise = [rng.standard_normal(a.shape[0]).astype(np.float32) * a.std() for a in test_audio.numpy()]
    baseline = float(np.mean([log_spectral_distance(n, a) for n, a in zip(noise, test_audio.numpy(), strict=True)]))
    print(
        json.dumps(
            {
                "benchmark": "wavernn_subscale",
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
                + f", torch {torch.__version__}, {args.threads} thread(s)",
                "data": "synthetic harmonic tones, 48 train clips x 0.6 s, 6 held-out clips x 0.5 s, 16 kHz",
                "config": {**cfg.to_dict(), "subscale": 16, "context_past": 2, "context_future": 2},
                "steps": args.steps,
                "batch": args.batch,
                "crop_samples": args.crop_frames * HOP,
                "results": results,
                "baseline_noise_log_spectral_distance_db": baseline,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
