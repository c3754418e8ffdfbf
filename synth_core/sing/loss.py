"""SING's spectral loss: L1 between log(1 + |STFT|^2) of output and target."""

from __future__ import annotations

import torch
from torch import nn


def power_spectrogram(wav: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """|X|^2 with a Hann window and no centering: [B, n_fft // 2 + 1, frames].

    Half-precision input (bf16 autocast) is computed in fp32: the FFTs do not take bf16.
    """
    if wav.dtype in (torch.float16, torch.bfloat16):
        wav = wav.float()
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, n_fft, hop_length=hop, window=window, center=False, return_complex=True)
    return spec.real.square() + spec.imag.square()


def log_power_spectrogram(wav: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """log(1 + |X|^2): [B, n_fft // 2 + 1, frames]."""
    return torch.log1p(power_spectrogram(wav, n_fft, hop))


def spectral_l1(output: torch.Tensor, target: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """Mean L1 distance between log-power spectrograms (scalar)."""
    return (log_power_spectrogram(output, n_fft, hop) - log_power_spectrogram(target, n_fft, hop)).abs().mean()


def training_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    level_weight: float = 0.0,
    n_fft: int = 1024,
    hop: int = 256,
    extra_ffts: tuple[int, ...] = (),
) -> torch.Tensor:
    """SING's spectral L1, plus ``level_weight`` times the L1 between log(1 + frame energy) of output and target,
    plus the spectral L1 at each of ``extra_ffts`` (hop n_fft / 4), a multi-resolution term.

    The level term compares each STFT frame's total power (the loudness envelope, in nats): the spectral L1
    alone leaves a model whose spectra are still blurred well below its targets' level. Longer FFTs resolve the
    harmonics of low notes from the decoder's hop-rate comb (62.5 Hz at 16 kHz).
    """
    out, tgt = power_spectrogram(output, n_fft, hop), power_spectrogram(target, n_fft, hop)
    loss = (torch.log1p(out) - torch.log1p(tgt)).abs().mean()
    if level_weight:
        loss = loss + level_weight * (torch.log1p(out.sum(1)) - torch.log1p(tgt.sum(1))).abs().mean()
    for size in extra_ffts:
        loss = loss + spectral_l1(output, target, size, size // 4)
    return loss


class SpectralLoss(nn.Module):
    """Module form of :func:`spectral_l1`."""

    def __init__(self, n_fft: int = 1024, hop: int = 256):
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return spectral_l1(output.float(), target.float(), self.n_fft, self.hop)
