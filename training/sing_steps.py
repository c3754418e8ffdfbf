"""Per-stage SING training computations (autoencoder, LSTM, end-to-end) and the crop geometry.

Each stage is an ``nn.Module`` whose ``forward`` returns what the optimizer needs, so it can
be wrapped in DistributedDataParallel as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from synth_core.sing.loss import LossConfig, training_loss
from synth_core.sing.model import SING, Decoder, Encoder, SequenceGenerator, SINGConfig

STAGES = ("ae", "lstm", "e2e")


@dataclass(frozen=True)
class CropGeometry:
    """Which latents a crop of ``k`` hops of output needs, derived from the decoder geometry.

    Decoder frame ``j`` (output ``j`` of its first convolution) lands on untrimmed samples
    ``[j * hop, j * hop + frame)``, i.e. trimmed samples ``[j * hop - trim, ...)``. A crop of the
    trimmed note starting at ``offset * hop`` and ``k * hop`` long is fully determined by frames
    ``first_frame(offset) .. + n_frames - 1``, which need ``n_latents`` latent steps from
    ``first_latent(offset)``: decoding just those gives the crop exactly (samples ``lead ..
    lead + k * hop`` of the partial decode).
    """

    config: SINGConfig
    k: int

    def __post_init__(self) -> None:
        c = self.config
        if c.frame % c.hop or (c.trim - c.frame + c.hop) % c.hop or c.note_samples % c.hop:
            raise ValueError("crop needs frame, trim - frame + hop and the note length to be multiples of the hop")
        if self.k * c.hop < c.frame:
            raise ValueError(f"--crop-steps must be at least {c.frame // c.hop} (one STFT frame)")
        if self.max_offset < 0:
            raise ValueError("crop longer than the note")
        if self.first_frame(self.max_offset) + self.n_latents > c.n_steps:
            raise ValueError("crop geometry does not fit the note's latent steps")

    @property
    def samples(self) -> int:
        return self.k * self.config.hop

    @property
    def max_offset(self) -> int:
        """Largest crop start, in hops."""
        return self.config.note_samples // self.config.hop - self.k

    @property
    def frame_shift(self) -> int:
        """first_frame(offset) - offset (2 for the defaults)."""
        c = self.config
        return (c.trim - c.frame + c.hop) // c.hop

    def first_frame(self, offset: int | torch.Tensor) -> int | torch.Tensor:
        """First decoder frame (= first latent step) needed for a crop starting at ``offset`` hops."""
        return offset + self.frame_shift

    @property
    def n_frames(self) -> int:
        return self.k + self.config.frame // self.config.hop - 1

    @property
    def n_latents(self) -> int:
        return self.n_frames + self.config.context - 1

    @property
    def lead(self) -> int:
        """Samples of the partial decode before the exact crop (frame - hop)."""
        return self.config.frame - self.config.hop

    def random_offsets(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.max_offset + 1, (batch,), generator=generator)

    def sounding_offsets(self, wav: torch.Tensor, floor_db: float, generator: torch.Generator) -> torch.Tensor:
        """Crop starts drawn uniformly among windows that reach within ``floor_db`` of the note's loudest hop.

        Notes end in a long release and silence; crops there teach the model little but cost as much as any
        other. A note with no sound at all may be cropped anywhere.
        """
        hop = self.config.hop
        energy = wav.detach().float().cpu().unflatten(1, (-1, hop)).pow(2).mean(dim=2)  # [B, hops]
        peak = energy.max(dim=1, keepdim=True).values
        loud = energy >= peak * 10 ** (-floor_db / 10)
        # A window starting at offset o covers hops o .. o + k - 1: does it hold a loud hop?
        windows = loud.float().unfold(1, self.k, 1).amax(dim=2)[:, : self.max_offset + 1]
        windows[windows.sum(dim=1) == 0] = 1.0
        return torch.multinomial(windows, 1, generator=generator)[:, 0]

    def latent_windows(self, latents: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, C, n_latents], each row starting at its own first latent."""
        starts = self.first_frame(offsets.to(latents.device))
        index = starts[:, None] + torch.arange(self.n_latents, device=latents.device)[None]
        return torch.gather(latents, 2, index[:, None].expand(-1, latents.shape[1], -1))

    def decode(
        self,
        decoder: Decoder,
        windows: torch.Tensor,
        pitch: torch.Tensor | None = None,
        offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode latent windows [B, C, n_latents] -> exact crops [B, k * hop] (``pitch`` and the crops'
        ``offsets`` for a harmonic bank: they set its frequencies and phases)."""
        first = 0 if offsets is None else self.first_frame(offsets.to(windows.device))
        return decoder(windows, pitch, first)[:, self.lead : self.lead + self.samples]

    def target(self, wav: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The matching crops of the (trimmed) notes [B, N] -> [B, k * hop]."""
        hop = self.config.hop
        index = (offsets.to(wav.device) * hop)[:, None] + torch.arange(self.samples, device=wav.device)[None]
        return torch.gather(wav, 1, index)

    def encode(self, encoder: Encoder, wav: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Only the latent window each crop needs, straight from the waveform [B, N]."""
        c = self.config
        padded = F.pad(wav, (c.pad, c.pad))
        span = (self.n_latents - 1) * c.hop + c.frame
        starts = self.first_frame(offsets.to(wav.device)) * c.hop
        index = starts[:, None] + torch.arange(span, device=wav.device)[None]
        seg = torch.gather(padded, 1, index)[:, None]
        x = F.conv1d(seg, encoder.analysis.weight * encoder.window, encoder.analysis.bias, stride=c.hop)
        return encoder.layers(x)


class AutoencoderStage(nn.Module):
    """Stage 1: encoder + decoder, spectral loss against the input note."""

    def __init__(
        self,
        encoder: Encoder,
        decoder: Decoder,
        crop: CropGeometry | None = None,
        loss: LossConfig | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.crop = crop
        self.loss_config = loss or LossConfig()

    def forward(
        self, wav: torch.Tensor, offsets: torch.Tensor | None = None, pitch: torch.Tensor | None = None
    ) -> torch.Tensor:
        c = self.decoder.config
        if self.crop is not None and offsets is not None:
            out = self.crop.decode(self.decoder, self.crop.encode(self.encoder, wav, offsets), pitch, offsets)
            return training_loss(out, self.crop.target(wav, offsets), self.loss_config)
        out = self.decoder(self.encoder(wav), pitch)[:, c.trim : c.trim + wav.shape[1]]
        return training_loss(out, wav, self.loss_config)


class LSTMChunkStage(nn.Module):
    """Stage 2: one truncated-BPTT chunk of the sequence generator (targets are encoder latents)."""

    def __init__(self, generator: SequenceGenerator):
        super().__init__()
        self.generator = generator

    def forward(
        self,
        instrument: torch.Tensor,
        pitch: torch.Tensor,
        velocity: torch.Tensor,
        start: int,
        length: int,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Latents [B, latent, length] for steps start..start+length-1 and the new LSTM state."""
        g = self.generator
        static = g.static_condition(g.instrument_embedding(instrument.long()), pitch, velocity)
        time = g.time_condition(torch.arange(start, start + length, device=static.device))
        x = torch.cat([static[:, None].expand(-1, length, -1), time[None].expand(static.shape[0], -1, -1)], dim=2)
        out, state = g.lstm(x, state)
        return g.output(out).transpose(1, 2), state


class EndToEndStage(nn.Module):
    """Stage 3: sequence generator + decoder, spectral loss against the note."""

    def __init__(self, model: SING, crop: CropGeometry | None = None, loss: LossConfig | None = None):
        super().__init__()
        self.generator = model.generator
        self.decoder = model.decoder
        self.config = model.config
        self.crop = crop
        self.loss_config = loss or LossConfig()

    def forward(
        self,
        instrument: torch.Tensor,
        pitch: torch.Tensor,
        velocity: torch.Tensor,
        wav: torch.Tensor,
        offsets: torch.Tensor | None = None,
        with_audio: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss; with ``with_audio`` also the model's crops (or notes) and the real ones it was compared with
        (for the adversarial term)."""
        c = self.config
        vec = self.generator.instrument_embedding(instrument.long())
        if self.crop is not None and offsets is not None:
            # The LSTM is causal: run it only as far as the latest window needs.
            n = int(self.crop.first_frame(offsets).max()) + self.crop.n_latents
            latents = self.generator(vec, pitch, velocity, n)
            out = self.crop.decode(self.decoder, self.crop.latent_windows(latents, offsets), pitch, offsets)
            target = self.crop.target(wav, offsets)
        else:
            latents = self.generator(vec, pitch, velocity, c.steps_for(wav.shape[1]))
            out = self.decoder(latents, pitch)[:, c.trim : c.trim + wav.shape[1]]
            target = wav
        loss = training_loss(out, target, self.loss_config)
        return (loss, out, target) if with_audio else loss


def tbptt_chunks(n_steps: int, chunk: int = 32) -> list[tuple[int, int]]:
    """(start, length) pairs covering ``n_steps`` in chunks of ``chunk``."""
    return [(s, min(chunk, n_steps - s)) for s in range(0, n_steps, chunk)]
