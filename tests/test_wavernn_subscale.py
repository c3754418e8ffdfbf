"""Subscale WaveRNN: folding, the availability mask, and teacher forcing == generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth_core.wavernn import WaveRNNConfig, join_coarse_fine, split_coarse_fine
from synth_core.wavernn.subscale import SubscaleWaveRNN, context_mask, fold, generation_order, unfold

S = 16


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed=0, **kw) -> SubscaleWaveRNN:
    torch.manual_seed(seed)
    m = SubscaleWaveRNN(WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=16, hop=32), **kw).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # peaky softmaxes, strong context weights
        m.apply_masks()
    return m


def test_fold_unfold_is_exact():
    x = torch.randint(-32768, 32768, (3, 160)).float() / 32768
    X = fold(x)
    assert X.shape == (3, 10, 16)
    assert torch.equal(X[1, 4, 7], x[1, 16 * 4 + 7])
    assert torch.equal(unfold(X), x)


def test_availability_mask_is_exactly_what_was_generated_before():
    past, future, L = 2, 3, 40
    mask = context_mask(S, past, future).numpy()  # [k, dj, k']
    order = generation_order(L, S)
    for j in range(L):
        for k in range(S):
            for r, dj in enumerate(range(-past, future + 1)):
                for k2 in range(S):
                    if not 0 <= j + dj < L:
                        continue
                    before = order[j + dj, k2] < order[j, k]  # generated at an earlier step
                    assert mask[k, r, k2] == before
    assert not mask[np.arange(S), past, np.arange(S)].any()  # never itself
    assert mask[15, past, :15].all()  # the last sub-sequence sees x[n-15 .. n-1]
    assert mask[15, past + 1, :14].all()  # ... and future samples x[n+1 .. n+14]


def test_forward_only_sees_samples_generated_before():
    m = tiny()
    feats = torch.randn(1, 4, 23)
    audio = torch.rand(1, 128) * 2 - 1
    order = torch.from_numpy(unfold(torch.from_numpy(generation_order(8, S))).numpy())  # step of each sample
    with torch.no_grad():
        lc, lf, _ = m(feats, audio)
        for n in (5, 37, 64, 100):
            c, f = split_coarse_fine(audio)
            c[0, n] = (c[0, n] + 100) % 256
            lc2, lf2, _ = m(feats, join_coarse_fine(c, f))
            changed = ((lc2 - lc).abs().amax(-1) > 0) | ((lf2 - lf).abs().amax(-1) > 0)
            earlier_or_same = order <= order[n]
            allowed = torch.zeros_like(changed)
            allowed[0, n] = True  # its own fine half sees c_n
            assert not (changed & earlier_or_same & ~allowed).any()
            assert changed[0, order > order[n]].any()  # it does reach later samples


def test_greedy_generation_equals_teacher_forced_argmax():
    m = tiny(context_past=1, context_future=2)
    feats = torch.randn(2, 3, 23)
    audio = m.generate(feats, temperature=0)
    assert audio.shape == (2, 96) and np.isfinite(audio).all()
    with torch.no_grad():
        lc, lf, _ = m(feats, torch.from_numpy(audio))
    c, f = split_coarse_fine(torch.from_numpy(audio))
    assert torch.equal(lc.argmax(-1), c) and torch.equal(lf.argmax(-1), f)
    sampled = m.generate(feats, seed=3)
    assert np.array_equal(sampled, m.generate(feats, seed=3)) and not np.array_equal(sampled, audio)


def test_subscale_training_step_lowers_the_loss():
    m = tiny()
    m.train()
    feats = torch.randn(2, 2, 23)
    t = torch.arange(64) / 16000
    audio = (0.5 * torch.sin(2 * torch.pi * 440 * t)).repeat(2, 1)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    first = None
    for _ in range(15):
        loss, _ = m.loss(feats, audio)
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.apply_masks()
        first = first if first is not None else loss.item()
    assert loss.item() < first
