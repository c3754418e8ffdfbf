"""WaveRNN training: pruning schedule and block shape, learning a sine at the requested pitch,
the wavernn-train CLI (checkpoint, resume, subscale), voice checkpoints (corrupt files, fp16 export)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synth_core.dsp import estimate_f0, hz_to_midi
from synth_core.wavernn import WaveRNN, WaveRNNConfig, excitation
from synth_core.wavernn.checkpoint import CheckpointError, export_voice, load_voice, save_voice
from synth_core.wavernn.features import VoicePreset
from synth_core.wavernn.sampler_factory import make_sampler
from synth_core.wavernn.subscale import SubscaleWaveRNN
from tests.conftest import sine_frames, train_on_sines
from training import wavernn_train
from training.pruning import Pruner, block_mask, density_at, prune_to

HOP = 160


def tiny(block=(4, 4)) -> WaveRNN:
    torch.manual_seed(0)
    return WaveRNN(WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=32, block=block))


def test_schedule_is_monotone_cubic_and_reaches_the_target():
    d = [density_at(s, 0.9, 100, 1100) for s in range(0, 1500, 10)]
    assert d[0] == 1.0 and d[-1] == pytest.approx(0.1)
    assert all(b <= a for a, b in zip(d, d[1:], strict=False))
    assert density_at(600, 0.9, 100, 1100) == pytest.approx(1 - 0.9 * (1 - 0.5**3))


@pytest.mark.parametrize("block", [(4, 4), (16, 1)])
def test_pruning_reaches_the_target_in_whole_blocks(block):
    m = tiny(block)
    pruner = Pruner(target=0.75, start=0, end=40, every=10, block=block)
    for step in range(1, 50):
        pruner.update(m, step)
    for name, w in m.prunable().items():
        br, bc = block
        n_blocks = w.numel() / (br * bc)
        assert abs(m.sparsity()[name] - 0.75) <= 1 / n_blocks + 1e-6, name
        blocks = (w != 0).reshape(w.shape[0] // br, br, w.shape[1] // bc, bc).sum((1, 3))
        assert set(blocks.unique().tolist()) <= {0, br * bc}  # zeros form whole blocks
    # each gate of the recurrent matrix keeps the same density
    for gate in m.gru.weight_hh_l0.chunk(3, 0):
        assert float((gate == 0).float().mean()) == pytest.approx(0.75, abs=0.02)


def test_block_mask_keeps_the_strongest_blocks():
    w = torch.zeros(8, 8)
    w[:4, :4] = 5.0
    w[4:, 4:] = 0.1
    mask = block_mask(w, 0.25, (4, 4))
    assert mask[:4, :4].all() and mask.sum() == 16


def test_tiny_model_learns_a_sine_at_the_requested_pitch():
    torch.set_num_threads(1)
    m = tiny()
    losses = train_on_sines(m, 100)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 1.5
    m.eval()
    midi = 57.0
    f = sine_frames(torch.tensor([midi]), 8)
    with torch.no_grad():
        gates, exc = m.cond_gates(f), excitation(f, HOP, 16000)[0]
        h, c, fine = torch.zeros(1, 32), torch.full((1,), 128), torch.zeros(1, dtype=torch.long)
        out = []
        for t in range(8 * HOP):
            c, fine, h = m.step(h, c, fine, gates[:, t // HOP], exc[:, t], torch.rand(1, 2), temperature=0)
            out.append(float(c * 256 + fine - 32768) / 32768)
    y = np.asarray(out[2 * HOP :])
    assert y.std() > 0.05
    assert abs(hz_to_midi(estimate_f0(y, 16000, fmin=60, fmax=1000)) - midi) < 1.0


def test_cli_trains_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    common = (
        f"--synthetic 6 --out {out} --hidden 32 --cond-channels 8 --head-hidden 16 --batch-size 2 --seq-frames 2 "
        "--valid-crops 4 --threads 1 --no-progress --sparsity 0.5 --prune-start 2 --prune-end 6 --prune-every 2 "
        "--checkpoint-every 4 --valid-every 4 --log-every 2 --presets 2"
    ).split()
    assert wavernn_train.main([*common, "--steps", "8", "--lr-decay", "0.5"]) == 0
    ck = load_voice(out / "checkpoint.pt")
    assert ck.training["step"] == 8 and len(ck.presets) == 2
    assert all(abs(s - 0.5) < 0.1 for s in ck.model.sparsity().values())
    assert (out / "best.pt").is_file()
    assert wavernn_train.main([*common, "--steps", "12", "--resume"]) == 0
    assert load_voice(out / "checkpoint.pt").training["step"] == 12
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_nll" in r] == [2, 4, 6, 8, 10, 12]
    assert any("valid_nll" in r for r in records)
    lr_at_12 = [r["lr"] for r in records if r["step"] == 12 and "lr" in r][0]
    assert lr_at_12 == pytest.approx(1e-3 / (1 + 0.5 * 11))  # the resumed run keeps the checkpoint's lr decay


def test_voice_checkpoints_roundtrip_export_and_corruption(tmp_path):
    m = tiny()
    prune_to(m, 0.25)
    presets = [VoicePreset("dark 1", np.arange(20, dtype=np.float32) / 100, 55.0, -20.0)]
    save_voice(tmp_path / "v.pt", m, presets, training={"step": 3})
    ck = load_voice(tmp_path / "v.pt")
    assert ck.training["step"] == 3 and ck.presets[0].name == "dark 1"
    assert torch.equal(ck.model.gru.weight_hh_l0, m.gru.weight_hh_l0)
    export_voice(tmp_path / "v.pt", tmp_path / "e.pt")
    e = load_voice(tmp_path / "e.pt")
    assert e.training is None
    assert torch.equal(e.model.gru.weight_hh_l0 == 0, m.gru.weight_hh_l0 == 0)  # zeros stay zeros in fp16
    data = (tmp_path / "v.pt").read_bytes()
    (tmp_path / "bad.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_voice(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_voice(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError):
        load_voice(tmp_path / "missing.pt")
    torch.save({"format": "neurosynth-sing"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError):
        load_voice(tmp_path / "other.pt")


def test_cli_trains_a_subscale_voice_that_saves_loads_and_exports(tmp_path):
    out = tmp_path / "sub"
    common = (
        "--synthetic 6 --hidden 32 --cond-channels 8 --head-hidden 16 --batch-size 2 --seq-frames 2 "
        "--valid-crops 2 --threads 1 --no-progress --sparsity 0.5 --prune-start 1 --prune-end 3 --prune-every 1 "
        "--valid-every 4 --presets 2"
    ).split()
    assert wavernn_train.main([*common, "--out", str(out), "--subscale", "16", "--steps", "4"]) == 0
    ck = load_voice(out / "checkpoint.pt")
    assert isinstance(ck.model, SubscaleWaveRNN) and ck.model.subscale == 16
    assert ck.model.mask_ih.shape[1] == ck.model.gru.weight_ih_l0.shape[1]  # context columns came back
    assert abs(ck.model.sparsity()["gru.weight_hh_l0"] - 0.5) < 0.1
    export_voice(out / "checkpoint.pt", tmp_path / "e.pt")
    e = load_voice(tmp_path / "e.pt").model
    assert isinstance(e, SubscaleWaveRNN) and (e.context_past, e.context_future) == (2, 2)
    feats = torch.randn(1, 2, e.config.n_features)
    audio = torch.rand(1, 2 * HOP) - 0.5
    with torch.no_grad():
        assert float(e.loss(feats, audio)[0]) == pytest.approx(float(ck.model.loss(feats, audio)[0]), abs=1e-2)
    assert make_sampler(e, device="cpu").name == "subscale torch cpu"  # playable: 16 samples per GRU step
    with pytest.raises(SystemExit, match="subscale"):
        wavernn_train.main([*common, "--out", str(tmp_path / "s1"), "--subscale", "1", "--steps", "1"])
    with pytest.raises(SystemExit, match="multiple"):  # the 160-sample hop holds 16, 10, 8 ... sub-sequences
        wavernn_train.main([*common, "--out", str(tmp_path / "s7"), "--subscale", "7", "--steps", "1"])
