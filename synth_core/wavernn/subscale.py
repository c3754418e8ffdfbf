"""Subscale WaveRNN (Kalchbrenner et al. 2018, section 4): 16 samples per step as a batch of 16.

The sequence is folded into S = 16 interleaved sub-sequences X[j, k] = x[S j + k]. Sub-sequence k
runs k steps behind sub-sequence 0 (future horizon one step), so step s generates X[s - k, k] for
every k at once. X[j', k'] is generated at step j' + k', so when X[j, k] is generated exactly the
samples with j' + k' < j + k are known. Each sample is conditioned on

- its own sub-sequence's past through the GRU state (batch element k; prev_c/prev_f = X[j - 1, k]),
- a context window of the other sub-sequences: rows j - past .. j + future of all S sub-sequences
  (values in [-1, 1]), masked by `context_mask` to the available ones (past and future of x),
- the frame features and the f0 excitation at its own time S j + k, as in `WaveRNN`.

The context enters the GRU as extra input columns; the core is a `WaveRNN` otherwise (same
dual softmax, causal c_t mask, pruning masks). Training uses the same masks on the true audio, so
teacher forcing sees exactly what generation sees.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .model import (
    N_CLASSES,
    N_SAMPLE_INPUTS,
    WaveRNN,
    WaveRNNConfig,
    excitation,
    join_coarse_fine,
    phase_excitation,
    scale_byte,
    split_coarse_fine,
)


def fold(audio: torch.Tensor, subscale: int = 16) -> torch.Tensor:
    """[..., T] -> [..., T / S, S]: X[j, k] = x[S j + k]."""
    T = audio.shape[-1]
    if T % subscale:
        raise ValueError(f"{T} samples are not a multiple of the subscale factor {subscale}")
    return audio.reshape(*audio.shape[:-1], T // subscale, subscale)


def unfold(folded: torch.Tensor) -> torch.Tensor:
    """Inverse of `fold`: [..., L, S] -> [..., L * S]."""
    return folded.reshape(*folded.shape[:-2], -1)


def context_mask(subscale: int = 16, past: int = 2, future: int = 2) -> torch.Tensor:
    """Availability [S (target k), past + 1 + future (row offset dj = -past..future), S (source k')]:
    True where X[j + dj, k'] is generated before X[j, k], i.e. dj + k' < k (F = 1 step lag)."""
    k = torch.arange(subscale)[:, None, None]
    dj = torch.arange(-past, future + 1)[None, :, None]
    k2 = torch.arange(subscale)[None, None, :]
    return (dj + k2) < k


class SubscaleWaveRNN(WaveRNN):
    """`WaveRNN` whose GRU also reads a masked context window of the other sub-sequences."""

    def __init__(
        self, config: WaveRNNConfig | None = None, subscale: int = 16, context_past: int = 2, context_future: int = 2
    ) -> None:
        super().__init__(config)
        c = self.config
        if c.hop % subscale:
            raise ValueError(f"hop {c.hop} must be a multiple of the subscale factor {subscale}")
        self.subscale, self.context_past, self.context_future = subscale, context_past, context_future
        mask = context_mask(subscale, context_past, context_future)
        self.n_context = mask[0].numel()
        self.register_buffer("context_avail", mask.reshape(subscale, -1).float())  # [S, K]
        H = c.hidden
        n_in = N_SAMPLE_INPUTS + c.cond_channels + self.n_context
        self.gru = nn.GRU(n_in, H, batch_first=True)
        mask_ih = torch.ones(3 * H, n_in)
        mask_ih[:, : N_SAMPLE_INPUTS + c.cond_channels] = self.mask_ih
        self.mask_ih = mask_ih  # replaces the buffer
        self.apply_masks()

    def extra_config(self) -> dict[str, int]:
        return {"subscale": self.subscale, "context_past": self.context_past, "context_future": self.context_future}

    # -- shapes ---------------------------------------------------------------------------------

    def _cond_cols(self) -> slice:
        return slice(N_SAMPLE_INPUTS, N_SAMPLE_INPUTS + self.config.cond_channels)

    def _context_weight(self) -> torch.Tensor:
        return (self.gru.weight_ih_l0 * self.mask_ih)[:, N_SAMPLE_INPUTS + self.config.cond_channels :]

    def cond_gates(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame input-gate contribution of the features (bias included): [..., frames, 3H]."""
        return F.linear(self.condition(features), self.gru.weight_ih_l0[:, self._cond_cols()], self.gru.bias_ih_l0)

    def context(self, folded: torch.Tensor) -> torch.Tensor:
        """Masked context windows of every sample: folded audio [B, L, S] -> [B, S, L, K]."""
        P, Fw = self.context_past, self.context_future
        B, L = folded.shape[:2]
        padded = F.pad(folded, (0, 0, P, Fw))  # zeros before the start and after the end
        windows = padded.unfold(1, P + 1 + Fw, 1)  # [B, L, S, R] (window rows last)
        windows = windows.transpose(2, 3).reshape(B, L, 1, -1)  # [B, L, 1, R * S], row-major (dj, k')
        return (windows * self.context_avail[None, None]).permute(0, 2, 1, 3)

    # -- training -------------------------------------------------------------------------------

    def forward(
        self,
        features: torch.Tensor,
        audio: torch.Tensor,
        h0: torch.Tensor | None = None,
        phase: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits in the original sample order: ([B, T, 256], [B, T, 256], h_T [B * S, H]).

        ``phase`` as in `WaveRNN.forward` (an aligned pitch clock, or None for the free-running one)."""
        c, S = self.config, self.subscale
        B, T = audio.shape
        if features.shape[1] * c.hop != T:
            raise ValueError(f"{features.shape[1]} frames x hop {c.hop} != {T} samples")
        L = T // S
        coarse, fine = split_coarse_fine(audio)
        exact = join_coarse_fine(coarse, fine)  # the 16-bit values generation produces

        def per_stream(x: torch.Tensor) -> torch.Tensor:  # [B, T, ...] -> [B * S, L, ...]
            x = x.reshape(B, L, S, *x.shape[2:]).transpose(1, 2)
            return x.reshape(B * S, L, *x.shape[3:])

        cs, fs = per_stream(coarse), per_stream(fine)
        prev_c = F.pad(cs, (1, 0), value=128)[:, :-1]
        prev_f = F.pad(fs, (1, 0), value=0)[:, :-1]
        if phase is None:
            exc = excitation(features, c.hop, c.sample_rate)[0]
        else:
            exc = phase_excitation(features, phase, c.hop)
        cond = self.condition(features).repeat_interleave(c.hop // S, dim=1)  # [B, L, C]
        cond = cond[:, None].expand(B, S, L, cond.shape[-1]).reshape(B * S, L, -1)
        ctx = self.context(fold(exact, S)).reshape(B * S, L, -1)
        bytes_in = [scale_byte(prev_c)[..., None], scale_byte(prev_f)[..., None], scale_byte(cs)[..., None]]
        x = torch.cat([*bytes_in, per_stream(exc), cond, ctx], -1)
        weight_ih = self.gru.weight_ih_l0 * self.mask_ih
        weight_hh = self.gru.weight_hh_l0 * self.mask("gru.weight_hh_l0")
        h0 = x.new_zeros(1, B * S, c.hidden) if h0 is None else h0.unsqueeze(0).contiguous()
        params = [weight_ih, weight_hh, self.gru.bias_ih_l0, self.gru.bias_hh_l0]
        y, hT = torch._VF.gru(x, h0, params, True, 1, 0.0, self.training, False, True)
        Hh = c.hidden // 2

        def original_order(lg: torch.Tensor) -> torch.Tensor:  # [B * S, L, 256] -> [B, T, 256]
            return lg.reshape(B, S, L, N_CLASSES).transpose(1, 2).reshape(B, T, N_CLASSES)

        return original_order(self.coarse_logits(y[..., :Hh])), original_order(self.fine_logits(y[..., Hh:])), hT[0]

    # -- generation -----------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, features: torch.Tensor | np.ndarray, temperature: float = 1.0, seed: int | None = None
    ) -> np.ndarray:
        """features [B, F, n_features] -> audio [B, F * hop] float32, 16 samples per GRU step for each item."""
        c, S, P = self.config, self.subscale, self.context_past
        dev = self.gru.weight_hh_l0.device
        feats = torch.as_tensor(np.asarray(features, np.float32), device=dev)
        if feats.ndim != 3 or feats.shape[2] != c.n_features:
            raise ValueError(f"features must be [B, frames, {c.n_features}], got {tuple(feats.shape)}")
        B, n_frames = feats.shape[:2]
        T = n_frames * c.hop
        L = T // S
        rows_per_frame = c.hop // S
        gates_all = self.cond_gates(feats)  # [B, F, 3H]
        exc = fold(excitation(feats, c.hop, c.sample_rate)[0].transpose(1, 2), S)  # [B, 2, L, S]
        w_ctx = self._context_weight()
        avail = self.context_avail  # [S, K]
        R = self.context_past + 1 + self.context_future
        buf = torch.zeros(B, P + L + self.context_future, S, device=dev)  # generated X, zero-padded rows
        h = torch.zeros(B * S, c.hidden, device=dev)
        prev_c = torch.full((B * S,), 128, dtype=torch.long, device=dev)
        prev_f = torch.zeros(B * S, dtype=torch.long, device=dev)
        seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy) % (1 << 63)
        gen = torch.Generator().manual_seed(seed)
        ks = torch.arange(S, device=dev)
        bs = torch.arange(B, device=dev)[:, None].expand(B, S)
        offsets = torch.arange(R, device=dev)
        for s in range(L + S - 1):
            j = s - ks  # the row each sub-sequence generates now
            active = ((j >= 0) & (j < L))[None].expand(B, S).reshape(-1)
            jc = j.clamp(0, L - 1)
            rows = jc[:, None] + offsets[None]  # [S, R] padded rows j - P .. j + future
            ctx = buf[:, rows, :].reshape(B, S, -1) * avail[None]  # [B, S, K]
            gates = gates_all[:, jc // rows_per_frame]  # [B, S, 3H]
            gates = gates.reshape(B * S, -1) + F.linear(ctx.reshape(B * S, -1), w_ctx)
            e = exc[:, :, jc, ks].permute(0, 2, 1).reshape(B * S, 2)
            draw = torch.rand(B * S, 2, generator=gen).to(dev)
            c_t, f_t, h_new = self.step(h, prev_c, prev_f, gates, e, draw, temperature)
            h = torch.where(active[:, None], h_new, h)
            prev_c = torch.where(active, c_t, prev_c)
            prev_f = torch.where(active, f_t, prev_f)
            value = join_coarse_fine(c_t, f_t).reshape(B, S)
            act = active.reshape(B, S)
            buf[bs[act], (jc[None].expand(B, S) + P)[act], ks[None].expand(B, S)[act]] = value[act]
        return unfold(buf[:, P : P + L]).cpu().numpy()


def generation_order(length: int, subscale: int = 16) -> np.ndarray:
    """Step at which each folded sample X[j, k] is generated: [L, S] = j + k."""
    return np.arange(length)[:, None] + np.arange(subscale)[None, :]


__all__ = ["SubscaleWaveRNN", "context_mask", "fold", "generation_order", "unfold"]
