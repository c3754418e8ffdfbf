"""Fit a new instrument's embedding row to a few recorded notes (the fast path to a custom instrument).

Every model weight stays frozen: only the 16 numbers of the new instrument vector move, so a fit takes
seconds on a CPU and the existing instruments play bit-identically. The fit starts from the existing
instruments whose notes are closest to the samples (by spectral loss), runs Adam from a few of them with an
early stop, and keeps the best vector, clamped to the region the trained table spans.

Samples louder or quieter than anything the model plays (a recording normalised to full scale) are brought to
the nearest instrument's level, so a new instrument plays about as loud as the instruments beside it.

This is the fit the app runs ("New instrument from samples", in a child process: ``sing_app.fit_process``);
``training.embed_fit`` re-exports it and adds ``fit_pack`` (a checkpoint grown by a pack's instruments, for
``sing-train --embed``). Nothing here knows of Qt or of ``training``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from synth_core.sing.checkpoint import load_checkpoint
from synth_core.sing.loss import LossConfig, training_loss
from synth_core.sing.model import SING
from synth_core.sing.samples import note_name, read_samples


class FitCancelled(RuntimeError):
    """The caller's ``should_stop`` asked the fit to stop; nothing was written."""


@dataclass(frozen=True)
class FitConfig:
    """Knobs of :func:`fit_embedding` (the defaults fit ~20 notes in well under a minute on 2 CPU cores)."""

    starts: int = 3  # nearest existing instruments tried as starting points
    steps: int = 40  # Adam steps per start at most
    lr: float = 0.05
    patience: int = 8  # steps without a 0.2 % improvement before a start stops
    crop_hops: int = 125  # hops decoded per note from its start (125 = 2 s): attack and sustain
    rank_notes: int = 6  # notes (spread over the pitches) used to rank the existing instruments
    batch_notes: int = 24  # notes per step (a random subset when there are more)
    margin: float = 0.0  # how far (times the table's spread) the vector may leave the table's range
    seed: int = 0


@dataclass
class FitResult:
    """A fitted instrument vector and how it was found."""

    vector: torch.Tensor  # [instrument_dim]
    loss: float  # training loss of the vector on all notes (lower is better)
    nearest: str  # the existing instrument the best start came from
    nearest_loss: float  # that instrument's loss before fitting
    level_gain_db: float  # gain applied to the samples to match the model's level
    steps: int
    seconds: float
    tried: list[dict] = field(default_factory=list)  # per start: instrument, start loss, final loss, steps

    def report(self) -> dict:
        d = asdict(self)
        d["vector"] = [round(float(v), 6) for v in self.vector]
        return d


Progress = Callable[[float, str], None]


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.square().mean(-1).sqrt()


class _Loss:
    """The loss of candidate vectors on the notes (model frozen, output at the pack's level times ``gain``)."""

    def __init__(self, model: SING, targets, pitch, velocity, out_scale: float, gain: float, loss: LossConfig):
        self.model = model
        self.targets = targets
        self.pitch = pitch
        self.velocity = velocity
        self.out_scale = out_scale
        self.gain = gain
        self.loss = loss

    def render(self, vectors: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        n = self.targets.shape[1]
        out = self.model(None, self.pitch[idx], self.velocity[idx], instrument_vec=vectors, n_samples=n)
        return out * self.out_scale

    def __call__(self, vector: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        out = self.render(vector.expand(len(idx), -1), idx)
        return training_loss(out * self.gain, self.targets[idx] * self.gain, self.loss)


def fit_embedding(
    model: SING,
    notes: torch.Tensor,
    pitch: torch.Tensor,
    velocity: torch.Tensor,
    names: list[str],
    *,
    gain: float = 1.0,
    out_scale: float = 1.0,
    loss: LossConfig | None = None,
    config: FitConfig = FitConfig(),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Fit one instrument vector to ``notes`` [N, samples] (16 kHz, any level) of ``pitch`` / ``velocity`` [N].

    ``model``: a trained SING whose weights are left untouched; ``names``: its instrument names (its table's
    rows). ``gain``: the gain the model trained at (its loss works on audio at that level); ``out_scale``
    brings the model's output to the pack's level (see :func:`training_gain`). The loss compares
    the notes as they play (an exported model's level calibration included) with the samples, at their own level
    when the instruments span it, else at the nearest instrument's (see :func:`_rank`). The training objective
    (output before calibration against the samples) would be minimised by a louder, blurred vector, not by the
    instrument that made them. Raises :class:`FitCancelled` when ``should_stop()`` turns true, ValueError
    without notes.
    """
    if len(notes) == 0:
        raise ValueError("no notes to fit")
    t0 = time.monotonic()
    report = progress or (lambda fraction, message: None)
    stop = should_stop or (lambda: False)
    loss_config = loss or LossConfig(sample_rate=model.config.sample_rate)
    was_training = model.training
    model.eval()
    grads = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        hop = model.config.hop
        n_samples = max(hop, min(notes.shape[1], config.crop_hops * hop) // hop * hop)  # whole hops
        targets = torch.nn.functional.pad(notes.float(), (0, max(0, n_samples - notes.shape[1])))[:, :n_samples]
        table = model.instrument_table.detach().float()
        gen = torch.Generator().manual_seed(config.seed)
        report(0.0, "ranking the existing instruments")
        ranking, level = _rank(model, targets, pitch, velocity, table, out_scale, gain, loss_config, config)
        targets = targets * level
        fn = _Loss(model, targets, pitch, velocity, out_scale, gain, loss_config)
        lo, hi = table.min(0).values, table.max(0).values
        spread = hi - lo
        lo, hi = lo - config.margin * spread, hi + config.margin * spread
        every = torch.arange(len(targets))
        tried = []
        best_vec, best_loss, total_steps = None, math.inf, 0
        n_starts = min(config.starts, len(table))
        for k, (row, _) in enumerate(ranking[:n_starts]):
            vec = table[row].clone().requires_grad_(True)
            opt = torch.optim.Adam([vec], lr=config.lr)
            with torch.no_grad():
                start_loss = float(fn(vec, every))
            run_best, run_vec, stale, steps = start_loss, vec.detach().clone(), 0, 0
            for step in range(config.steps):
                if stop():
                    raise FitCancelled("fit cancelled")
                idx = every
                if len(every) > config.batch_notes:
                    idx = torch.randperm(len(every), generator=gen)[: config.batch_notes]
                opt.zero_grad(set_to_none=True)
                value = fn(vec, idx)
                value.backward()
                opt.step()
                with torch.no_grad():
                    vec.copy_(torch.maximum(torch.minimum(vec, hi), lo))
                steps += 1
                current = float(value.detach()) if len(idx) == len(every) else None
                if current is None:
                    with torch.no_grad():
                        current = float(fn(vec, every))
                if current < run_best * 0.998:
                    run_best, run_vec, stale = current, vec.detach().clone(), 0
                else:
                    stale += 1
                report(
                    (k + (step + 1) / config.steps) / n_starts,
                    f"start {k + 1}/{n_starts} ({names[row]}): step {step + 1}, loss {current:.4f}",
                )
                if stale >= config.patience:
                    break
            with torch.no_grad():  # the loss of the last step was that of the vector before it: score the kept one
                run_best = min(run_best, float(fn(run_vec, every)))
            total_steps += steps
            tried.append({"instrument": names[row], "start_loss": start_loss, "loss": run_best, "steps": steps})
            if run_best < best_loss:
                best_loss, best_vec = run_best, run_vec
        report(1.0, f"done: loss {best_loss:.4f}")
        first = ranking[0]
        return FitResult(
            vector=best_vec,
            loss=best_loss,
            nearest=names[first[0]],
            nearest_loss=tried[0]["start_loss"],
            level_gain_db=20 * math.log10(level),
            steps=total_steps,
            seconds=time.monotonic() - t0,
            tried=tried,
        )
    finally:
        for p, g in zip(model.parameters(), grads, strict=True):
            p.requires_grad_(g)
        model.train(was_training)


@torch.no_grad()
def _rank(model, targets, pitch, velocity, table, out_scale, gain, loss_config, config):
    """Existing instruments sorted by loss on a few notes [(row, loss)], and the level gain for the samples.

    Each instrument's notes are compared with the samples at the samples' level, note by note, so the ranking
    judges timbre, not loudness (the log-spectral loss favours quiet pairs: bringing the samples to each
    instrument's level would rank the quietest, fastest-decaying instruments first). The samples then keep
    their level when it lies within the levels the instruments play at those pitches; quieter or louder ones
    (a recording normalised to full scale) are brought to the nearest instrument's level, with one gain that
    keeps their relative levels.
    """
    n = len(targets)
    idx = torch.linspace(0, n - 1, min(n, config.rank_notes)).round().long().unique()
    chosen = targets[idx]
    chosen_rms = _rms(chosen).clamp_min(1e-8)
    scores = []
    for row in range(len(table)):
        vec = table[row].expand(len(idx), -1)
        out = model(None, pitch[idx], velocity[idx], instrument_vec=vec, n_samples=targets.shape[1]) * out_scale
        ratio = float((_rms(out).median() / chosen_rms.median()).clamp(1e-2, 1e2))
        matched = out * (chosen_rms / _rms(out).clamp_min(1e-8))[:, None]
        per_note = [
            training_loss(matched[i : i + 1] * gain, chosen[i : i + 1] * gain, loss_config) for i in range(len(idx))
        ]
        scores.append((row, float(torch.stack(per_note).mean()), ratio))
    ratios = [r for _, _, r in scores]
    scores.sort(key=lambda s: s[1])
    level = 1.0 if min(ratios) <= 1.0 <= max(ratios) else scores[0][2]
    return [(row, score) for row, score, _ in scores], level


# ---- samples -> new instrument vectors ---------------------------------------------------------------------


def training_gain(ckpt) -> tuple[float, float]:
    """(gain the model was trained at, scale that brings its output to the pack's level).

    A raw training checkpoint outputs at its training gain; an exported one has 1/gain folded in and records
    the gain in ``folded_training_gain``.
    """
    raw = float((ckpt.training or {}).get("gain") or 1.0)
    folded = float((ckpt.metadata or {}).get("folded_training_gain") or 1.0)
    return raw * folded, 1.0 / raw


def loss_config_of(ckpt) -> LossConfig:
    """The loss terms the checkpoint was trained with (its training record), so a fit optimises the same."""
    tr = ckpt.training or {}
    ffts = tuple(int(t) for t in str(tr.get("extra_fft") or "").split(",") if t.strip())
    return LossConfig(
        level_weight=float(tr.get("level_weight") or 0.0),
        extra_ffts=ffts,
        low_band_weight=float(tr.get("low_band_weight") or 0.0),
        low_band_hz=float(tr.get("low_band_hz") or 1000.0),
        high_band_weight=float(tr.get("high_band_weight") or 0.0),
        high_band_hz=float(tr.get("high_band_hz") or 4000.0),
        mel_weight=float(tr.get("mel_weight") or 0.0),
        mel_bands=int(tr.get("mel_bands") or 64),
        phase_weight=float(tr.get("phase_weight") or 0.0),
        phase_fft=int(tr.get("phase_fft") or 512),
        convergence_weight=float(tr.get("convergence_weight") or 0.0),
        sample_rate=ckpt.config.sample_rate,
    )


def fit_dataset(
    ckpt,
    ds,
    *,
    config: FitConfig = FitConfig(),
    max_notes: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Fit one vector per instrument of note dataset ``ds`` to checkpoint ``ckpt``'s model.

    ``ds``: the notes (``.records``, ``.audio(i)``, ``.skipped``): a :class:`~synth_core.sing.samples.SampleNotes`
    or a ``training.datasets.NoteDataset``. Returns one report per instrument (in the order the notes name
    them): its name, notes (file, pitch,
    velocity, whether the pitch was estimated) and the :class:`FitResult` fields (``vector`` as a list).
    ValueError for an empty dataset or a name the checkpoint already has.
    """
    if len(ds) == 0:
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in ds.skipped[:5]) or "no WAV or FLAC files"
        raise ValueError(f"no usable notes ({reasons})")
    existing = {i.name.lower(): i.name for i in ckpt.instruments}
    clash = [existing[n.lower()] for n in dict.fromkeys(r.instrument for r in ds.records) if n.lower() in existing]
    if clash:
        named = ", ".join(map(repr, clash))
        raise ValueError(f"the checkpoint already has an instrument named {named}: pick another name")
    gain, out_scale = training_gain(ckpt)
    loss = loss_config_of(ckpt)
    names = [i.name for i in ckpt.instruments]
    groups = list(dict.fromkeys(r.instrument for r in ds.records))
    fits = []
    for g, name in enumerate(groups):
        idx = [i for i, r in enumerate(ds.records) if r.instrument == name][: max_notes or None]
        recs = [ds.records[i] for i in idx]
        notes = torch.stack([torch.from_numpy(ds.audio(i)) for i in idx])

        def sub(fraction: float, message: str, g=g, name=name) -> None:
            if progress is not None:
                progress((g + fraction) / len(groups), f"{name}: {message}")

        result = fit_embedding(
            ckpt.model,
            notes,
            torch.tensor([r.pitch for r in recs]),
            torch.tensor([r.velocity for r in recs]),
            names,
            gain=gain,
            out_scale=out_scale,
            loss=loss,
            config=config,
            progress=sub,
            should_stop=should_stop,
        )
        notes_report = [
            {"file": r.path.name, "pitch": r.pitch, "note": note_name(r.pitch), "velocity": r.velocity,
             "pitch_estimated": r.pitch_estimated}
            for r in recs
        ]  # fmt: skip
        fits.append({"instrument": name, "notes": notes_report, **result.report()})
    return fits


def fit_samples(
    init,
    files,
    name: str,
    *,
    config: FitConfig = FitConfig(),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """One new instrument ``name`` fitted to audio ``files`` (and folders) for checkpoint ``init``; writes nothing.

    Returns the instrument's report (see :func:`fit_dataset`) plus the files skipped and why.
    """
    ckpt = load_checkpoint(init, "cpu")
    ds = read_samples(files, name, sample_rate=ckpt.config.sample_rate, note_samples=ckpt.config.note_samples)
    (fit,) = fit_dataset(ckpt, ds, config=config, progress=progress, should_stop=should_stop)
    return {**fit, "skipped": [{"file": str(p), "reason": r} for p, r in ds.skipped]}
