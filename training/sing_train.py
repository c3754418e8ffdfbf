"""Train SING in its three stages (autoencoder, LSTM to latents, end-to-end) on NSynth or a sample pack.

Examples::

    sing-train --data nsynth-train --out runs/sing --stage all
    sing-train --pack my_pack --out runs/ft --stage e2e --init assets/sing.pt --epochs 5
    torchrun --nproc_per_node=4 -m training.sing_train --data nsynth-train --out runs/sing
    sing-train --data nsynth-train --out runs/sing --resume
    sing-train --pack my_samples --init assets/sing_default.pt --stage embed --out runs/mine [--name NAME]

``--stage embed`` is the fast path to a custom instrument: it fits one new embedding row per pack instrument
(every weight and old row frozen; seconds on a CPU) and writes ``<out>/checkpoint.pt`` (see training.embed_fit).

Only rank 0 logs and writes (tqdm, tensorboard in ``<out>/tb``, ``<out>/metrics.jsonl``,
``<out>/checkpoint.pt`` latest, ``<out>/best.pt`` best valid, ``<out>/stage_<name>.pt``).

The app's fine-tune runs this module as a child process; the flags it passes, the ``metrics.jsonl`` fields it
reads (``step``, ``train_loss``) and the checkpoint it loads (``<out>/checkpoint.pt``) are a contract written
down in ``synth_core.sing.finetune_contract`` (keep them working; ``tests/test_layering.py`` checks the flags).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from synth_core.sing.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from synth_core.sing.finetune_contract import CHECKPOINT_FILE, LOSS_FIELD, METRICS_FILE, STEP_FIELD
from synth_core.sing.loss import LossConfig, spectral_l1
from synth_core.sing.model import SING, Encoder, SINGConfig
from training.adversarial import Discriminators, discriminator_loss, generator_losses, normalise_pair, parse_sizes
from training.datasets import InstrumentVocab, NoteDataset, load_nsynth, load_pack
from training.ddp import DistInfo, ResumableSampler, barrier, run_training
from training.embed_fit import FitCancelled, FitConfig, fit_pack
from training.sing_steps import (
    STAGES,
    AutoencoderStage,
    CropGeometry,
    EndToEndStage,
    LSTMChunkStage,
    tbptt_chunks,
)

log = logging.getLogger("sing_train")
PAPER_EPOCHS = {"ae": 50, "lstm": 50, "e2e": 20}
TBPTT = 32


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sing-train", description="Train a SING model (three stages).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help="NSynth folder (examples.json + audio/)")
    src.add_argument("--pack", type=Path, help="sample pack folder (pack.csv or <instrument>_<pitch>_<velocity>.wav)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, tb/, metrics.jsonl)")
    p.add_argument(
        "--stage",
        choices=(*STAGES, "all", "embed"),
        default="all",
        help="train these stages; 'embed' only fits new instruments' embedding rows (needs --pack and --init)",
    )
    p.add_argument("--epochs", default=None, help="epochs per stage: N, or ae,lstm,e2e (default 50,50,20)")
    p.add_argument("--max-steps", type=int, default=None, help="stop each stage after this many optimizer steps")
    p.add_argument("--batch-size", type=int, default=64, help="global batch (split across DDP ranks)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument(
        "--gain",
        type=float,
        default=None,
        help="fixed gain on all training audio (default: the --from/--init checkpoint's, else 1): quiet packs "
        "give the log-spectral loss little to work with (the GM pack trains at 128); training.export folds "
        "1/gain back into the decoder so exported models play at the pack's level",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds init, data order, crops and the split")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--init", type=Path, help="fine-tune a trained checkpoint: old instrument rows stay frozen")
    p.add_argument("--from", dest="start_from", type=Path, help="start from an earlier stage's checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (and each epoch)")
    p.add_argument("--crop-steps", type=int, default=0, help="ae/e2e: decode a random window of K hops per note")
    p.add_argument(
        "--crop-floor-db",
        type=float,
        default=40.0,
        help="crops start where the note is within this many dB of its loudest hop (skips the silent release "
        "tail); 0 draws crops anywhere",
    )
    p.add_argument(
        "--level-weight",
        type=float,
        default=0.0,
        help="ae/e2e: add this times the L1 between log frame energies (output level) to the spectral loss",
    )
    p.add_argument(
        "--extra-fft",
        default="",
        help="ae/e2e: comma list of extra STFT sizes whose spectral L1 is added (hop size / 4), e.g. 2048",
    )
    p.add_argument(
        "--low-band-weight",
        type=float,
        default=0.0,
        help="ae/e2e: add this times the spectral L1 of the bins below --low-band-hz at 2048 points (the harmonics "
        "of low notes; the GM pack trains at 1)",
    )
    p.add_argument("--low-band-hz", type=float, default=1000.0, help="upper edge of the --low-band-weight term")
    p.add_argument(
        "--high-band-weight",
        type=float,
        default=0.0,
        help="ae/e2e: add this times the spectral L1 of the bins from --high-band-hz up (the upper partials)",
    )
    p.add_argument("--high-band-hz", type=float, default=4000.0, help="lower edge of the --high-band-weight term")
    p.add_argument(
        "--mel-weight",
        type=float,
        default=0.0,
        help="ae/e2e: add this times the L1 between log mel-band energies (--mel-bands bands at 1024 points): the "
        "energy of each band, wherever in it the partials sit",
    )
    p.add_argument("--mel-bands", type=int, default=64, help="bands of the --mel-weight term")
    p.add_argument(
        "--phase-weight",
        type=float,
        default=0.0,
        help="ae/e2e: add this times the L1 between compressed complex STFTs (magnitude^0.3 with the phase; "
        "--phase-fft points), a term that sees phase (use with --signed-synthesis)",
    )
    p.add_argument(
        "--convergence-weight",
        type=float,
        default=0.0,
        help="times the spectral convergence (linear magnitudes) at 1024 points and each --extra-fft; keeps a "
        "quiet model pulled toward its targets where the log loss goes flat",
    )
    p.add_argument("--phase-fft", type=int, default=512, help="STFT size of the --phase-weight term (hop / 4)")
    p.add_argument("--lr-final", type=float, default=None, help="decay the lr linearly to this by --max-steps")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps instead of every epoch")
    p.add_argument("--lstm-hidden", type=int, default=1024)
    p.add_argument("--lstm-layers", type=int, default=3)
    p.add_argument("--decoder-channels", type=int, default=4096)
    p.add_argument(
        "--signed-synthesis",
        action="store_true",
        help="the decoder's last activation a PReLU (signed frame atoms; see SINGConfig.signed_synthesis); a "
        "--init/--from model switches without changing what it plays; the slopes learn at --slope-lr",
    )
    p.add_argument("--slope-lr", type=float, default=3e-3, help="lr of the --signed-synthesis slopes (from 0)")
    p.add_argument(
        "--harmonics",
        type=int,
        default=0,
        help="a harmonic bank of K oscillators at the note's pitch beside the frame atoms (SINGConfig.harmonics); "
        "an --init/--from model gets one that starts silent (--bank-start-db)",
    )
    p.add_argument("--noise-bands", type=int, default=0, help="bands of filtered noise in the harmonic bank")
    p.add_argument("--no-atoms", action="store_true", help="with --harmonics: the bank alone, no frame atoms")
    p.add_argument("--bank-lr", type=float, default=None, help="lr of the harmonic bank's layers (default --lr)")
    p.add_argument(
        "--bank-start-db", type=float, default=-60.0, help="a new bank's amplitudes, in dB below their maximum"
    )
    p.add_argument("--eval-notes", type=int, default=256, help="notes per split for the epoch evaluation (0: all)")
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--log-every", type=int, default=20, help="steps between train-loss log lines")
    p.add_argument("--p-valid", type=float, default=0.1)
    p.add_argument("--p-test", type=float, default=0.1)
    nsynth = p.add_argument_group("NSynth filters")
    nsynth.add_argument("--families", help="comma list, e.g. keyboard,string")
    nsynth.add_argument("--sources", help="comma list of acoustic,electronic,synthetic")
    nsynth.add_argument("--pitch-range", help="LO-HI MIDI pitches, e.g. 24-96")
    nsynth.add_argument("--velocities", help="comma list, e.g. 75,100")
    nsynth.add_argument("--instruments", help="comma list of instrument names")
    nsynth.add_argument("--max-notes", type=int, default=None)
    nsynth.add_argument("--cache", action="store_true", help="decode all NSynth notes into memory (int16) first")
    adv = p.add_argument_group("adversarial fine-tune (e2e with --crop-steps; see training.adversarial)")
    adv.add_argument(
        "--adversarial",
        type=float,
        default=0.0,
        help="weight of the adversarial term (least-squares GAN + feature matching) beside the spectral loss; 0: off",
    )
    adv.add_argument("--feature-weight", type=float, default=2.0, help="feature matching, relative to the GAN loss")
    adv.add_argument("--disc-periods", default="2,3,5,7,11", help="multi-period discriminator periods ('none': off)")
    adv.add_argument("--disc-ffts", default="256,512,1024", help="multi-resolution discriminator STFT sizes")
    adv.add_argument("--disc-width", type=float, default=1.0, help="scale the discriminators' channel counts")
    adv.add_argument("--disc-lr", type=float, default=2e-4, help="discriminator Adam lr (betas 0.8, 0.99)")
    adv.add_argument(
        "--adversarial-after",
        type=int,
        default=0,
        help="stage steps in which only the discriminators learn before the model feels the adversarial term",
    )
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    embed = p.add_argument_group("--stage embed")
    embed.add_argument("--name", help="one instrument of this name from every file of the pack (any stage)")
    embed.add_argument("--embed-starts", type=int, default=FitConfig.starts, help="nearest instruments tried as starts")
    embed.add_argument("--embed-steps", type=int, default=FitConfig.steps, help="Adam steps per start at most")
    embed.add_argument("--embed-lr", type=float, default=FitConfig.lr)
    embed.add_argument(
        "--embed-seconds", type=float, default=FitConfig.crop_hops * 256 / 16000, help="seconds of each note fitted"
    )
    return p


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def stage_epochs(text: str | None) -> dict[str, int]:
    if not text:
        return dict(PAPER_EPOCHS)
    parts = [int(t) for t in text.split(",")]
    if len(parts) == 1:
        return dict.fromkeys(STAGES, parts[0])
    if len(parts) != 3:
        raise ValueError("--epochs takes N or three numbers ae,lstm,e2e")
    return dict(zip(STAGES, parts, strict=True))


def load_data(args: argparse.Namespace, vocab: InstrumentVocab, config: SINGConfig | None) -> NoteDataset:
    kw = {}
    if config is not None:
        kw = {"sample_rate": config.sample_rate, "note_samples": config.note_samples}
    try:
        ds = _read(args, vocab, kw)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"sing-train: {exc}") from exc
    if len(ds) == 0:
        raise SystemExit(f"sing-train: no usable notes ({len(ds.skipped)} skipped)")
    return ds


def _read(args: argparse.Namespace, vocab: InstrumentVocab, kw: dict) -> NoteDataset:
    if args.pack is not None:
        if (Path(args.pack) / "examples.json").is_file():  # read as WAVs it would be one instrument, "audio"
            raise SystemExit(
                f"sing-train: {args.pack} is an NSynth-format pack (examples.json + audio/): pass it with --data"
            )
        ds = load_pack(args.pack, cache=True, vocab=vocab, instrument=getattr(args, "name", None), **kw)
    elif args.data is not None:
        pr = None
        if args.pitch_range:
            lo, hi = args.pitch_range.split("-")
            pr = (int(lo), int(hi))
        vel = _csv(args.velocities)
        ds = load_nsynth(
            args.data,
            families=_csv(args.families),
            sources=_csv(args.sources),
            pitch_range=pr,
            velocities=[int(v) for v in vel] if vel else None,
            instruments=_csv(args.instruments),
            max_notes=args.max_notes,
            cache=args.cache,
            seed=args.seed,
            vocab=vocab,
            **kw,
        )
        if args.cache:
            ds.preload()
    else:
        raise SystemExit("sing-train: give --data NSYNTH_FOLDER or --pack PACK_FOLDER")
    return ds


class Trainer:
    """Holds the model, data and run state; runs stages; writes logs and checkpoints (rank 0)."""

    def __init__(self, args: argparse.Namespace, device: torch.device, dist: DistInfo):
        self.args = args
        self.device = device
        self.dist = dist
        self.out: Path = args.out
        self.epochs = stage_epochs(args.epochs)
        self.frozen_rows = 0
        self.state: dict[str, Any] = {"stage": None, "epoch": 0, "batch": 0, "step": 0, "stage_step": 0}
        self.best = math.inf
        self.optimizer_state = None
        self.writer = None
        self.stages = list(STAGES) if args.stage == "all" else [args.stage]
        self.adversary: Discriminators | None = None
        self.adversary_optimizer: torch.optim.Optimizer | None = None
        self.adversary_state: dict[str, Any] | None = None  # from a resumed checkpoint
        self.adversary_log: dict[str, float] = {}
        self._setup()

    @property
    def gain(self) -> float:
        """Fixed gain applied to every training waveform (see --gain)."""
        return self.args.gain

    # ---- setup -------------------------------------------------------------------------------
    def _setup(self) -> None:
        args = self.args
        vocab = InstrumentVocab()
        model: SING | None = None
        encoder: Encoder | None = None
        if args.resume:
            ck = self._load(self.out / CHECKPOINT_FILE)
            model, encoder, vocab = ck.model, ck.encoder, InstrumentVocab.from_infos(ck.instruments)
            tr = ck.training or {}
            self.stages = list(tr.get("stages") or self.stages)
            self.state.update({k: tr[k] for k in ("stage", "epoch", "batch", "step", "stage_step") if k in tr})
            self.frozen_rows = int(tr.get("frozen_rows", 0))
            self.best = math.inf if tr.get("best") is None else float(tr["best"])
            self.optimizer_state = tr.get("optimizer")
            self.adversary_state = tr.get("adversary")
            if isinstance(tr.get("rng"), torch.Tensor):
                torch.set_rng_state(tr["rng"])
            if tr.get("epochs"):
                self.epochs = dict(tr["epochs"]) if args.epochs is None else self.epochs
            if tr.get("batch_size") and tr["batch_size"] != args.batch_size:
                self._info(f"resuming with the run's batch size {tr['batch_size']} (not {args.batch_size})")
                args.batch_size = int(tr["batch_size"])
            if tr.get("seed") is not None and tr["seed"] != args.seed:
                self._info(f"resuming with the run's seed {tr['seed']} (not {args.seed})")
                args.seed = int(tr["seed"])
            if tr.get("gain") is not None:
                args.gain = float(tr["gain"])
        elif (self.out / CHECKPOINT_FILE).is_file():
            self._warn(f"{self.out} already holds a run: starting a new one over it (use --resume to continue it)")
        if not args.resume and (args.init is not None or args.start_from is not None):
            ck = self._load(args.init or args.start_from)
            model, encoder, vocab = ck.model, ck.encoder, InstrumentVocab.from_infos(ck.instruments)
            if args.init is not None:
                self.frozen_rows = ck.config.n_instruments
            self._carry_gain(ck, model, encoder)
        if args.gain is None:
            args.gain = 1.0
        n_before = len(vocab)
        self.data = load_data(args, vocab, model.config if model is not None else None)
        self.vocab = self.data.vocab
        n_new = len(self.vocab) - n_before
        if model is None:
            torch.manual_seed(args.seed)
            config = SINGConfig(
                n_instruments=len(self.vocab),
                lstm_hidden=args.lstm_hidden,
                lstm_layers=args.lstm_layers,
                decoder_channels=args.decoder_channels,
                signed_synthesis=args.signed_synthesis,
                harmonics=args.harmonics,
                noise_bands=args.noise_bands,
                atoms=not args.no_atoms,
            )
            model = SING(config)
        elif n_new:
            if args.resume:
                raise SystemExit(f"sing-train: the data has {n_new} instruments the run did not start with")
            model.add_instruments(n_new)
            self._info(f"added {n_new} new instruments: {', '.join(self.vocab.names[n_before:][:10])}")
        if args.signed_synthesis and not model.config.signed_synthesis:
            model.decoder.make_signed()
            self._info("decoder: signed synthesis (PReLU slopes from 0; the model plays as before)")
        if args.harmonics and not model.config.harmonics:
            model.decoder.add_bank(args.harmonics, args.noise_bands, not args.no_atoms, args.bank_start_db)
            self._info(
                f"decoder: a harmonic bank of {args.harmonics} harmonics and {args.noise_bands} noise bands, "
                f"from {args.bank_start_db:g} dB" + ("; no frame atoms" if args.no_atoms else "")
            )
        if encoder is None and "ae" not in self.stages[self._stage_index() :]:
            if "lstm" in self.stages[self._stage_index() :]:
                raise SystemExit("sing-train: the lstm stage needs a trained encoder: pass --from CKPT of an ae run")
        if encoder is None:
            torch.manual_seed(args.seed + 1)
            encoder = Encoder(model.config)
        self.model = model.to(self.device)
        self.encoder = encoder.to(self.device)
        self.config = model.config
        self.splits = self.data.split(seed=args.seed, p_valid=args.p_valid, p_test=args.p_test)
        if len(self.splits["train"]) == 0:
            raise SystemExit("sing-train: the split left no training notes")
        self.crop = CropGeometry(self.config, args.crop_steps) if args.crop_steps else None
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"))
            sizes = {k: len(v) for k, v in self.splits.items()}
            self._info(
                f"{len(self.data)} notes, {len(self.vocab)} instruments, split {sizes}, "
                f"{len(self.data.skipped)} skipped, {self.model.num_parameters() / 1e6:.2f}M parameters, "
                f"device {self.device}"
            )

    def _carry_gain(self, ck, model: SING, encoder: Encoder | None) -> None:
        """Train at the checkpoint's gain unless --gain says otherwise; rescale the model when they differ.

        A training checkpoint records the gain it trained at; an exported one plays at the pack's level and
        records the gain it was trained at in ``folded_training_gain`` (and its level calibration, undone here).
        The synthesis layer is linear and the encoder's first layer is linear before its bias, so both rescale
        exactly to the new gain.
        """
        metadata = ck.metadata or {}
        trained = float((ck.training or {}).get("gain") or 1.0)
        if self.args.gain is None:
            self.args.gain = float(metadata.get("folded_training_gain") or trained)
            self._info(f"training at the checkpoint's gain {self.args.gain:g}")
        # an exported model's level calibration is undone: training starts from the state the loss left
        ratio = self.args.gain / trained * 10 ** (-float(metadata.get("level_calibration_db") or 0.0) / 20)
        if ratio != 1.0:
            model.decoder.scale_output(ratio)
            if encoder is not None:
                with torch.no_grad():
                    encoder.analysis.weight /= ratio
            self._info(f"rescaled the model from gain {trained:g} to {self.args.gain:g}")

    def _load(self, path: Path):
        try:
            return load_checkpoint(path, "cpu")
        except CheckpointError as exc:
            raise SystemExit(f"sing-train: {exc}") from exc

    def _stage_index(self) -> int:
        stage = self.state["stage"]
        return self.stages.index(stage) if stage in self.stages else 0

    def _info(self, msg: str) -> None:
        if self.dist.is_main:
            log.info(msg)

    def _warn(self, msg: str) -> None:
        if self.dist.is_main:
            log.warning(msg)

    # ---- checkpoints and logs ------------------------------------------------------------------
    def training_dict(self, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        return {
            **self.state,
            "stages": self.stages,
            "epochs": self.epochs,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "frozen_rows": self.frozen_rows,
            "best": self.best if math.isfinite(self.best) else None,
            "seed": self.args.seed,
            "gain": self.gain,
            "batch_size": self.args.batch_size,
            "lr": self.args.lr,
            "crop_steps": self.args.crop_steps,
            "level_weight": self.args.level_weight,
            "extra_fft": self.args.extra_fft,
            "low_band_weight": self.args.low_band_weight,
            "low_band_hz": self.args.low_band_hz,
            "high_band_weight": self.args.high_band_weight,
            "high_band_hz": self.args.high_band_hz,
            "mel_weight": self.args.mel_weight,
            "mel_bands": self.args.mel_bands,
            "phase_weight": self.args.phase_weight,
            "phase_fft": self.args.phase_fft,
            "convergence_weight": self.args.convergence_weight,
            "velocities": sorted({int(r.velocity) for r in self.data.records}),
            "rng": torch.get_rng_state(),
            "adversary": self._adversary_dict(),
        }

    def _adversary_dict(self) -> dict[str, Any] | None:
        if self.adversary is None:
            return self.adversary_state
        a = self.args
        return {
            "weight": a.adversarial,
            "feature_weight": a.feature_weight,
            "periods": list(parse_sizes(a.disc_periods)),
            "ffts": list(parse_sizes(a.disc_ffts)),
            "width": a.disc_width,
            "after": a.adversarial_after,
            "model": self.adversary.state_dict(),
            "optimizer": self.adversary_optimizer.state_dict() if self.adversary_optimizer is not None else None,
        }

    def save(self, name: str, optimizer: torch.optim.Optimizer | None) -> None:
        if not self.dist.is_main:
            return
        save_checkpoint(
            self.out / name,
            self.model,
            self.vocab.infos(),
            encoder=self.encoder,
            training=self.training_dict(optimizer),
            metadata={
                "stage": self.state["stage"],
                "step": self.state["step"],
                "data": str(self.args.pack or self.args.data),
                "saved": time.time(),
            },
        )

    def metric(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        record = {"stage": self.state["stage"], "epoch": self.state["epoch"], STEP_FIELD: self.state["step"], **record}
        with open(self.out / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if isinstance(v, float) and self.writer is not None:
                self.writer.add_scalar(f"{record['stage']}/{k}", v, record["step"])

    # ---- evaluation --------------------------------------------------------------------------
    def eval_subset(self, ds: NoteDataset) -> NoteDataset:
        n = self.args.eval_notes
        if not n or len(ds) <= n:
            return ds
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(self.args.seed))
        return ds.subset(sorted(order[:n].tolist()))

    @torch.no_grad()
    def evaluate(self, stage: str) -> dict[str, float]:
        """Spectral L1 per split: reconstruction for ae, generation for lstm/e2e (plus latent MSE for lstm)."""
        self.model.eval()
        self.encoder.eval()
        result = {}
        for name, ds in self.splits.items():
            if len(ds) == 0:
                continue
            total, mse, silence, count = 0.0, 0.0, 0.0, 0
            loader = DataLoader(self.eval_subset(ds), batch_size=self.args.eval_batch_size)
            for wav, inst, pitch, vel in loader:
                wav, inst, pitch, vel = (t.to(self.device) for t in (wav, inst, pitch, vel))
                wav = wav * self.gain
                if stage == "ae":
                    out = self.model.decode(self.encoder(wav), wav.shape[1], pitch)
                else:
                    out = self.model(inst, pitch, vel, n_samples=wav.shape[1])
                if stage == "lstm":
                    target = self.encoder(wav)
                    latents = self.model.generator(self.model.instrument_vectors(inst), pitch, vel, target.shape[2])
                    mse += float(torch.nn.functional.mse_loss(latents, target)) * len(wav)
                total += float(spectral_l1(out, wav)) * len(wav)
                silence += float(spectral_l1(torch.zeros_like(wav), wav)) * len(wav)
                count += len(wav)
            result[f"{name}_spectral_l1"] = total / count
            result[f"{name}_silence_l1"] = silence / count  # the loss of outputting nothing, for scale
            if stage == "lstm":
                result[f"{name}_latent_mse"] = mse / count
        return result

    # ---- training ----------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        last: dict[str, float] = {}
        start = self._stage_index()
        for stage in self.stages[start:]:
            if self.state["stage"] != stage:
                self.state.update({"stage": stage, "epoch": 0, "batch": 0, "stage_step": 0})
                self.best = math.inf
                self.optimizer_state = None
            last = self.run_stage(stage)
            self.save(f"stage_{stage}.pt", None)
        return last

    def stage_parameters(self, stage: str) -> tuple[nn.Module, list[nn.Parameter]]:
        for p in (*self.model.parameters(), *self.encoder.parameters()):
            p.requires_grad_(False)
        if stage == "ae":
            module: nn.Module = AutoencoderStage(self.encoder, self.model.decoder, self.crop, self._loss_config())
        elif stage == "lstm":
            module = LSTMChunkStage(self.model.generator)
        else:
            module = EndToEndStage(self.model, self.crop, self._loss_config())
            if self.args.adversarial > 0:
                self._set_up_adversary()
        params = list(module.parameters())
        for p in params:
            p.requires_grad_(True)
        return module, params

    def _set_up_adversary(self) -> None:
        """The discriminators and their optimizer (restored from the checkpoint when resuming)."""
        a = self.args
        if self.crop is None:
            raise SystemExit("sing-train: --adversarial needs --crop-steps (the discriminators judge crops)")
        saved = self.adversary_state
        if saved is not None:  # a resumed run keeps the discriminators it was trained with
            a.disc_periods = ",".join(map(str, saved["periods"])) or "none"
            a.disc_ffts = ",".join(map(str, saved["ffts"])) or "none"
            a.disc_width = float(saved["width"])
        try:
            with torch.random.fork_rng(devices=[]):  # its own seed, leaving the run's random stream as it was
                torch.manual_seed(a.seed + 2)
                self.adversary = Discriminators(parse_sizes(a.disc_periods), parse_sizes(a.disc_ffts), a.disc_width)
        except ValueError as exc:
            raise SystemExit(f"sing-train: {exc}") from exc
        self.adversary.to(self.device)
        self.adversary_optimizer = torch.optim.Adam(self.adversary.parameters(), lr=a.disc_lr, betas=(0.8, 0.99))
        if saved is not None:
            self.adversary.load_state_dict(saved["model"])
            if saved.get("optimizer") is not None:
                self.adversary_optimizer.load_state_dict(saved["optimizer"])
            self.adversary_state = None
        n = sum(p.numel() for p in self.adversary.parameters())
        self._info(
            f"adversarial term x{a.adversarial:g}: {len(self.adversary.subs)} discriminators, {n / 1e3:.0f}k weights"
        )
        self.adversary_wrapped: nn.Module = self.adversary
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.adversary_wrapped = DistributedDataParallel(self.adversary, device_ids=ids)

    def _loss_config(self) -> LossConfig:
        """The extra terms of the ae/e2e training loss."""
        a = self.args
        return LossConfig(
            level_weight=a.level_weight,
            extra_ffts=tuple(int(t) for t in _csv(a.extra_fft) or ()),
            low_band_weight=a.low_band_weight,
            low_band_hz=a.low_band_hz,
            high_band_weight=a.high_band_weight,
            high_band_hz=a.high_band_hz,
            mel_weight=a.mel_weight,
            mel_bands=a.mel_bands,
            phase_weight=a.phase_weight,
            phase_fft=a.phase_fft,
            convergence_weight=a.convergence_weight,
            sample_rate=self.model.config.sample_rate,
        )

    def run_stage(self, stage: str) -> dict[str, float]:
        args = self.args
        module, params = self.stage_parameters(stage)
        optimizer = torch.optim.Adam(self._param_groups(params), lr=args.lr)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
            self.optimizer_state = None
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped: nn.Module = DistributedDataParallel(module, device_ids=ids)
        else:
            wrapped = module
        per_rank = max(1, args.batch_size // self.dist.world_size)
        train = self.splits["train"]
        sampler = ResumableSampler(train, self.dist.world_size, self.dist.rank, shuffle=True, seed=args.seed)
        loader_kw = {"num_workers": args.num_workers, "pin_memory": self.device.type == "cuda"}
        emb = self.model.generator.instrument_embedding
        n_epochs = self.epochs[stage]
        metrics: dict[str, float] = {}
        self._info(f"stage {stage}: {n_epochs} epochs, batch {per_rank} x {self.dist.world_size}")
        while self.state["epoch"] < n_epochs and not self._stage_done():
            epoch = self.state["epoch"]
            sampler.set_epoch(epoch)
            sampler.set_start(self.state["batch"] * per_rank)
            loader = DataLoader(train, batch_size=per_rank, sampler=sampler, **loader_kw)
            module.train()
            bar = tqdm(
                loader,
                desc=f"{stage} epoch {epoch + 1}/{n_epochs}",
                disable=not self.dist.is_main or args.no_progress,
                leave=False,
                dynamic_ncols=True,
            )
            running, n_running = 0.0, 0
            epoch_total, epoch_n = 0.0, 0
            for wav, inst, pitch, vel in bar:
                wav, inst, pitch, vel = (t.to(self.device) for t in (wav, inst, pitch, vel))
                wav = wav * self.gain
                self._set_lr(optimizer)
                optimizer.zero_grad(set_to_none=True)
                loss = self.train_step(stage, wrapped, wav, inst, pitch, vel)
                if self.frozen_rows and emb.weight.grad is not None:
                    emb.weight.grad[: self.frozen_rows] = 0
                optimizer.step()
                self.state["step"] += 1
                self.state["stage_step"] += 1
                self.state["batch"] += 1
                running += loss
                n_running += 1
                epoch_total += loss
                epoch_n += 1
                bar.set_postfix(loss=f"{loss:.4f}")
                if self.state["step"] % args.log_every == 0:
                    extra = {k: v / n_running for k, v in self.adversary_log.items()}
                    self.metric({LOSS_FIELD: running / n_running, "lr": optimizer.param_groups[0]["lr"], **extra})
                    running, n_running = 0.0, 0
                    self.adversary_log = {}
                if args.eval_every and self.state["stage_step"] % args.eval_every == 0:
                    metrics = self.evaluate_and_save(stage, optimizer)
                elif args.checkpoint_every and self.state["step"] % args.checkpoint_every == 0:
                    self.save(CHECKPOINT_FILE, optimizer)
                    barrier(self.dist)
                if self._stage_done():
                    break
            done = self._stage_done()
            if not done:
                self.state["epoch"] += 1
                self.state["batch"] = 0
                if epoch_n:  # whole-epoch average (logged only for complete epochs)
                    self.metric({"epoch_train_loss": epoch_total / epoch_n})
            if not args.eval_every:
                metrics = self.evaluate_and_save(stage, optimizer)
            else:
                self.save(CHECKPOINT_FILE, optimizer)
                barrier(self.dist)
        if args.eval_every and self.state["stage_step"] % args.eval_every:  # the stage's final evaluation
            metrics = self.evaluate_and_save(stage, optimizer)
        return metrics

    def _param_groups(self, params: list[nn.Parameter]) -> list[dict[str, Any]]:
        """One group at --lr; the signed synthesis slopes (which start at 0) in their own at --slope-lr, a harmonic
        bank's layers (new on a trained decoder) at --bank-lr."""
        special: list[tuple[list[nn.Parameter], float]] = []
        slope = self.model.decoder.last_slope()
        if slope is not None:
            special.append(([slope], self.args.slope_lr))
        bank = self.model.decoder.bank
        if bank is not None and self.args.bank_lr is not None:
            special.append((list(bank.parameters()), self.args.bank_lr))
        groups, taken = [], set()
        for group, lr in special:
            group = [p for p in group if any(p is q for q in params)]
            if group:
                groups.append({"params": group, "lr": lr, "lr_scale": lr / self.args.lr})
                taken.update(id(p) for p in group)
        rest = [p for p in params if id(p) not in taken]
        return [{"params": rest, "lr_scale": 1.0}, *groups]

    def _set_lr(self, optimizer: torch.optim.Optimizer) -> None:
        """Linear decay from --lr to --lr-final over the stage's --max-steps (constant without them); each group at
        its ``lr_scale`` of it."""
        args = self.args
        if args.lr_final is None or not args.max_steps:
            return
        frac = min(1.0, self.state["stage_step"] / args.max_steps)
        for group in optimizer.param_groups:
            group["lr"] = (args.lr + (args.lr_final - args.lr) * frac) * group.get("lr_scale", 1.0)

    def _stage_done(self) -> bool:
        m = self.args.max_steps
        return m is not None and self.state["stage_step"] >= m

    def evaluate_and_save(self, stage: str, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """Evaluate, log, write checkpoint.pt (and best.pt when the valid loss improved)."""
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            metrics = self.evaluate(stage)
            self.metric(metrics)
            key = "valid_spectral_l1" if "valid_spectral_l1" in metrics else "train_spectral_l1"
            improved = metrics.get(key, math.inf) < self.best
            if improved:
                self.best = metrics[key]
            self.save(CHECKPOINT_FILE, optimizer)
            if improved:
                self.save("best.pt", optimizer)
            self._info(
                f"{stage} epoch {self.state['epoch']} step {self.state['step']}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            )
        barrier(self.dist)
        return metrics

    def train_step(
        self,
        stage: str,
        module: nn.Module,
        wav: torch.Tensor,
        inst: torch.Tensor,
        pitch: torch.Tensor,
        vel: torch.Tensor,
    ) -> float:
        """Forward + backward for one batch (gradients accumulate in the parameters); returns the loss."""
        offsets = None
        if self.crop is not None and stage != "lstm":
            gen = torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.state["step"] * 101 + self.dist.rank)
            if self.args.crop_floor_db > 0:
                offsets = self.crop.sounding_offsets(wav, self.args.crop_floor_db, gen).to(self.device)
            else:
                offsets = self.crop.random_offsets(len(wav), gen).to(self.device)
        if stage == "ae":
            loss = module(wav, offsets, pitch)
            loss.backward()
            return float(loss.detach())
        if stage == "e2e" and self.adversary is not None:
            return self.adversarial_step(module, wav, inst, pitch, vel, offsets)
        if stage == "e2e":
            loss = module(inst, pitch, vel, wav, offsets)
            loss.backward()
            return float(loss.detach())
        with torch.no_grad():
            self.encoder.eval()
            target = self.encoder(wav)
        chunks = tbptt_chunks(target.shape[2], TBPTT)
        state = None
        total = 0.0
        for i, (start, length) in enumerate(chunks):
            sync = not self.dist.enabled or i == len(chunks) - 1
            ctx = module.no_sync() if not sync else _nullcontext()
            with ctx:
                pred, state = module(inst, pitch, vel, start, length, state)
                loss = torch.nn.functional.mse_loss(pred, target[:, :, start : start + length])
                (loss * length / target.shape[2]).backward()
            state = tuple(s.detach() for s in state)
            total += float(loss.detach()) * length
        return total / target.shape[2]

    def adversarial_step(
        self,
        module: nn.Module,
        wav: torch.Tensor,
        inst: torch.Tensor,
        pitch: torch.Tensor,
        vel: torch.Tensor,
        offsets: torch.Tensor,
    ) -> float:
        """One discriminator step on this batch's crops, then the model's gradients from the spectral loss plus the
        adversarial term (after ``--adversarial-after`` stage steps). Returns the spectral loss (``train_loss``
        stays comparable with runs without the term); the GAN's losses go to the metrics."""
        a = self.args
        spectral, out, target = module(inst, pitch, vel, wav, offsets, with_audio=True)
        fake, real = normalise_pair(out, target)
        for p in self.adversary.parameters():
            p.requires_grad_(True)
        judged_real = self.adversary_wrapped(real)
        d_loss = discriminator_loss(judged_real, self.adversary_wrapped(fake.detach()))
        self.adversary_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.adversary_optimizer.step()
        log = {"disc_loss": float(d_loss.detach())}
        loss = spectral
        if self.state["stage_step"] >= a.adversarial_after:
            for p in self.adversary.parameters():
                p.requires_grad_(False)
            real_features = [(r.detach(), [f.detach() for f in feats]) for r, feats in judged_real]
            gan, matching = generator_losses(real_features, self.adversary(fake))
            loss = spectral + a.adversarial * (gan + a.feature_weight * matching)
            log.update(gen_gan_loss=float(gan.detach()), feature_loss=float(matching.detach()))
        loss.backward()
        for k, v in log.items():
            self.adversary_log[k] = self.adversary_log.get(k, 0.0) + v
        return float(spectral.detach())


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _train(args: argparse.Namespace, device: torch.device, dist: DistInfo) -> dict[str, float]:
    trainer = Trainer(args, device, dist)
    try:
        return trainer.run()
    finally:
        if trainer.writer is not None:
            trainer.writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A near-silent model (early training) computes in denormal floats: ~3x slower on the CPU, same losses.
    torch.set_flush_denormal(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.stage == "embed":
        return embed_stage(args)
    if args.crop_steps and args.crop_steps < 0:
        raise SystemExit("sing-train: --crop-steps must be positive")
    if sum(x is not None and x is not False for x in (args.resume or None, args.init, args.start_from)) > 1:
        raise SystemExit("sing-train: --resume, --init and --from exclude each other (pick one)")

    def train(device: torch.device, dist: DistInfo, resume: bool) -> None:
        args.resume = resume
        _train(args, device, dist)

    run_training("sing-train", args.device, args.out, train, args.resume)
    return 0


def embed_stage(args: argparse.Namespace) -> int:
    """``--stage embed``: fit new instruments' embedding rows; write ``<out>/checkpoint.pt`` and a report."""
    if args.pack is None or args.init is None:
        raise SystemExit("sing-train: --stage embed needs --pack FOLDER (your samples) and --init CHECKPOINT")
    torch.set_num_threads(args.threads or min(2, torch.get_num_threads()))
    config = FitConfig(
        starts=args.embed_starts,
        steps=args.embed_steps,
        lr=args.embed_lr,
        crop_hops=max(1, round(args.embed_seconds * 16000 / 256)),
        seed=args.seed,
    )
    out = args.out / CHECKPOINT_FILE
    bar = tqdm(total=1000, disable=args.no_progress, desc="embed", dynamic_ncols=True)

    def progress(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message[-60:], refresh=True)

    try:
        report = fit_pack(args.init, args.pack, out, instrument=args.name, config=config, progress=progress)
    except (ValueError, CheckpointError) as exc:
        raise SystemExit(f"sing-train: {exc}") from exc
    except (FitCancelled, KeyboardInterrupt) as exc:
        raise SystemExit(f"sing-train: fit stopped; {out} was not written") from exc
    finally:
        bar.close()
    for item in report["skipped"]:
        log.warning("skipped %s: %s", item["file"], item["reason"])
    for fit in report["instruments"]:
        estimated = [n["file"] for n in fit["notes"] if n["pitch_estimated"]]
        log.info(
            "%s: %d notes%s, nearest %s (loss %.3f) -> fitted loss %.3f in %.1f s",
            fit["instrument"],
            len(fit["notes"]),
            f" ({len(estimated)} with estimated pitches)" if estimated else "",
            fit["nearest"],
            fit["nearest_loss"],
            fit["loss"],
            fit["seconds"],
        )
    log.info("wrote %s (%.1f s): play it with sing-render/sing-app --checkpoint %s", out, report["seconds"], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
