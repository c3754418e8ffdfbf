"""WaveRNN model: dual-softmax split/join, causal masking, reference step == teacher-forced forward."""

from __future__ import annotations

import torch

from synth_core.wavernn import WaveRNN, WaveRNNConfig, excitation, join_coarse_fine, split_coarse_fine
from synth_core.wavernn.model import frame_f0_hz


def tiny(**kw) -> WaveRNN:
    torch.manual_seed(0)
    cfg = dict(hidden=32, cond_channels=8, head_hidden=16, hop=10)
    cfg.update(kw)
    return WaveRNN(WaveRNNConfig(**cfg))


def test_split_join_is_exact_for_every_16_bit_value():
    codes = torch.arange(65536)
    audio = (codes - 32768).float() / 32768
    coarse, fine = split_coarse_fine(audio)
    assert int(coarse.min()) == 0 and int(coarse.max()) == 255 and int(fine.max()) == 255
    assert torch.equal(coarse * 256 + fine, codes)
    assert torch.equal(join_coarse_fine(coarse, fine), audio)
    c, f = split_coarse_fine(torch.tensor([-2.0, 2.0]))  # clipped, not wrapped
    assert c.tolist() == [0, 255] and f.tolist() == [0, 255]


def test_coarse_half_never_sees_the_current_coarse_sample():
    m = tiny().eval()
    feats = torch.randn(1, 4, 23)
    audio = torch.rand(1, 40) * 2 - 1
    c, f = split_coarse_fine(audio)
    c2 = c.clone()
    c2[0, 20] = (c2[0, 20] + 77) % 256  # change c_20 only
    lc1, lf1, _ = m(feats, join_coarse_fine(c, f))
    lc2, lf2, _ = m(feats, join_coarse_fine(c2, f))
    assert torch.allclose(lc1[0, :21], lc2[0, :21])  # coarse logits up to t=20 unchanged
    assert not torch.allclose(lf1[0, 20], lf2[0, 20])  # the fine half at t=20 sees c_20
    # a gradient step through the mask does not open it
    m.train()
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    m.loss(feats, audio)[0].backward()
    opt.step()
    m.eval()
    lc1, _, _ = m(feats, join_coarse_fine(c, f))
    lc2, _, _ = m(feats, join_coarse_fine(c2, f))
    assert torch.allclose(lc1[0, :21], lc2[0, :21])


def test_reference_step_matches_teacher_forced_forward():
    m = tiny().eval()
    B, frames = 2, 5
    feats = torch.randn(B, frames, 23)
    gates = m.cond_gates(feats)
    exc, _ = excitation(feats, 10, 16000)
    h = torch.zeros(B, 32)
    prev_c, prev_f = torch.full((B,), 128), torch.zeros(B, dtype=torch.long)
    cs, fs = [], []
    with torch.no_grad():
        for t in range(frames * 10):
            prev_c, prev_f, h = m.step(
                h, prev_c, prev_f, gates[:, t // 10], exc[:, t], torch.rand(B, 2), temperature=1.0
            )
            cs.append(prev_c)
            fs.append(prev_f)
        coarse, fine = torch.stack(cs, 1), torch.stack(fs, 1)
        _, _, h_forward = m(feats, join_coarse_fine(coarse, fine))
        assert torch.allclose(h_forward, h, atol=1e-5)
        # greedy generation reproduces the forward's argmax
        h = torch.zeros(B, 32)
        prev_c, prev_f = torch.full((B,), 128), torch.zeros(B, dtype=torch.long)
        cs, fs = [], []
        for t in range(frames * 10):
            prev_c, prev_f, h = m.step(h, prev_c, prev_f, gates[:, t // 10], exc[:, t], torch.rand(B, 2), temperature=0)
            cs.append(prev_c)
            fs.append(prev_f)
        coarse, fine = torch.stack(cs, 1), torch.stack(fs, 1)
        lc, lf, _ = m(feats, join_coarse_fine(coarse, fine))
    assert torch.equal(lc.argmax(-1), coarse) and torch.equal(lf.argmax(-1), fine)


def test_pruning_masks_zero_weights_in_forward_and_step():
    m = tiny()
    mask = m.mask("gru.weight_hh_l0")
    mask[:, :16] = 0
    m.apply_masks()
    assert m.sparsity()["gru.weight_hh_l0"] == 0.5
    loss, _ = m.loss(torch.randn(1, 2, 23), torch.rand(1, 20) * 2 - 1)
    loss.backward()
    assert m.gru.weight_hh_l0.grad[:, :16].abs().max() == 0  # masked weights learn nothing


def test_excitation_runs_at_the_frame_pitch_and_continues_across_calls():
    feats = torch.zeros(1, 20, 23)
    feats[..., 0] = (69 - 60) / 24  # A4 = 440 Hz
    feats[..., 1] = 1.0
    exc, end = excitation(feats, 160, 16000)
    spectrum = torch.fft.rfft(exc[0, :, 0] * torch.hann_window(3200))
    assert abs(int(spectrum.abs().argmax()) * 16000 / 3200 - 440) <= 5
    a, mid = excitation(feats[:, :10], 160, 16000)
    b, _ = excitation(feats[:, 10:], 160, 16000, phase0=mid)
    assert torch.allclose(torch.cat([a, b], 1), exc, atol=1e-5)
    feats[..., 1] = 0.0  # unvoiced: no excitation
    assert excitation(feats, 160, 16000)[0].abs().max() == 0


def test_aligned_phase_drives_the_same_excitation_as_the_free_clock():
    from synth_core.wavernn.model import phase_excitation

    feats = torch.zeros(2, 6, 23)
    feats[..., 0] = torch.linspace(-0.2, 0.3, 6)
    feats[..., 1] = torch.tensor([1.0, 1.0, 0.5, 0.0, 1.0, 1.0])
    free, _ = excitation(feats, 160, 16000)
    # the free clock's own phase, given explicitly, gives the same excitation and the same loss
    inc = (2 * torch.pi / 16000) * frame_f0_hz(feats.double()).repeat_interleave(160, 1)
    phase = torch.cumsum(inc, 1) - inc
    assert torch.allclose(phase_excitation(feats, phase, 160), free, atol=1e-5)
    m = WaveRNN(WaveRNNConfig(hidden=16, head_hidden=8, cond_channels=8))
    audio = torch.rand(2, 960) * 0.2 - 0.1
    assert torch.allclose(m.loss(feats, audio)[0], m.loss(feats, audio, phase=phase)[0], atol=1e-5)
