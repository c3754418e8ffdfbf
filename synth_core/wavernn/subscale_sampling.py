"""Streaming sampler for a `SubscaleWaveRNN`: frame by frame, 16 samples per GRU step, a fixed delay.

Step s generates row j = s - k of every sub-sequence k (X[j, k] = x[S j + k], see `subscale`). After
the frames up to row r have been given, steps up to r run; the rows below r - (S - 1) are then complete,
so the output is the generated audio delayed by ``(S - 1) * S`` samples (240, 15 ms at 16 kHz, for
S = 16) and each call still returns hop samples per frame. The state keeps, per stream, the S
sub-sequence GRU states, the last rows (partly generated, and the past context) and the conditioning
of the frames they belong to (two at hop 160), so a stream gives the same samples whether it is
rendered in one call or frame by frame. Excitation and uniforms follow the plain samplers' rules
(free-running pitch clock from the frames' f0, counter-based uniforms per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import excitation, join_coarse_fine
from .sampling import SamplerState, TorchSampler
from .subscale import SubscaleWaveRNN


@dataclass(kw_only=True)
class SubscaleState(SamplerState):
    """`SamplerState` of a subscale stream: h [B, S, H], prev_c / prev_f [B, S] (per sub-sequence);
    rows [B, keep * hop / S, S] the last rows' values (0 where not generated yet), gates [B, keep, 3H],
    exc [B, keep * hop, 2] and draws [B, keep * hop, 2] the conditioning of the last ``keep`` frames."""

    rows: np.ndarray
    gates: np.ndarray
    exc: np.ndarray
    draws: np.ndarray


class SubscaleSampler(TorchSampler):
    """Torch sampler (CPU or CUDA) for `SubscaleWaveRNN`; output delayed by `delay` samples.

    The GRU step, the weights prepared once and the CPU fallback after a GPU failure are `TorchSampler`'s;
    this class adds the sub-sequence bookkeeping and the context window."""

    def __init__(self, model: SubscaleWaveRNN, device: str | torch.device | None = "cpu") -> None:
        c = model.config
        self.subscale = S = model.subscale
        if S < 2 or c.hop % S:
            raise ValueError(f"hop {c.hop} must be a multiple of the subscale factor {S}")
        self.rows_per_frame = c.hop // S
        # frames whose rows are still needed when a call ends: S - 1 unfinished rows + the past context
        self.keep = -(-(S - 1 + model.context_past) // self.rows_per_frame)
        self.delay = (S - 1) * S
        super().__init__(model, device, cuda_graphs=False)

    @property
    def name(self) -> str:
        return f"subscale torch {self.device.type}"

    def _load(self) -> None:
        super()._load()
        m = self.net
        with torch.no_grad():
            self.w_ctx = m._context_weight().detach()
            self.window = torch.arange(m.context_past + 1 + m.context_future, device=self.device) - m.context_past
            self.avail = m.context_avail

    def zero_state(self, batch: int) -> SubscaleState:
        c, S, K = self.config, self.subscale, self.keep
        return SubscaleState(
            h=np.zeros((batch, S, c.hidden), np.float32),
            prev_c=np.full((batch, S), 128, np.int64),
            prev_f=np.zeros((batch, S), np.int64),
            phase=np.zeros(batch, np.float64),
            t=np.zeros(batch, np.int64),
            key=np.arange(batch, dtype=np.int64),
            rows=np.zeros((batch, K * self.rows_per_frame, S), np.float32),
            gates=np.zeros((batch, K, 3 * c.hidden), np.float32),
            exc=np.zeros((batch, K * c.hop, 2), np.float32),
            draws=np.zeros((batch, K * c.hop, 2), np.float32),
        )

    @torch.no_grad()
    def _generate(self, features, uniforms, state, temperature):
        m, c, S, dev = self.net, self.config, self.subscale, self.device
        B, n_frames = features.shape[:2]
        hop, rpf, K = c.hop, self.rows_per_frame, self.keep
        feats = torch.from_numpy(features).to(dev)
        phase = torch.from_numpy(state.phase).to(dev)
        gates, excs = [torch.from_numpy(state.gates).to(dev)], [torch.from_numpy(state.exc).to(dev)]
        for k in range(n_frames):  # per frame, so the numbers do not depend on how a stream is split
            frame = feats[:, k : k + 1].clone()
            gates.append(m.cond_gates(frame))
            e, phase = excitation(frame, hop, c.sample_rate, phase)
            excs.append(e)
        gates_w = torch.cat(gates, 1)  # [B, K + F, 3H]; working row w is frame w // rpf
        exc_w = torch.cat(excs, 1)  # [B, (K + F) hop, 2]; working sample S w + k
        draws_w = torch.cat([torch.from_numpy(state.draws), torch.from_numpy(uniforms)], 1).to(dev)
        n_rows = (K + n_frames) * rpf
        pad_p, pad_f = m.context_past, m.context_future
        rows = torch.zeros(B, pad_p + n_rows + pad_f, S, device=dev)  # working rows, zero-padded both ends
        rows[:, pad_p : pad_p + K * rpf] = torch.from_numpy(state.rows).to(dev)
        h = torch.from_numpy(state.h).to(dev).reshape(B * S, -1).clone()
        prev_c = torch.from_numpy(state.prev_c).to(dev).reshape(-1)
        prev_f = torch.from_numpy(state.prev_f).to(dev).reshape(-1)
        first_row = torch.from_numpy(state.t // S).to(dev)  # absolute row of working row K * rpf
        ks = torch.arange(S, device=dev)
        bs = torch.arange(B, device=dev)[:, None].expand(B, S)
        for i in range(n_frames * rpf):
            w = K * rpf + i - ks  # working row of each sub-sequence now, [S]
            active = ((first_row[:, None] + i - ks[None]) >= 0).reshape(-1)  # rows before a stream's start idle
            ctx = rows[:, (w + pad_p)[:, None] + self.window[None], :]  # [B, S, R, S]
            ctx = ctx.reshape(B, S, -1) * self.avail[None]
            g = gates_w[:, w // rpf].reshape(B * S, -1) + F.linear(ctx.reshape(B * S, -1), self.w_ctx)
            sample = w * S + ks  # working sample index of each sub-sequence's sample
            e = exc_w[:, sample].reshape(B * S, 2)
            d = draws_w[:, sample].reshape(B * S, 2)
            c_t, f_t, h_new = self._step(h, prev_c, prev_f, g, e, d, temperature)
            h = torch.where(active[:, None], h_new, h)
            prev_c = torch.where(active, c_t, prev_c)
            prev_f = torch.where(active, f_t, prev_f)
            value = torch.where(active, join_coarse_fine(c_t, f_t), 0.0).reshape(B, S)
            rows[bs, (w + pad_p)[None].expand(B, S), ks[None].expand(B, S)] = value
        done = rows[:, pad_p : pad_p + n_rows]  # working rows; K * rpf - (S - 1) onwards is new output
        start = K * rpf - (S - 1)
        out = done[:, start : start + n_frames * rpf].reshape(B, -1)
        state.h = h.reshape(B, S, -1).cpu().numpy().copy()
        state.prev_c = prev_c.reshape(B, S).cpu().numpy().astype(np.int64)
        state.prev_f = prev_f.reshape(B, S).cpu().numpy().astype(np.int64)
        state.phase = phase.cpu().numpy().astype(np.float64)
        state.rows = done[:, n_frames * rpf :].cpu().numpy().copy()
        state.gates = gates_w[:, n_frames:].cpu().numpy().copy()
        state.exc = exc_w[:, n_frames * hop :].cpu().numpy().copy()
        state.draws = draws_w[:, n_frames * hop :].cpu().numpy().copy()
        return out.cpu().numpy().astype(np.float32)


__all__ = ["SubscaleSampler", "SubscaleState"]
