"""Where does SING's noise floor come from: the decoder (and its loss) or the LSTM's latents?

    python -m training.oracle_latents assets/sing_default.pt --data data/gm_pack --notes 16 --gains 128,1024

For test notes, starts from the LSTM's latents and fits the latents alone (decoder frozen) to the real note by the
training loss at each ``--gains`` value, then scores the decoded notes as ``training.evaluate --visqol`` does. If
the best latents the decoder can be given sound much better than the LSTM's, the LSTM is what to improve; if they
do not, the decoder or the loss is. The same fit at a higher gain shows whether the log loss's floor (log(1 + x)
is linear for the quiet bins between harmonics) is what leaves the noise there. ``--synthesis`` goes one level
lower: the synthesis layer's atom weights fitted to each note's waveform, signed and non-negative (as a ReLU hands
them): whether the decoder's frames can hold the note at all. Prints JSON.

    python -m training.oracle_latents assets/sing_default.pt --notes 4 --gains "" --synthesis
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch.nn import functional as F

from synth_core.sing.checkpoint import load_checkpoint
from synth_core.sing.loss import LossConfig, training_loss
from training import perceptual
from training.evaluate import load_audio, read_pack, split_seed, spread, training_gain
from training.split import split_of


def fit_latents(
    model,
    latents: torch.Tensor,
    targets: torch.Tensor,
    gain: float,
    steps: int,
    lr: float,
    loss: LossConfig,
    pitch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Latents fitted to ``targets`` (decoder frozen) by the training loss at ``gain``; the loss curve (``pitch``,
    MIDI [B], for a decoder with a harmonic bank)."""
    lat = latents.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([lat], lr=lr)
    curve = []
    for _ in range(steps):
        out = model.decode(lat, targets.shape[1], pitch)
        value = training_loss(out * gain, targets * gain, loss)
        opt.zero_grad()
        value.backward()
        opt.step()
        curve.append(value.item())
    return lat.detach(), curve


def fit_synthesis(model, latents: torch.Tensor, targets: torch.Tensor, signed: bool, steps: int = 600) -> torch.Tensor:
    """The decoder's synthesis layer alone: the weights of its frame atoms fitted to each note's waveform by least
    squares, either ``signed`` or non-negative (what the last ReLU can hand it), from the weights the model gives
    them (``latents``: the LSTM's). Projected gradient with Nesterov momentum (FISTA), a convex problem, so the
    non-negative fit is the best any latents, LSTM or loss could get from these atoms."""
    dec, c = model.decoder, model.config
    weight = dec.frame_weight().detach()
    n = targets.shape[1]

    def synth(h: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(h, weight, None, stride=c.hop)[:, 0, c.trim : c.trim + n]

    def half_square_grad(h: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        h = h.detach().requires_grad_(True)
        (0.5 * (synth(h) - goal).pow(2).sum()).backward()
        return h.grad

    with torch.no_grad():
        h = dec.layers(latents)
        goal = targets - dec.synthesis.bias  # the bias is added once per sample
    v, zero = torch.randn_like(h), torch.zeros_like(goal)
    for _ in range(20):  # power iteration for the step: 1 / the largest eigenvalue of A^T A
        v = half_square_grad(v, zero)
        v = v / v.norm()
    lipschitz = float(half_square_grad(v, zero).norm())

    def gradient(h: torch.Tensor) -> torch.Tensor:
        return half_square_grad(h, goal)

    y, t = h.clone(), 1.0
    for _ in range(steps):
        new = y - gradient(y) / lipschitz
        if not signed:
            new = new.clamp_min(0)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = new + (t - 1) / t_next * (new - h)
        h, t = new, t_next
    with torch.no_grad():
        return synth(h) + dec.synthesis.bias


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
        "--synthesis",
        action="store_true",
        help="also fit the synthesis layer's atom weights to each note, signed and non-negative (no latents)",
    )
    ap.add_argument(
        "--autoencoder",
        action="store_true",
        help="the checkpoint is an ae stage's: score its reconstructions (encoder -> decoder) instead of the LSTM",
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
    pitch = torch.tensor([n.pitch for n in notes])
    report = {"checkpoint": args.checkpoint, "notes": len(notes), "steps": args.steps, "lstm": None, "oracle": {}}
    if args.autoencoder:  # what the decoder plays from the encoder's latents: its capacity, no LSTM
        if ckpt.encoder is None:
            raise SystemExit(
                f"{args.checkpoint} has no encoder (an exported model?): --autoencoder needs an ae stage's"
            )
        with torch.no_grad():
            latents = ckpt.encoder.eval()(targets / scale)
            out = model.decode(latents, n_samples, pitch) * scale
        report["autoencoder"] = scores(notes, out.numpy(), targets.numpy(), sr)
    else:
        vec = model.instrument_table[torch.tensor([names[n.instrument] for n in notes])]
        velocity = torch.tensor([float(n.velocity) for n in notes])
        with torch.no_grad():
            latents = model.generator(vec, pitch, velocity, cfg.steps_for(n_samples))
            e2e = model.decode(latents, n_samples, pitch) * scale
        report["lstm"] = scores(notes, e2e.numpy(), targets.numpy(), sr)
    loss = LossConfig(low_band_weight=args.low_band_weight, sample_rate=sr)
    for gain in (float(g) for g in args.gains.split(",") if g):
        # the model outputs at the pack's level times 1/scale: fit at the pack's level
        lat, curve = fit_latents(model, latents, targets / scale, gain * scale, args.steps, args.lr, loss, pitch)
        with torch.no_grad():
            out = model.decode(lat, n_samples, pitch) * scale
        report["oracle"][f"gain {gain:g}"] = {**scores(notes, out.numpy(), targets.numpy(), sr),
                                              "loss_first_last": [curve[0], curve[-1]]}  # fmt: skip
    if args.synthesis:
        for signed in (True, False):
            out = fit_synthesis(model, latents, targets / scale, signed) * scale
            error = 10 * np.log10(float((out - targets).pow(2).sum() / targets.pow(2).sum()))
            key = "synthesis_signed" if signed else "synthesis_non_negative"
            report[key] = {**scores(notes, out.numpy(), targets.numpy(), sr), "waveform_error_db": error}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
