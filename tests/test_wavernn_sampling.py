"""WaveRNN samplers: block-sparse packing, numba kernel == torch reference == model.step, streaming, fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth_core.wavernn import WaveRNN, WaveRNNConfig, excitation, join_coarse_fine, numba_kernel, split_coarse_fine
from synth_core.wavernn.numba_kernel import NumbaSparseSampler
from synth_core.wavernn.sampler_factory import make_sampler
from synth_core.wavernn.sampling import SamplerState, TorchSampler
from synth_core.wavernn.sparse import density, pack_bsr, prune_blocks_random

HOP = 10


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(block=(4, 4), sparsity=0.5, scale=3.0, seed=0) -> WaveRNN:
    """A tiny model pruned at random in `block`s; weights scaled up so the softmaxes are not flat."""
    torch.manual_seed(seed)
    m = WaveRNN(WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=16, hop=HOP, block=block)).eval()
    with torch.no_grad():
        for i, (name, p) in enumerate(m.prunable().items()):
            if sparsity > 0:
                m.mask(name).copy_(torch.from_numpy(prune_blocks_random(tuple(p.shape), block, sparsity, seed + i)))
            p.mul_(scale)
        m.apply_masks()
    return m


def features(batch=2, frames=30, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = (0.5 * rng.standard_normal((batch, frames, 23))).astype(np.float32)
    f[..., 1] = rng.uniform(0, 1, (batch, frames))  # voicing
    return f


def uniforms(batch, n, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, n, 2)).astype(np.float32)


# ---- block-sparse storage -----------------------------------------------------------------------


@pytest.mark.parametrize("block", [(4, 4), (16, 1)])
def test_bsr_round_trip_and_matvec(block):
    rng = np.random.default_rng(0)
    keep = prune_blocks_random((48, 32), block, 0.75, seed=2)
    w = (rng.standard_normal((48, 32)) * keep).astype(np.float32)
    s = pack_bsr(w, block)
    assert s.values.shape == (s.n_blocks, 16) and s.n_blocks == int(keep.sum()) // 16
    assert s.density() == pytest.approx(0.25) and density(w, block) == pytest.approx(0.25)
    assert np.array_equal(s.to_dense(), w)
    x = rng.standard_normal(32).astype(np.float32)
    assert np.allclose(s.matvec(x), w @ x, atol=1e-5)
    # with the pruning mask: a kept block that happens to be all zero is still stored
    w2 = w.copy()
    r, c = np.argwhere(keep)[0]
    w2[r - r % block[0] : r - r % block[0] + block[0], c - c % block[1] : c - c % block[1] + block[1]] = 0
    assert pack_bsr(w2, block, keep=keep).n_blocks == s.n_blocks
    assert pack_bsr(w2, block).n_blocks == s.n_blocks - 1
    assert np.array_equal(pack_bsr(w2, block, keep=keep).to_dense(), w2)


def test_bsr_refuses_what_is_not_pruned_in_whole_blocks():
    w = np.ones((16, 16), np.float32)
    w[0, 0] = 0.0  # one zero inside a block
    with pytest.raises(ValueError, match="whole"):
        pack_bsr(w, (4, 4))
    with pytest.raises(ValueError, match="whole"):
        pack_bsr(np.ones((16, 16), np.float32), (4, 4), keep=w)  # mask not blockwise
    with pytest.raises(ValueError, match="outside"):
        pack_bsr(np.ones((16, 16), np.float32), (4, 4), keep=prune_blocks_random((16, 16), (4, 4), 0.5))
    with pytest.raises(ValueError, match="not supported"):
        pack_bsr(np.ones((16, 16), np.float32), (2, 2))
    with pytest.raises(ValueError, match="whole number"):
        pack_bsr(np.ones((18, 16), np.float32), (4, 4))
    assert pack_bsr(np.zeros((16, 16), np.float32), (16, 1)).n_blocks == 0


def test_fast_tanh_is_accurate():
    x = np.linspace(-20, 20, 200001).astype(np.float32)
    approx = np.array([numba_kernel.fast_tanh(v) for v in x[::50]])
    assert np.abs(approx - np.tanh(x[::50].astype(np.float64))).max() < 5e-7
    sig = np.array([numba_kernel.fast_sigmoid(v) for v in x[::50]])
    assert np.abs(sig - 1 / (1 + np.exp(-x[::50].astype(np.float64)))).max() < 5e-7


# ---- samplers agree ------------------------------------------------------------------------------


def test_torch_sampler_is_model_step():
    m = tiny()
    feats = features(2, 4)
    u = uniforms(2, 4 * HOP)
    state = SamplerState.zeros(2, 32)
    out = TorchSampler(m).generate_with_uniforms(feats, u, state)
    ft = torch.from_numpy(feats)
    gates = m.cond_gates(ft)
    exc, phase = excitation(ft, HOP, 16000)
    h = torch.zeros(2, 32)
    c, f = torch.full((2,), 128), torch.zeros(2, dtype=torch.long)
    ref = []
    with torch.no_grad():
        for t in range(4 * HOP):
            c, f, h = m.step(h, c, f, gates[:, t // HOP], exc[:, t], torch.from_numpy(u[:, t]))
            ref.append(join_coarse_fine(c, f))
    assert np.array_equal(out, torch.stack(ref, 1).numpy())
    assert np.allclose(state.h, h.numpy(), atol=1e-5)
    assert np.allclose(state.phase, phase.numpy(), atol=1e-9)


@pytest.mark.parametrize("block", [(4, 4), (16, 1)])
def test_numba_kernel_matches_the_torch_reference(block):
    m = tiny(block)
    feats = features(2, 30)
    a, sa = TorchSampler(m).generate(feats, seed=7)
    b, sb = NumbaSparseSampler(m).generate(feats, seed=7)
    # same uniforms: the same 600 samples (a draw landing within float rounding of a CDF step could
    # flip one; these seeds have none)
    assert np.array_equal(a, b)
    assert np.allclose(sa.h, sb.h, atol=1e-5) and np.array_equal(sa.prev_c, sb.prev_c)
    assert np.allclose(sa.phase, sb.phase, atol=1e-9)


@pytest.mark.parametrize("block", [(4, 4), (16, 1)])
def test_numba_logits_match_teacher_forced_forward_at_95_percent(block):
    m = tiny(block, sparsity=0.95, seed=3)
    assert min(m.sparsity().values()) >= 0.9
    sampler = NumbaSparseSampler(m)
    assert max(sampler.density().values()) <= 0.1
    feats = features(2, 30, seed=1)
    state = SamplerState.zeros(2, 32)
    out, logits = sampler.generate_with_uniforms(feats, uniforms(2, 300), state, record_logits=True)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0 and out.std() > 0
    with torch.no_grad():
        lc, lf, h_t = m(torch.from_numpy(feats), torch.from_numpy(out))
    assert np.abs(lc.numpy() - logits[:, :, 0]).max() < 1e-4
    assert np.abs(lf.numpy() - logits[:, :, 1]).max() < 1e-4
    assert np.abs(h_t.numpy() - state.h).max() < 1e-5
    # the samples are exactly the ones the logits were drawn from
    c, f = split_coarse_fine(torch.from_numpy(out))
    assert c.min() >= 0 and f.max() <= 255


@pytest.mark.parametrize("make", [TorchSampler, NumbaSparseSampler])
def test_streaming_frame_by_frame_equals_one_call(make):
    sampler = make(tiny())
    feats = features(2, 8)
    whole, end = sampler.generate(feats, seed=11)
    state, parts = None, []
    for k in range(8):
        part, state = sampler.generate(feats[:, k : k + 1], state, seed=11)
        parts.append(part)
    assert np.array_equal(np.concatenate(parts, 1), whole)
    assert np.array_equal(state.h, end.h) and np.array_equal(state.phase, end.phase)
    assert state.t.tolist() == [80, 80]
    # streams moved between calls (take / put) keep their own continuation
    state, parts = SamplerState.zeros(2, 32), []
    for k in range(8):
        part, sub = sampler.generate(feats[1:, k : k + 1], state.take([1]), seed=11)
        parts.append(part)
        state.put([1], sub)
    assert np.array_equal(np.concatenate(parts, 1), whole[1:])  # alone or in a batch: the same audio
    assert np.array_equal(state.h[0], np.zeros(32)) and state.t.tolist() == [0, 80]


@pytest.mark.parametrize("make", [TorchSampler, NumbaSparseSampler])
def test_greedy_generation_is_the_forward_argmax(make):
    m = tiny()
    feats = features(1, 6)
    out, _ = make(m).generate(feats, temperature=0)
    with torch.no_grad():
        lc, lf, _ = m(torch.from_numpy(feats), torch.from_numpy(out))
    c, f = split_coarse_fine(torch.from_numpy(out))
    assert torch.equal(lc.argmax(-1), c) and torch.equal(lf.argmax(-1), f)


def test_generate_checks_its_input():
    sampler = TorchSampler(tiny())
    with pytest.raises(ValueError, match="features"):
        sampler.generate(np.zeros((1, 2, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        sampler.generate(np.full((1, 2, 23), np.nan, np.float32))
    _, state = sampler.generate(features(2, 1))
    with pytest.raises(ValueError, match="streams"):
        sampler.generate(features(3, 1), state)


def test_gpu_failure_regenerates_on_the_cpu(sampler_gpu_fails_once):
    m = tiny()
    feats = features(1, 3)
    expected, _ = TorchSampler(m).generate(feats, seed=5)
    sampler = TorchSampler(m)
    calls = sampler_gpu_fails_once(sampler)
    out, _ = sampler.generate(feats, seed=5)
    assert calls == ["cuda", "cpu"] and sampler.device.type == "cpu"
    assert np.array_equal(out, expected)


def test_gpu_failure_midway_through_a_generation_restores_the_state_and_regenerates(monkeypatch):
    """The "GPU" (the CPU pretending) fails 15 samples into a 30-sample call, after scribbling on the stream
    state: the sampler restores the state, moves to the CPU and regenerates the whole call, as if nothing failed."""
    m = tiny()
    feats = features(2, 3)
    expected, expected_end = TorchSampler(m).generate(feats, seed=5)
    sampler = TorchSampler(m)
    real_generate, real_step = TorchSampler._generate, TorchSampler._step
    steps, calls = [0], []

    def step_then_fail(self, *args):
        steps[0] += 1
        if steps[0] == 15:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_step(self, *args)

    def generate_on_a_flaky_gpu(self, features, uniforms, state, temperature):
        calls.append(self.device.type)
        if len(calls) > 1:
            return real_generate(self, features, uniforms, state, temperature)
        self.device = torch.device("cpu")  # run the first attempt for real, as the GPU would
        monkeypatch.setattr(TorchSampler, "_step", step_then_fail)
        try:
            state.h += 1.0  # a half-written state, as a failure part-way through an update leaves it
            state.t = state.t + 7
            return real_generate(self, features, uniforms, state, temperature)
        finally:
            monkeypatch.setattr(TorchSampler, "_step", real_step)
            self.device = torch.device("cuda")

    sampler.device = torch.device("cuda")
    monkeypatch.setattr(TorchSampler, "_generate", generate_on_a_flaky_gpu)
    out, end = sampler.generate(feats, seed=5)
    assert calls == ["cuda", "cpu"] and steps[0] == 15 and sampler.device.type == "cpu"
    assert np.array_equal(out, expected)
    for name in ("h", "prev_c", "prev_f", "phase", "t"):
        assert np.array_equal(getattr(end, name), getattr(expected_end, name)), name


@pytest.mark.parametrize("batch", [3, 4])
def test_frame_graph_path_matches_eager(monkeypatch, batch):
    """The CUDA-graph code path (static buffers, batch padded to a power of two) run on the CPU with
    the capture replaced by plain calls gives the eager sampler's audio and state."""
    from synth_core.wavernn import sampling

    m = tiny()
    feats = features(batch, 3)
    expected, end = TorchSampler(m).generate(feats, seed=2)
    monkeypatch.setattr(sampling._FrameGraph, "_capture", staticmethod(lambda frame, dev: frame))
    monkeypatch.setattr(TorchSampler, "_use_graphs", lambda self: True)
    sampler = TorchSampler(m)
    out, state = sampler.generate(feats, seed=2)
    assert list(sampler._graphs) == [(4, 1.0)]
    assert np.mean(out == expected) > 0.95  # padding the batch may change BLAS rounding: rare flips
    if batch == 4:
        assert np.array_equal(out, expected) and np.allclose(state.h, end.h, atol=1e-6)


def test_make_sampler_picks_by_sparsity_and_backend():
    assert isinstance(make_sampler(tiny(sparsity=0.9), device="cpu"), NumbaSparseSampler)
    assert isinstance(make_sampler(tiny(sparsity=0.0), device="cpu"), TorchSampler)
    assert isinstance(make_sampler(tiny(sparsity=0.0), backend="numba", device="cpu"), NumbaSparseSampler)
    assert isinstance(make_sampler(tiny(sparsity=0.9), backend="torch", device="cpu"), TorchSampler)
    with pytest.raises(ValueError, match="backend"):
        make_sampler(tiny(), backend="jax")


@pytest.mark.parametrize("workers", [2, 3])
def test_numba_streams_split_over_threads_give_the_same_samples(workers):
    m = tiny(sparsity=0.9)
    feats = features(batch=5, frames=12)
    one = NumbaSparseSampler(m)
    many = NumbaSparseSampler(m)
    many.workers = workers
    a, sa = one.generate(feats, seed=7)
    b, sb = many.generate(feats, seed=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa.h, sb.h)
    c, _ = many.generate(feats[:, :1], sb, seed=8)  # and a continuation
    d, _ = one.generate(feats[:, :1], sa, seed=8)
    np.testing.assert_array_equal(c, d)
