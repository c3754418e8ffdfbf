"""WaveRNN (Kalchbrenner et al. 2018) as a conditioned vocoder voice.

One GRU whose state is split into a coarse half and a fine half. 16-bit samples are split into
coarse/fine 8-bit halves (dual softmax): the coarse half of the state predicts c_t from
(c_{t-1}, f_{t-1}); the fine half also sees c_t through a masked input matrix and predicts f_t.
Frame-rate acoustic features (see `features.py`) are projected once per frame by `cond_net` and
enter the GRU input; the sampler adds their gate contribution once per frame.

Gate order follows `torch.nn.GRU`: rows [0:H] reset, [H:2H] update, [2H:3H] candidate.
Units [0:H/2] of each gate are the coarse half, [H/2:H] the fine half.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

N_CLASSES = 256
N_SAMPLE_INPUTS = 5  # c_{t-1}, f_{t-1}, c_t, sin(phase), cos(phase): the GRU input columns before the conditioning


@dataclass
class WaveRNNConfig:
    """Sizes of a WaveRNN voice; saved in checkpoints."""

    sample_rate: int = 16000
    hop: int = 160  # samples per conditioning frame (10 ms)
    n_features: int = 23  # see features.FEATURE_NAMES
    cond_channels: int = 128
    hidden: int = 512  # GRU units, even; [0:H/2] coarse, [H/2:H] fine
    head_hidden: int = 256  # O1/O3 output size
    block: tuple[int, int] = (4, 4)  # sparsity block shape (rows, cols) for pruning and the sparse kernel
    excitation: bool = True  # feed sin/cos of the f0 phase (times voicing) at sample rate, see `excitation`

    def __post_init__(self) -> None:
        self.block = tuple(int(b) for b in self.block)  # JSON round trips give lists
        if self.hidden % 2:
            raise ValueError(f"hidden must be even, got {self.hidden}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaveRNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown WaveRNN config keys: {sorted(unknown)}")
        return cls(**d)


# ---- 16-bit <-> coarse/fine ------------------------------------------------------------------


def to_uint16(audio: torch.Tensor) -> torch.Tensor:
    """Float audio in [-1, 1) -> integer codes 0..65535 (int64)."""
    return (torch.round(audio.float() * 32768.0) + 32768).clamp(0, 65535).long()


def split_coarse_fine(audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float audio -> (coarse, fine) 8-bit halves of the 16-bit code (int64, 0..255)."""
    u = to_uint16(audio)
    return u // 256, u % 256


def join_coarse_fine(coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """Inverse of `split_coarse_fine`: exact for 16-bit audio."""
    return (coarse.long() * 256 + fine.long() - 32768).float() / 32768.0


def scale_byte(x: torch.Tensor) -> torch.Tensor:
    """An 8-bit class 0..255 as a GRU input in [-1, 1]."""
    return x.float() / 127.5 - 1.0


# ---- the model ------------------------------------------------------------------------------


class WaveRNN(nn.Module):
    """Conditioned WaveRNN with the dual softmax; teacher-forced `forward`, reference `step`."""

    def __init__(self, config: WaveRNNConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or WaveRNNConfig()
        H = c.hidden
        self.cond_net = nn.Sequential(
            nn.Linear(c.n_features, c.cond_channels), nn.Tanh(), nn.Linear(c.cond_channels, c.cond_channels), nn.Tanh()
        )
        # GRU input: [c_{t-1}, f_{t-1}, c_t, sin(phase), cos(phase), cond(cond_channels)]
        self.gru = nn.GRU(N_SAMPLE_INPUTS + c.cond_channels, H, batch_first=True)
        self.o1 = nn.Linear(H // 2, c.head_hidden)
        self.o2 = nn.Linear(c.head_hidden, N_CLASSES)
        self.o3 = nn.Linear(H // 2, c.head_hidden)
        self.o4 = nn.Linear(c.head_hidden, N_CLASSES)
        # causal mask: c_t (input column 2) must not reach the coarse half of any gate
        mask_ih = torch.ones(3 * H, N_SAMPLE_INPUTS + c.cond_channels)
        for g in range(3):
            mask_ih[g * H : g * H + H // 2, 2] = 0.0
        if not c.excitation:
            mask_ih[:, 3:5] = 0.0
        self.register_buffer("mask_ih", mask_ih)
        # pruning masks (1 = kept), updated by training.pruning
        for name, p in self.prunable().items():
            self.register_buffer(_mask_name(name), torch.ones_like(p))
        self.apply_masks()

    # -- masks ---------------------------------------------------------------------------------

    def prunable(self) -> dict[str, nn.Parameter]:
        """Weights that block-sparse pruning acts on: the recurrent matrix and the output heads."""
        return {
            "gru.weight_hh_l0": self.gru.weight_hh_l0,
            "o1.weight": self.o1.weight,
            "o2.weight": self.o2.weight,
            "o3.weight": self.o3.weight,
            "o4.weight": self.o4.weight,
        }

    def mask(self, name: str) -> torch.Tensor:
        return getattr(self, _mask_name(name))

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the causal and pruned weights in place (after init, load and each optimiser step)."""
        self.gru.weight_ih_l0.mul_(self.mask_ih)
        for name, p in self.prunable().items():
            p.mul_(self.mask(name))

    def sparsity(self) -> dict[str, float]:
        """Fraction of zero weights per prunable matrix."""
        return {n: float((p == 0).float().mean()) for n, p in self.prunable().items()}

    # -- training ------------------------------------------------------------------------------

    def condition(self, features: torch.Tensor) -> torch.Tensor:
        """[B, frames, n_features] -> [B, frames, cond_channels]."""
        return self.cond_net(features)

    def forward(
        self,
        features: torch.Tensor,
        audio: torch.Tensor,
        h0: torch.Tensor | None = None,
        phase: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits.

        features: [B, frames, n_features]; audio: float [B, frames * hop] (the targets);
        h0: [B, H] or None (zeros). The sample before audio[:, 0] is taken as silence.
        phase: [B, frames * hop] pitch-clock phase aligned to the audio (`features.fundamental_phase`),
        or None for the free-running clock of `excitation`.
        Returns (coarse_logits, fine_logits) of shape [B, T, 256] and the last state [B, H].
        """
        c = self.config
        B, T = audio.shape
        if features.shape[1] * c.hop != T:
            raise ValueError(f"{features.shape[1]} frames x hop {c.hop} != {T} samples")
        coarse, fine = split_coarse_fine(audio)
        prev_c = F.pad(coarse, (1, 0), value=128)[:, :-1]
        prev_f = F.pad(fine, (1, 0), value=0)[:, :-1]
        cond = self.condition(features).repeat_interleave(c.hop, dim=1)
        if phase is None:
            exc = excitation(features, c.hop, c.sample_rate)[0]
        else:
            exc = phase_excitation(features, phase, c.hop)
        bytes_in = [scale_byte(prev_c)[..., None], scale_byte(prev_f)[..., None], scale_byte(coarse)[..., None]]
        x = torch.cat([*bytes_in, exc, cond], -1)
        # masked weights at every call keep the causal mask exact under any optimiser
        weight_ih = self.gru.weight_ih_l0 * self.mask_ih
        weight_hh = self.gru.weight_hh_l0 * self.mask("gru.weight_hh_l0")
        h0 = x.new_zeros(1, B, c.hidden) if h0 is None else h0.unsqueeze(0).contiguous()
        params = [weight_ih, weight_hh, self.gru.bias_ih_l0, self.gru.bias_hh_l0]
        y, hT = torch._VF.gru(x, h0, params, True, 1, 0.0, self.training, False, True)
        hT = hT[0]
        Hh = c.hidden // 2
        return self.coarse_logits(y[..., :Hh]), self.fine_logits(y[..., Hh:]), hT

    def _masked(self, layer: nn.Linear, name: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, layer.weight * self.mask(name), layer.bias)

    def coarse_logits(self, h_coarse: torch.Tensor) -> torch.Tensor:
        """O2 relu(O1 y_c): the coarse softmax's logits from the coarse half of the state."""
        return self._masked(self.o2, "o2.weight", F.relu(self._masked(self.o1, "o1.weight", h_coarse)))

    def fine_logits(self, h_fine: torch.Tensor) -> torch.Tensor:
        """O4 relu(O3 y_f): the fine softmax's logits from the fine half of the state."""
        return self._masked(self.o4, "o4.weight", F.relu(self._masked(self.o3, "o3.weight", h_fine)))

    def loss(
        self,
        features: torch.Tensor,
        audio: torch.Tensor,
        h0: torch.Tensor | None = None,
        phase: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL per sample in nats (coarse + fine) and the last state (arguments as `forward`)."""
        logits_c, logits_f, hT = self(features, audio, h0, phase)
        coarse, fine = split_coarse_fine(audio)
        nll = F.cross_entropy(logits_c.reshape(-1, N_CLASSES), coarse.reshape(-1)) + F.cross_entropy(
            logits_f.reshape(-1, N_CLASSES), fine.reshape(-1)
        )
        return nll, hT

    # -- reference sampling step (the fast samplers must agree with this) ---------------------

    def cond_gates(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame input-gate contribution of the features (bias included): [..., frames, 3H]."""
        w = self.gru.weight_ih_l0[:, N_SAMPLE_INPUTS:]
        return F.linear(self.condition(features), w, self.gru.bias_ih_l0)

    def step(
        self,
        h: torch.Tensor,
        prev_c: torch.Tensor,
        prev_f: torch.Tensor,
        cond_gates: torch.Tensor,
        exc: torch.Tensor,
        draw: torch.Tensor,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One sample for a batch: h [B, H], prev_c/prev_f [B] int, cond_gates [B, 3H], exc [B, 2]
        (this sample's excitation, see `excitation`), draw [B, 2] uniforms in [0, 1) for inverse-CDF
        sampling (coarse, fine); temperature 0 takes the most likely class. Returns (c_t, f_t, h_t)."""
        H = self.config.hidden
        Hh = H // 2
        w_ih = self.gru.weight_ih_l0 * self.mask_ih
        gh = F.linear(h, self.gru.weight_hh_l0 * self.mask("gru.weight_hh_l0"), self.gru.bias_hh_l0)
        gi = cond_gates + scale_byte(prev_c)[:, None] * w_ih[:, 0] + scale_byte(prev_f)[:, None] * w_ih[:, 1]
        gi = gi + exc[:, :1] * w_ih[:, 3] + exc[:, 1:2] * w_ih[:, 4]
        rows_c = _gate_rows(H, 0, Hh, h.device)
        h_c = _gru_cell(gi[:, rows_c], gh[:, rows_c], h[:, :Hh])
        c_t = sample_class(self.coarse_logits(h_c), draw[:, 0], temperature)
        rows_f = _gate_rows(H, Hh, H, h.device)
        gi_f = gi[:, rows_f] + scale_byte(c_t)[:, None] * w_ih[rows_f, 2]
        h_f = _gru_cell(gi_f, gh[:, rows_f], h[:, Hh:])
        f_t = sample_class(self.fine_logits(h_f), draw[:, 1], temperature)
        return c_t, f_t, torch.cat([h_c, h_f], 1)


def frame_f0_hz(features: torch.Tensor) -> torch.Tensor:
    """f0 in Hz of each frame from the normalised log-f0 feature (column 0): midi = 60 + 24 x."""
    return 440.0 * torch.pow(2.0, (60.0 + 24.0 * features[..., 0] - 69.0) / 12.0)


def excitation(
    features: torch.Tensor, hop: int, sample_rate: int, phase0: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample-rate excitation [B, frames * hop, 2] = voicing * (sin, cos) of the f0 phase.

    f0 and voicing (feature columns 0 and 1) are held for each frame; the phase runs on from
    phase0 [B] (0 if None) and the phase after the last sample is returned for streaming. This
    pitch clock is what lets a small, briefly trained GRU follow the keyboard's pitch.
    """
    B, n_frames = features.shape[:2]
    inc = (2 * math.pi / sample_rate) * frame_f0_hz(features.double())  # [B, frames]
    steps = inc.repeat_interleave(hop, dim=1)
    phase = torch.cumsum(steps, 1) - steps  # phase at each sample, starting at 0
    if phase0 is not None:
        phase = phase + phase0.double()[:, None]
    end = (phase[:, -1] + steps[:, -1]) % (2 * math.pi)
    voicing = features[..., 1].clamp(0, 1).repeat_interleave(hop, dim=1)
    exc = torch.stack([torch.sin(phase), torch.cos(phase)], -1).to(features.dtype) * voicing[..., None]
    return exc, end


def phase_excitation(features: torch.Tensor, phase: torch.Tensor, hop: int) -> torch.Tensor:
    """`excitation` from a given per-sample phase [B, frames * hop] (voicing from the frames)."""
    voicing = features[..., 1].clamp(0, 1).repeat_interleave(hop, dim=1)
    phase = phase.to(features.dtype)
    return torch.stack([torch.sin(phase), torch.cos(phase)], -1) * voicing[..., None]


def sample_class(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Inverse-CDF sample of a 256-way softmax with uniforms u [B]; argmax at temperature 0."""
    if temperature <= 0:
        return logits.argmax(-1)
    p = torch.softmax(logits.float() / temperature, -1)
    cdf = p.cumsum(-1)
    return (
        torch.searchsorted(cdf, (u.float() * cdf[:, -1]).unsqueeze(1).contiguous()).squeeze(1).clamp(max=N_CLASSES - 1)
    )


def _mask_name(param: str) -> str:
    return "mask_" + param.replace(".", "_")


def _gate_rows(H: int, lo: int, hi: int, device: torch.device) -> torch.Tensor:
    return torch.cat([torch.arange(g * H + lo, g * H + hi, device=device) for g in range(3)])


def _gru_cell(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """GRU update from input gates gi and recurrent gates gh ([B, 3n] each, order r, z, n)."""
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h
