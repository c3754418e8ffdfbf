"""wavernn-evaluate on a tiny corpus: held-out NLL and weight counts for a sparse and a dense voice; subscale voices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from synth_core.wavernn import WaveRNN, WaveRNNConfig
from synth_core.wavernn.checkpoint import save_voice
from synth_core.wavernn.features import extract_features, extract_presets, fundamental_phase
from synth_core.wavernn.subscale import SubscaleWaveRNN
from training.pruning import prune_to
from training.speech_data import Entry, synthetic_clips, write_manifest
from training.wavernn_evaluate import heldout_nll, main, resynthesise


def test_evaluate_reports_nll_and_nonzero_weights(tmp_path):
    corpus = tmp_path / "speech"
    corpus.mkdir()
    clips = synthetic_clips(3, seconds=0.5)
    entries = []
    for i, clip in enumerate(clips):
        sf.write(corpus / f"c{i}.wav", clip, 16000)
        entries.append(Entry(f"c{i}.wav", "test" if i else "train", 0.5))
    write_manifest(corpus, entries)
    presets = extract_presets([extract_features(c) for c in clips], n=2)
    torch.manual_seed(0)
    cfg = WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=16)
    sparse, dense = WaveRNN(cfg), WaveRNN(cfg)
    prune_to(sparse, 0.25)
    save_voice(tmp_path / "sparse.pt", sparse, presets)
    save_voice(tmp_path / "dense.pt", dense, presets)
    out = tmp_path / "eval"
    args = [str(tmp_path / "sparse.pt"), str(tmp_path / "dense.pt"), "--data", str(corpus), "--no-resynth"]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["utterances"] == 2
    s, d = report["models"]
    assert 0 < s["nll_nats"] < 12 and 0 < d["nll_nats"] < 12  # near uniform (2 ln 256 = 11.1) untrained
    assert s["recurrent_nonzero"] < 0.3 * d["recurrent_nonzero"] and s["sparsity"] > 0.7
    assert "| 32 |" in (out / "metrics.md").read_text()
    assert main([str(tmp_path / "missing.pt"), "--data", str(corpus), "--no-resynth", "--out", str(out)]) == 2


def test_subscale_voice_is_scored_whole_and_resynthesised_16_samples_per_step():
    torch.manual_seed(0)
    model = SubscaleWaveRNN(WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=16)).eval()
    clip = synthetic_clips(1, seconds=0.5)[0]  # 50 frames: longer than a 20-frame chunk
    n = len(clip) // 160
    feats = torch.from_numpy(extract_features(clip[: n * 160]))[None]
    phase = torch.from_numpy(fundamental_phase(clip[: n * 160], feats[0].numpy()))[None]
    wav = torch.from_numpy(clip[: n * 160].astype(np.float32))[None]
    with torch.no_grad():
        whole = float(model.loss(feats, wav, None, phase)[0])
        assert heldout_nll(model, [clip], chunk_frames=20) == pytest.approx(whole, rel=1e-5)
    y = resynthesise(model, clip, "auto", seed=1)
    assert y.shape == clip.shape and np.isfinite(y).all() and np.abs(y[: n * 160]).max() > 0
