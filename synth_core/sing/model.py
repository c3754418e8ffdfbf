"""The SING model: embeddings -> LSTM sequence generator -> convolutional decoder.

Sizes follow ``shared/REFERENCE.md`` by default (LSTM 3 x 1024, latent 128, decoder 4096
channels, 1024-sample Hann^2 frames with hop 256); every size is configurable and saved
in checkpoints through :class:`SINGConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from .harmonic import HarmonicBank

#: The velocities NSynth was recorded at; the velocity embedding has one row per value.
NSYNTH_VELOCITIES: tuple[int, ...] = (25, 50, 75, 100, 127)
N_PITCHES = 121  # MIDI 0..120


@dataclass
class SINGConfig:
    """Every size of a SING model. Saved with checkpoints."""

    n_instruments: int = 1006
    instrument_dim: int = 16
    pitch_dim: int = 8
    velocity_dim: int = 2
    time_dim: int = 4
    lstm_hidden: int = 1024
    lstm_layers: int = 3
    latent_dim: int = 128
    decoder_channels: int = 4096
    context: int = 9  # kernel of the decoder's first convolution, in latent steps
    frame: int = 1024  # samples per decoded frame
    hop: int = 256  # samples between frames
    sample_rate: int = 16000
    note_samples: int = 64000  # 4 s at 16 kHz
    # The decoder's last activation is a PReLU (per-channel slope on the negative side) instead of a ReLU: the
    # synthesis layer gets signed weights for its frame atoms. With non-negative ones (a ReLU), 512 atoms cannot
    # build a note's phases and spread a floor between its harmonics (assets/MODEL_CARD.md, issue #25).
    signed_synthesis: bool = False
    # A harmonic bank beside the frame atoms (issue #25): ``harmonics`` oscillators at the note's pitch and its
    # multiples, with ``noise_bands`` bands of filtered noise, whose amplitudes the decoder's last layer sets per
    # frame; ``atoms`` False leaves the bank alone. 0 harmonics: SING's decoder as published.
    harmonics: int = 0
    noise_bands: int = 0
    atoms: bool = True

    @property
    def input_dim(self) -> int:
        return self.instrument_dim + self.pitch_dim + self.velocity_dim + self.time_dim

    @property
    def pad(self) -> int:
        """Zeros added to each side of a note before encoding (2304 for the defaults)."""
        return self.frame + (self.context // 2) * self.hop + self.hop

    @property
    def trim(self) -> int:
        """Samples dropped from each side of the decoder's output."""
        return self.pad - (self.context // 2) * self.hop

    @property
    def n_steps(self) -> int:
        """Latent steps for a whole note (265 for a 4 s note at 16 kHz)."""
        return self.steps_for(self.note_samples)

    def steps_for(self, n_samples: int) -> int:
        """Latent steps needed to decode ``n_samples`` (a multiple of the hop)."""
        if n_samples % self.hop:
            raise ValueError(f"length {n_samples} is not a multiple of the hop {self.hop}")
        return (n_samples + 2 * self.pad - self.frame) // self.hop + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SINGConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown SING config keys: {sorted(unknown)}")
        return cls(**data)


SIGNED_INIT = 0.25  # a new model's PReLU slopes (He et al.'s default); a trained model switches at 0 (make_signed)


def hann_squared(length: int) -> torch.Tensor:
    """Periodic Hann window, squared: constant overlap-add at 75% overlap."""
    return torch.hann_window(length, periodic=True, dtype=torch.float64).pow(2).float()


def velocity_weights(velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Piecewise-linear interpolation indices/weights over the NSynth velocity grid.

    Any MIDI velocity 1..127 maps between its two neighbouring NSynth velocities, so the
    five learned rows give a continuous control; grid values map exactly onto one row.
    """
    grid = torch.tensor(NSYNTH_VELOCITIES, dtype=torch.float32, device=velocity.device)
    v = velocity.float().clamp(grid[0], grid[-1])
    hi = torch.searchsorted(grid, v, right=False).clamp(1, len(grid) - 1)
    lo = hi - 1
    w = (v - grid[lo]) / (grid[hi] - grid[lo])
    return lo, hi, w


class SequenceGenerator(nn.Module):
    """Embeddings + LSTM + linear projection to one latent vector per hop."""

    def __init__(self, config: SINGConfig):
        super().__init__()
        c = config
        self.config = c
        self.instrument_embedding = nn.Embedding(c.n_instruments, c.instrument_dim)
        self.pitch_embedding = nn.Embedding(N_PITCHES, c.pitch_dim)
        self.velocity_embedding = nn.Embedding(len(NSYNTH_VELOCITIES), c.velocity_dim)
        self.time_embedding = nn.Embedding(c.n_steps, c.time_dim)
        self.lstm = nn.LSTM(c.input_dim, c.lstm_hidden, num_layers=c.lstm_layers, batch_first=True)
        self.output = nn.Linear(c.lstm_hidden, c.latent_dim)

    def static_condition(
        self, instrument_vec: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor
    ) -> torch.Tensor:
        """Concatenate instrument vector [B, 16], pitch [B] and velocity [B] embeddings."""
        lo, hi, w = velocity_weights(velocity)
        table = self.velocity_embedding.weight
        vel = table[lo] * (1 - w)[:, None] + table[hi] * w[:, None]
        return torch.cat([instrument_vec, self.pitch_embedding(pitch.long()), vel], dim=1)

    def time_condition(self, steps: torch.Tensor) -> torch.Tensor:
        """Time embeddings; steps past the learned range reuse the last one."""
        return self.time_embedding(steps.clamp(max=self.config.n_steps - 1))

    def inputs(self, static: torch.Tensor, n_steps: int) -> torch.Tensor:
        """LSTM inputs [B, T, input_dim] for a whole note."""
        steps = torch.arange(n_steps, device=static.device)
        time = self.time_condition(steps)[None].expand(static.shape[0], -1, -1)
        return torch.cat([static[:, None].expand(-1, n_steps, -1), time], dim=2)

    def forward(
        self,
        instrument_vec: torch.Tensor,
        pitch: torch.Tensor,
        velocity: torch.Tensor,
        n_steps: int | None = None,
    ) -> torch.Tensor:
        """Latents [B, latent_dim, T]."""
        static = self.static_condition(instrument_vec, pitch, velocity)
        x = self.inputs(static, n_steps or self.config.n_steps)
        out, _ = self.lstm(x)
        return self.output(out).transpose(1, 2)


class Decoder(nn.Module):
    """Latents [B, 128, T] -> waveform frames overlap-added by a Hann^2-windowed transposed conv."""

    def __init__(self, config: SINGConfig):
        super().__init__()
        c = config
        self.config = c
        self.layers = nn.Sequential(
            nn.Conv1d(c.latent_dim, c.decoder_channels, c.context),
            nn.ReLU(),
            nn.Conv1d(c.decoder_channels, c.decoder_channels, 1),
            nn.ReLU(),
            nn.Conv1d(c.decoder_channels, c.decoder_channels, 1),
            nn.PReLU(c.decoder_channels, init=SIGNED_INIT) if c.signed_synthesis else nn.ReLU(),
        )
        self.synthesis = nn.ConvTranspose1d(c.decoder_channels, 1, c.frame, stride=c.hop)
        self.register_buffer("window", hann_squared(c.frame), persistent=False)
        self.bank = self._new_bank() if c.harmonics else None

    def _new_bank(self, start_db: float = -20.0) -> HarmonicBank:
        c = self.config
        return HarmonicBank(
            c.decoder_channels, c.harmonics, c.noise_bands, c.frame, c.hop, c.sample_rate, self.window, start_db
        )

    @torch.no_grad()
    def add_bank(self, harmonics: int, noise_bands: int = 0, atoms: bool = True, start_db: float = -60.0) -> None:
        """Give a trained decoder a harmonic bank (:mod:`.harmonic`), starting ``start_db`` below its largest
        amplitude (-60 dB: the model plays as before); ``atoms`` False drops the frame atoms."""
        c = self.config  # (the model's config object: checkpoints record it)
        c.harmonics, c.noise_bands, c.atoms = harmonics, noise_bands, atoms
        weight = self.synthesis.weight
        self.bank = self._new_bank(start_db).to(weight.device)

    @torch.no_grad()
    def scale_output(self, factor: float) -> None:
        """Multiply every output sample by ``factor``: the synthesis layer is linear, so its weight and bias
        scale exactly (training gains and level calibrations are folded in this way)."""
        self.synthesis.weight *= factor
        self.synthesis.bias *= factor
        if self.bank is not None:
            self.bank.scale *= factor

    @torch.no_grad()
    def make_signed(self) -> None:
        """Switch to a signed synthesis input (``SINGConfig.signed_synthesis``) without changing the output: a
        PReLU whose slopes start at 0 is the ReLU it replaces; the slopes then learn."""
        if isinstance(self.layers[-1], nn.PReLU):
            return
        weight = self.layers[-2].weight
        self.layers[-1] = nn.PReLU(self.config.decoder_channels, init=0.0).to(weight.device, weight.dtype)
        self.config.signed_synthesis = True  # (the model's config object: checkpoints record it)

    def last_slope(self) -> torch.Tensor | None:
        """The last activation's negative-side slopes [channels] (``None``: a ReLU)."""
        act = self.layers[-1]
        return act.weight if isinstance(act, nn.PReLU) else None

    def frame_weight(self) -> torch.Tensor:
        """Windowed synthesis kernel [channels, 1, frame]."""
        return self.synthesis.weight * self.window

    def forward(
        self, latents: torch.Tensor, pitch: torch.Tensor | None = None, first_frame: int | torch.Tensor = 0
    ) -> torch.Tensor:
        """Waveform [B, (T - context + 1) * hop + frame - hop], untrimmed.

        With a harmonic bank the notes' MIDI ``pitch`` [B] is needed, and ``first_frame`` (an int or [B]) numbers
        the first frame from the note's start (a crop's), which sets the harmonics' phases."""
        c = self.config
        if self.bank is None:
            hidden = self.layers(latents)
            wav = F.conv_transpose1d(hidden, self.frame_weight(), self.synthesis.bias, stride=c.hop)
            return wav[:, 0]
        frames = self.frames(latents, pitch, first_frame)
        n = frames.shape[1]
        span = (n - 1) * c.hop + c.frame
        wav = F.fold(frames.transpose(1, 2), (1, span), (1, c.frame), stride=(1, c.hop)).view(-1, span)
        return wav + self.synthesis.bias

    def _bank_frames(
        self, hidden: torch.Tensor, pitch: torch.Tensor | None, first_frame: int | torch.Tensor
    ) -> torch.Tensor:
        if pitch is None:
            raise ValueError("a decoder with a harmonic bank needs the notes' pitches")
        b, _, n = hidden.shape
        first = torch.as_tensor(first_frame, device=hidden.device).reshape(-1).expand(b)
        index = first[:, None] + torch.arange(n, device=hidden.device)[None]
        return self.bank.frames(hidden.transpose(1, 2), torch.as_tensor(pitch, device=hidden.device), index)

    def frames(
        self, latents: torch.Tensor, pitch: torch.Tensor | None = None, first_frame: int | torch.Tensor = 0
    ) -> torch.Tensor:
        """One windowed frame per context window: [B, T - context + 1, frame].

        Overlap-adding the frames (hop apart) plus ``synthesis.bias`` once per sample
        gives :meth:`forward`.
        """
        if self.bank is None:
            return self.layers(latents).transpose(1, 2) @ self.frame_weight()[:, 0]
        # the bank reads the last layer before its activation: dense and signed (the ReLU's outputs the atoms take
        # are sparse, a few % of channels non-zero, which a new bank learns from slowly)
        pre = self.layers[:-1](latents)
        out = self._bank_frames(pre, pitch, first_frame)
        if self.config.atoms:
            out = out + self.layers[-1](pre).transpose(1, 2) @ self.frame_weight()[:, 0]
        return out


class Encoder(nn.Module):
    """Waveform -> latents, for autoencoder pre-training (stage 1)."""

    def __init__(self, config: SINGConfig):
        super().__init__()
        c = config
        self.config = c
        self.analysis = nn.Conv1d(1, c.decoder_channels, c.frame, stride=c.hop)
        self.layers = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(c.decoder_channels, c.decoder_channels, 1),
            nn.ReLU(),
            nn.Conv1d(c.decoder_channels, c.decoder_channels, 1),
            nn.ReLU(),
            nn.Conv1d(c.decoder_channels, c.latent_dim, 1),
        )
        self.register_buffer("window", hann_squared(c.frame), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, N] (N a multiple of the hop) -> latents [B, latent_dim, steps_for(N)]."""
        padded = F.pad(wav[:, None], (self.config.pad, self.config.pad))
        x = F.conv1d(padded, self.analysis.weight * self.window, self.analysis.bias, stride=self.config.hop)
        return self.layers(x)


class SING(nn.Module):
    """Sequence generator + decoder: (instrument, pitch, velocity) -> 4 s waveform."""

    def __init__(self, config: SINGConfig):
        super().__init__()
        self.config = config
        self.generator = SequenceGenerator(config)
        self.decoder = Decoder(config)

    @property
    def instrument_table(self) -> torch.Tensor:
        """Learned instrument embeddings [n_instruments, instrument_dim]."""
        return self.generator.instrument_embedding.weight

    def instrument_vectors(self, instrument: torch.Tensor) -> torch.Tensor:
        return self.generator.instrument_embedding(instrument.long())

    def decode(
        self, latents: torch.Tensor, n_samples: int | None = None, pitch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decode latents and trim to the note (``n_samples`` defaults to the full length; ``pitch`` [B], MIDI, is
        needed by a harmonic bank)."""
        wav = self.decoder(latents, pitch)
        trim = self.config.trim
        n = n_samples if n_samples is not None else wav.shape[1] - 2 * trim
        return wav[:, trim : trim + n]

    def forward(
        self,
        instrument: torch.Tensor,
        pitch: torch.Tensor,
        velocity: torch.Tensor,
        instrument_vec: torch.Tensor | None = None,
        n_samples: int | None = None,
    ) -> torch.Tensor:
        """Whole notes [B, n_samples] from ids (or explicit instrument vectors)."""
        n = n_samples or self.config.note_samples
        vec = instrument_vec if instrument_vec is not None else self.instrument_vectors(instrument)
        latents = self.generator(vec, pitch, velocity, self.config.steps_for(n))
        return self.decode(latents, n, pitch)

    @torch.no_grad()
    def generate(
        self,
        instrument_vec: torch.Tensor,
        pitch: torch.Tensor,
        velocity: torch.Tensor,
        n_samples: int | None = None,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Batched offline generation in eval mode; returns [B, n_samples] on the model's device."""
        outs = []
        for i in range(0, len(pitch), batch_size):
            sl = slice(i, i + batch_size)
            outs.append(self(None, pitch[sl], velocity[sl], instrument_vec=instrument_vec[sl], n_samples=n_samples))
        return torch.cat(outs)

    def add_instruments(self, n_new: int, init: torch.Tensor | None = None) -> None:
        """Grow the instrument table by ``n_new`` rows, keeping the existing rows unchanged.

        New rows start at ``init`` (e.g. the mean of the table) or at the table's mean.
        """
        old = self.generator.instrument_embedding
        table = old.weight.data
        fresh = init if init is not None else table.mean(0, keepdim=True).expand(n_new, -1)
        new = nn.Embedding(table.shape[0] + n_new, table.shape[1]).to(table.device, table.dtype)
        new.weight.data.copy_(torch.cat([table, fresh.to(table)]))
        self.generator.instrument_embedding = new
        self.config.n_instruments += n_new

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
