"""Subscale WaveRNN: folding, the availability mask, teacher forcing == generation, the streaming sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth_core.dsp import estimate_f0, hz_to_midi
from synth_core.wavernn import WaveRNNConfig, join_coarse_fine, split_coarse_fine
from synth_core.wavernn.sampler_factory import make_sampler
from synth_core.wavernn.subscale import SubscaleWaveRNN, context_mask, fold, generation_order, unfold
from synth_core.wavernn.subscale_sampling import SubscaleSampler
from tests.conftest import sine_frames, train_on_sines

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


# -- streaming sampler ----------------------------------------------------------------------------


@pytest.mark.parametrize("past,future", [(2, 2), (1, 0)])
def test_streaming_sampler_is_the_offline_generation_delayed(past, future):
    m = tiny(context_past=past, context_future=future)
    sampler = make_sampler(m, device="cpu")
    assert isinstance(sampler, SubscaleSampler) and sampler.delay == (S - 1) * S
    feats = np.random.default_rng(0).normal(0, 0.5, (2, 20, 23)).astype(np.float32)
    y, _ = sampler.generate(feats, temperature=0)
    assert y.shape == (2, 20 * 32) and not y[:, : sampler.delay].any()
    offline = m.generate(feats, temperature=0)
    n = y.shape[1] - sampler.delay
    assert np.array_equal(y[:, sampler.delay :], offline[:, :n])  # same samples, 240 later
    assert np.abs(offline[:, :n]).max() > 0.1


def test_streaming_sampler_gives_the_same_samples_however_a_stream_is_split():
    m = tiny()
    sampler = make_sampler(m, device="cpu")
    feats = np.random.default_rng(1).normal(0, 0.5, (2, 12, 23)).astype(np.float32)
    whole, end = sampler.generate(feats, seed=5)
    state, parts = None, []
    for k in range(0, 12, 5):
        part, state = sampler.generate(feats[:, k : k + 5], state, seed=5)
        parts.append(part)
    assert np.array_equal(np.concatenate(parts, 1), whole)
    assert np.array_equal(state.h, end.h) and np.array_equal(state.rows, end.rows)
    # stream 1 alone, started while stream 0 has played 4 frames, equals stream 1 of the batch
    pool, alone = sampler.zero_state(2), []
    _, s0 = sampler.generate(feats[:1, :4], pool.take([0]), seed=5)
    pool.put([0], s0)
    for k in range(12):
        part, s = sampler.generate(feats[:, k : k + 1], pool.take([0, 1]), seed=5)
        pool.put([0, 1], s)
        alone.append(part[1])
    assert np.array_equal(np.concatenate(alone), whole[1])
    with pytest.raises(ValueError):
        make_sampler(m, backend="numba")


def test_a_subscale_voice_trained_on_a_sine_streams_it_at_the_requested_pitch():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = SubscaleWaveRNN(WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=32))
    losses = train_on_sines(m, 120)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 1.5
    midi = 57.0
    sampler = make_sampler(m.eval(), device="cpu")
    state, parts = None, []
    for _ in range(10):  # frame by frame, as the engine plays it
        part, state = sampler.generate(sine_frames(torch.tensor([midi]), 1).numpy(), state, temperature=0)
        parts.append(part[0])
    y = np.concatenate(parts)[sampler.delay + 2 * 160 :]
    assert y.std() > 0.05
    assert abs(hz_to_midi(estimate_f0(y, 16000, fmin=60, fmax=1000)) - midi) < 1.0


def test_streaming_sampler_regenerates_on_the_cpu_after_a_gpu_failure(sampler_gpu_fails_once):
    m = tiny()
    feats = np.random.default_rng(2).normal(0, 0.5, (1, 12, 23)).astype(np.float32)
    expected, _ = SubscaleSampler(m).generate(feats, seed=4)
    sampler = SubscaleSampler(m)
    calls = sampler_gpu_fails_once(sampler)
    out, _ = sampler.generate(feats, seed=4)
    assert calls == ["cuda", "cpu"] and sampler.device.type == "cpu" and sampler.name == "subscale torch cpu"
    assert np.array_equal(out, expected)
