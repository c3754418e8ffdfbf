"""The adversarial term of a SING fine-tune: small multi-period and multi-resolution discriminators.

SING's spectral loss compares magnitudes per 1024-point frame and never sees how the decoder's overlapping frames
agree in phase, which is where its floor between the harmonics comes from (``assets/MODEL_CARD.md``). A
discriminator sees the waveform: a multi-period one (HiFi-GAN, Kong et al. 2020) looks at samples ``p`` apart,
i.e. at periodic structure; a multi-resolution spectrogram one (UnivNet, Jang et al. 2021) at spectral detail at
several time/frequency trade-offs. Both are sized for a CPU (a few hundred thousand weights) and trained by the
least-squares GAN losses with feature matching, as in HiFi-GAN.

Each pair of crops (the model's and the real one) is divided by the real crop's RMS before the discriminators see
it: the spectral loss already sets the level, so the discriminators judge structure at every velocity alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

LEAK = 0.1
Judgement = tuple[torch.Tensor, list[torch.Tensor]]  # (logits, intermediate features)


class PeriodDiscriminator(nn.Module):
    """Judges the waveform folded into rows of ``period`` samples: 2-D convolutions along the rows."""

    def __init__(self, period: int, channels: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for c in channels:
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), (3, 1), padding=(2, 0))))
            c_in = c
        layers.append(weight_norm(nn.Conv2d(c_in, c_in, (5, 1), 1, padding=(2, 0))))
        self.layers = nn.ModuleList(layers)
        self.head = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> Judgement:
        b, t = wav.shape
        if t % self.period:
            wav = F.pad(wav, (0, self.period - t % self.period), mode="reflect")
        x = wav.view(b, 1, -1, self.period)
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LEAK)
            features.append(x)
        x = self.head(x)
        features.append(x)
        return x.flatten(1), features


class ResolutionDiscriminator(nn.Module):
    """Judges one log-magnitude spectrogram (``n_fft``, hop ``n_fft // 4``) with 2-D convolutions."""

    def __init__(self, n_fft: int, channels: int = 16):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.layers = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
            ]
        )
        self.head = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> Judgement:
        spec = torch.stft(wav, self.n_fft, self.n_fft // 4, window=self.window, center=True, return_complex=True)
        x = torch.log1p(spec.abs()).transpose(1, 2)[:, None]  # [B, 1, frames, bins]
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LEAK)
            features.append(x)
        x = self.head(x)
        features.append(x)
        return x.flatten(1), features


class Discriminators(nn.Module):
    """Every sub-discriminator; ``forward`` returns one judgement each."""

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        ffts: Sequence[int] = (256, 512, 1024),
        width: float = 1.0,
    ):
        super().__init__()
        if not periods and not ffts:
            raise ValueError("the adversarial term needs at least one period or one STFT size")
        period_channels = [max(4, round(c * width)) for c in (16, 32, 64, 128)]
        self.subs = nn.ModuleList(
            [PeriodDiscriminator(p, period_channels) for p in periods]
            + [ResolutionDiscriminator(n, max(4, round(16 * width))) for n in ffts]
        )

    def forward(self, wav: torch.Tensor) -> list[Judgement]:
        return [d(wav) for d in self.subs]


def normalise_pair(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both crops [B, N] divided by the real crop's RMS (see the module doc)."""
    rms = target.detach().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-4)
    return output / rms, target / rms


def discriminator_loss(real: list[Judgement], fake: list[Judgement]) -> torch.Tensor:
    """Least-squares GAN: real crops towards 1, the model's towards 0 (summed over the sub-discriminators)."""
    return sum(((1 - r).pow(2).mean() + f.pow(2).mean()) for (r, _), (f, _) in zip(real, fake, strict=True))


def generator_losses(real: list[Judgement], fake: list[Judgement]) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching): the model's crops judged real, and their features close to the real
    crops' (L1 per layer, averaged over layers and summed over sub-discriminators, as in HiFi-GAN)."""
    adversarial = sum((1 - f).pow(2).mean() for f, _ in fake)
    matching = sum(
        sum((rf.detach() - ff).abs().mean() for rf, ff in zip(r_feats, f_feats, strict=True)) / len(f_feats)
        for (_, r_feats), (_, f_feats) in zip(real, fake, strict=True)
    )
    return adversarial, matching


def parse_sizes(text: str) -> tuple[int, ...]:
    """'2,3,5' -> (2, 3, 5); '' or 'none' -> ()."""
    if not text or text.strip().lower() == "none":
        return ()
    sizes = tuple(int(t) for t in text.split(",") if t.strip())
    if any(s < 2 for s in sizes):
        raise ValueError(f"periods and STFT sizes must be at least 2: {text!r}")
    return sizes
