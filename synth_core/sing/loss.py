"""SING's spectral loss: L1 between log(1 + |STFT|^2) of output and target."""

from __future__ import annotations

import torch
from torch import nn


def log_power_spectrogram(wav: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """log(1 + |X|^2) with a Hann window and no centering: [B, n_fft // 2 + 1, frames].

    Half-precision input (bf16 autocast) is computed in fp32: the FFTs do not take bf16.
    """
    if wav.dtype in (torch.float16, torch.bfloat16):
        wav = wav.float()
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, n_fft, hop_length=hop, window=window, center=False, return_complex=True)
    return torch.log1p(spec.real.square() + spec.imag.square())


def spectral_l1(output: torch.Tensor, target: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """Mean L1 distance between log-power spectrograms (scalar)."""
    return (log_power_spectrogram(output, n_fft, hop) - log_power_spectrogram(target, n_fft, hop)).abs().mean()


class SpectralLoss(nn.Module):
    """Module form of :func:`spectral_l1`."""

    def __init__(self, n_fft: int = 1024, hop: int = 256):
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return spectral_l1(output.float(), target.float(), self.n_fft, self.hop)
