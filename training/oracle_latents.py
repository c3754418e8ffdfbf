"""Where does SING's noise floor come from: the decoder (and its loss) or the LSTM's latents?

    python -m training.oracle_latents assets/sing_default.pt --data data/gm_pack --notes 16 --gains 128,1024

For test notes, starts from the LSTM's latents and fits the latents alone (decoder frozen) to the real note by the
training loss at each ``--gains`` value, then scores the decoded notes as ``training.evaluate --visqol`` does. If
the best latents the decoder can be given sound much better than the LSTM's, the LSTM is what to improve; if they
do not, the decoder or the loss is. The same fit at a higher gain shows whether the log loss's floor (log(1 + x)
is linear for the quiet bins between harmonics) is what leaves the noise there. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from synth_core.sing.checkpoint import load_checkpoint
from synth_core.sing.loss import LossConfig, training_loss
from training import perceptual
from training.evaluate import load_audio, read_pack, split_seed, spread, training_gain
from training.split import split_of


def fit_latents(
    model, latents: torch.Tensor, targets: torch.Tensor, gain: float, steps: int, lr: float, loss: LossConfig
) -> tuple[torch.Tensor, list[float]]:
    """Latents fitted to ``targets`` (decoder frozen) by the training loss at ``gain``; the loss curve."""
    lat = latents.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([lat], lr=lr)
    curve = []
    for _ in range(steps):
        out = model.decode(lat, targets.shape[1])
        value = training_loss(out * gain, targets * gain, loss)
        opt.zero_grad()
        value.backward()
        opt.step()
        curve.append(value.item())
    return lat.detach(), curve


def fit_synthesis(model, latents: torch.Tensor, targets: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """The decoder's synthesis layer alone: its non-negative hidden activations (what the ReLU layers can hand it)
    fitted to each note's waveform by least squares, a convex problem. What this cannot reach, no latents, LSTM or
    loss can: it bounds what the frame atoms can express."""
    dec, trim = model.decoder, model.config.trim
    with torch.no_grad():
        hidden = dec.layers(latents)
    h = hidden.clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=lr)
    weight = dec.frame_weight()
    n = targets.shape[1]
    scale = targets.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-12)
    for _ in range(steps):
        wav = torch.nn.functional.conv_transpose1d(h, weight, dec.synthesis.bias, stride=dec.config.hop)[:, 0]
        value = ((wav[:, trim : trim + n] - targets).pow(2).mean(dim=1, keepdim=True) / scale).mean()
        opt.zero_grad()
        value.backward()
        opt.step()
        with torch.no_grad():
            h.clamp_(min=0)
    with torch.no_grad():
        wav = torch.nn.functional.conv_transpose1d(h, weight, dec.synthesis.bias, stride=dec.config.hop)[:, 0]
    return wav[:, trim : trim + n]


def scores(notes, outputs: np.ndarray, targets: np.ndarray, sr: int) -> dict:
    """Mean ViSQOL and energy between harmonics (dB over the target's) of ``outputs``."""
    mos = [perceptual.visqol_mos(t, o, sr) for o, t in zip(outputs, targets, strict=True)]
    triples = zip(notes, outputs, targets, strict=True)
    floor = [perceptual.between_harmonics_db(o, t, n.pitch, sr) for n, o, t in triples]
    return {"visqol": float(np.mean(mos)), "between_harmonics_db": float(np.mean(floor)), "per_note": mos}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.oracle_latents", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default="data/gm_pack")
    ap.add_argument("--notes", type=int, default=16, help="test notes, evenly spread")
    ap.add_argument("--gains", default="128,1024", help="loss gains to fit the latents at")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--low-band-weight", type=float, default=3.0, help="as the shipped recipe's last stage")
    ap.add_argument(
        "--synthesis-steps", type=int, default=0, help="also fit the synthesis layer's hidden activations (0: skip)"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint, "cpu")
    model, cfg = ckpt.model.eval(), ckpt.config
    for p in model.parameters():
        p.requires_grad_(False)
    names = {info.name: k for k, info in enumerate(ckpt.instruments)}
    seed = split_seed(ckpt.training)
    known = [n for n in read_pack(args.data) if n.instrument in names]
    test = [n for n in known if split_of(n.instrument, n.pitch, seed) == "test"]
    notes = spread(test, args.notes)
    sr, n_samples = cfg.sample_rate, cfg.note_samples
    targets = torch.from_numpy(np.stack([load_audio(n.path, n_samples, sr) for n in notes]))
    _, scale = training_gain(ckpt)
    vec = model.instrument_table[torch.tensor([names[n.instrument] for n in notes])]
    pitch = torch.tensor([n.pitch for n in notes])
    velocity = torch.tensor([float(n.velocity) for n in notes])
    with torch.no_grad():
        latents = model.generator(vec, pitch, velocity, cfg.steps_for(n_samples))
        e2e = model.decode(latents, n_samples) * scale
    report = {"checkpoint": args.checkpoint, "notes": len(notes), "steps": args.steps, "lstm": None, "oracle": {}}
    report["lstm"] = scores(notes, e2e.numpy(), targets.numpy(), sr)
    loss = LossConfig(low_band_weight=args.low_band_weight, sample_rate=sr)
    for gain in (float(g) for g in args.gains.split(",") if g):
        # the model outputs at the pack's level times 1/scale: fit at the pack's level
        lat, curve = fit_latents(model, latents, targets / scale, gain * scale, args.steps, args.lr, loss)
        with torch.no_grad():
            out = model.decode(lat, n_samples) * scale
        report["oracle"][f"gain {gain:g}"] = {**scores(notes, out.numpy(), targets.numpy(), sr),
                                              "loss_first_last": [curve[0], curve[-1]]}  # fmt: skip
    if args.synthesis_steps:
        out = fit_synthesis(model, latents, targets / scale, args.synthesis_steps, 0.01) * scale
        error = 10 * np.log10(float((out - targets).pow(2).sum() / targets.pow(2).sum()))
        report["synthesis"] = {**scores(notes, out.numpy(), targets.numpy(), sr), "waveform_error_db": error}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
