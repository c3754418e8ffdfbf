"""SING training: crop geometry, each stage learning, resume, fine-tuning, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from synth_core.dsp import midi_to_hz
from synth_core.sing import SING, Encoder, load_checkpoint
from tests.conftest import tiny_config
from training.sing_steps import CropGeometry, EndToEndStage
from training.sing_train import main

SR = 16000
TINY = ["--lstm-hidden", "32", "--lstm-layers", "2", "--decoder-channels", "48", "--threads", "1", "--no-progress"]


def write_pack(folder, instruments=(("sine", 1), ("square", 7)), pitches=(48, 55, 60, 67)):
    """A few harmonic "instruments" (odd harmonics up to ``h``), one note per pitch."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(2 * SR) / SR
    for name, h in instruments:
        for pitch in pitches:
            f = midi_to_hz(pitch)
            x = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, h + 1, 2)) * 0.4 * np.exp(-2 * t)
            sf.write(folder / f"{name}_{pitch}_100.wav", x.astype(np.float32), SR)
    return folder


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return write_pack(tmp_path_factory.mktemp("data") / "pack")


def train_losses(out):
    records = map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
    return [r["train_loss"] for r in records if "train_loss" in r]


def run(pack, out, *extra):
    base = ["--pack", str(pack), "--out", str(out), "--p-valid", "0", "--p-test", "0", "--log-every", "1"]
    assert main([*base, "--eval-notes", "2", *TINY, *extra]) == 0


@pytest.mark.parametrize("geometry", [{}, {"context": 5, "frame": 512, "hop": 128}], ids=["default", "small-frames"])
def test_crop_decode_equals_slice_of_full_decode(geometry):
    torch.manual_seed(0)
    config = tiny_config(**geometry)
    model = SING(config).eval()
    encoder = Encoder(config).eval()
    crop = CropGeometry(config, 8)
    if not geometry:
        assert crop.frame_shift == 2 and crop.lead == 768 and crop.n_latents == 19  # frame j -> (j - 5) * 256
    wav = torch.randn(3, config.note_samples) * 0.1
    offsets = torch.tensor([0, 37, crop.max_offset])
    with torch.no_grad():
        latents = encoder(wav)
        full = model.decode(latents)
        part = crop.decode(model.decoder, crop.latent_windows(latents, offsets))
        enc_part = crop.encode(encoder, wav, offsets)
    for b, off in enumerate(offsets.tolist()):
        s = off * config.hop
        torch.testing.assert_close(part[b], full[b, s : s + crop.samples], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(crop.target(wav, offsets)[b], wav[b, s : s + crop.samples])
        first = crop.first_frame(off)
        torch.testing.assert_close(enc_part[b], latents[b, :, first : first + crop.n_latents], atol=1e-5, rtol=1e-4)
    # the end-to-end stage (LSTM run only as far as needed) sees exactly the same crop
    with torch.no_grad():
        stage = EndToEndStage(model, crop)
        inst, pitch, vel = torch.tensor([0, 1, 2]), torch.tensor([60, 40, 80]), torch.tensor([100, 64, 30])
        whole = model(inst, pitch, vel)
        cropped = stage(inst, pitch, vel, whole, offsets)
    assert float(cropped) < 1e-5


def test_crop_rejects_bad_sizes():
    with pytest.raises(ValueError):
        CropGeometry(tiny_config(), 2)  # shorter than one STFT frame
    with pytest.raises(ValueError):
        CropGeometry(tiny_config(), 10_000)


@pytest.mark.parametrize("stage", ["ae", "lstm", "e2e"])
def test_each_stage_loss_goes_down(pack, tmp_path, stage):
    steps = ["--max-steps", "25", "--epochs", "100", "--batch-size", "8", "--lr", "2e-3", "--checkpoint-every", "0"]
    if stage == "lstm":
        run(pack, tmp_path / "ae", "--stage", "ae", "--max-steps", "3", "--batch-size", "8")
        steps += ["--from", str(tmp_path / "ae" / "checkpoint.pt")]
    if stage == "e2e":
        steps += ["--crop-steps", "16"]
    run(pack, tmp_path / "run", "--stage", stage, *steps)
    losses = train_losses(tmp_path / "run")
    assert len(losses) >= 25
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3]), losses


def test_resume_continues_with_same_step_count(pack, tmp_path):
    common = ["--stage", "e2e", "--batch-size", "2", "--crop-steps", "8", "--checkpoint-every", "1"]
    run(pack, tmp_path / "straight", *common, "--max-steps", "5")
    run(pack, tmp_path / "split", *common, "--max-steps", "3")  # stops mid-epoch (4 batches per epoch)
    first = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert first.training["step"] == 3 and first.training["batch"] == 3 and first.training["epoch"] == 0
    run(pack, tmp_path / "split", *common, "--max-steps", "5", "--resume")
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert a.training["step"] == b.training["step"] == 5
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5, msg=name)


def test_finetune_adds_instruments_and_freezes_old_rows(pack, tmp_path):
    run(pack, tmp_path / "base", "--stage", "e2e", "--max-steps", "2", "--batch-size", "4", "--crop-steps", "8")
    base = load_checkpoint(tmp_path / "base" / "checkpoint.pt")
    new_pack = write_pack(tmp_path / "new", instruments=(("sine", 1), ("saw", 9)), pitches=(50, 62))
    run(
        new_pack,
        tmp_path / "ft",
        "--stage",
        "e2e",
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--crop-steps",
        "8",
        "--lr",
        "1e-2",
        "--init",
        str(tmp_path / "base" / "checkpoint.pt"),
    )
    ft = load_checkpoint(tmp_path / "ft" / "checkpoint.pt")
    assert [i.name for i in ft.instruments] == ["sine", "square", "saw"]
    assert torch.equal(ft.model.instrument_table[:2], base.model.instrument_table)
    start = base.model.instrument_table.mean(0)
    assert not torch.allclose(ft.model.instrument_table[2], start)  # the new row learned
    assert ft.training["frozen_rows"] == 2


def test_cli_smoke_all_stages(pack, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "--pack",
                str(pack),
                "--out",
                str(out),
                "--stage",
                "all",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--max-steps",
                "2",
                "--crop-steps",
                "8",
                "--eval-notes",
                "2",
                *TINY,
            ]
        )
        == 0
    )
    for name in ("checkpoint.pt", "best.pt", "stage_ae.pt", "stage_lstm.pt", "stage_e2e.pt", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck.training["stage"] == "e2e" and ck.training["step"] == 6 and ck.encoder is not None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = {r["stage"]: r for r in records if "train_spectral_l1" in r or "train_latent_mse" in r}
    assert set(evals) == {"ae", "lstm", "e2e"}  # every stage evaluated, on both splits
    for stage, metric in (("ae", "spectral_l1"), ("lstm", "latent_mse"), ("e2e", "spectral_l1")):
        assert f"train_{metric}" in evals[stage] and f"valid_{metric}" in evals[stage], stage
    with pytest.raises(SystemExit):
        main(["--pack", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), *TINY])


def test_torchrun_two_ranks_gloo(pack, tmp_path):
    """DDP on the CPU: two ranks, gloo, DistributedSampler; only rank 0 writes."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "training.sing_train",
        "--pack",
        str(pack),
        "--out",
        str(out),
        "--stage",
        "e2e",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--crop-steps",
        "8",
        "--eval-notes",
        "2",
        *TINY,
    ]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = load_checkpoint(out / "checkpoint.pt")
    n_train = int(re.search(r"split \{'train': (\d+)", proc.stderr).group(1))
    per_rank = -(-n_train // 2)  # DistributedSampler pads each rank to ceil(n / 2) notes
    assert n_train > 2 and ck.training["step"] == -(-per_rank // 2)  # one sharded epoch, 2 notes per rank-step
    assert proc.stderr.count("stage e2e:") == 1  # rank 1 stays quiet


def test_signed_synthesis_switches_a_trained_model_and_its_slopes_learn(pack, tmp_path):
    run(pack, tmp_path / "base", "--stage", "e2e", "--max-steps", "2", "--batch-size", "4", "--crop-steps", "8")
    common = ["--stage", "e2e", "--batch-size", "4", "--crop-steps", "8", "--signed-synthesis"]
    run(pack, tmp_path / "signed", *common, "--max-steps", "3", "--init", str(tmp_path / "base" / "checkpoint.pt"))
    ck = load_checkpoint(tmp_path / "signed" / "checkpoint.pt")
    assert ck.config.signed_synthesis
    slope = ck.model.decoder.last_slope().detach()
    assert 0 < float(slope.abs().max()) < 0.1  # from 0, at --slope-lr 3e-3 for 3 steps
    groups = ck.training["optimizer"]["param_groups"]
    assert [g["lr_scale"] for g in groups] == [1.0, pytest.approx(3e-3 / 3e-4)]


def test_an_nsynth_folder_given_as_a_sample_pack_is_refused_with_the_right_flag(pack, tmp_path):
    """Read as WAVs, an NSynth-format pack would train as one instrument named "audio" with estimated pitches."""
    nsynth = tmp_path / "nsynth"
    (nsynth / "audio").mkdir(parents=True)
    (nsynth / "examples.json").write_text("{}")
    with pytest.raises(SystemExit, match="--data"):
        main(["--pack", str(nsynth), "--out", str(tmp_path / "run"), *TINY])


def test_an_autoencoder_with_a_harmonic_bank_learns(pack, tmp_path):
    """The bank alone (no frame atoms), from scratch: its loss falls well below the start and the checkpoint plays
    the same hop by hop as whole."""
    from synth_core.sing.streaming import stream_note

    bank = ["--harmonics", "16", "--noise-bands", "8", "--no-atoms", "--bank-start-db", "-40"]
    steps = ["--max-steps", "30", "--epochs", "100", "--batch-size", "8", "--lr", "2e-3", "--checkpoint-every", "0"]
    run(pack, tmp_path / "ae", "--stage", "ae", "--crop-steps", "16", "--convergence-weight", "1", *bank, *steps)
    losses = train_losses(tmp_path / "ae")
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses
    model = load_checkpoint(tmp_path / "ae" / "checkpoint.pt").model.eval()
    assert (model.config.harmonics, model.config.atoms) == (16, False)
    vec = model.instrument_table[0]
    with torch.no_grad():
        whole = model(None, torch.tensor([55]), torch.tensor([100.0]), instrument_vec=vec[None], n_samples=4096)[0]
    assert torch.allclose(stream_note(model, vec, 55, 100.0, 4096), whole, atol=1e-4 * float(whole.abs().max()))
