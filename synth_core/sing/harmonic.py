"""A harmonic bank for SING's decoder: oscillators at the note's pitch and its multiples plus filtered noise.

SING's frame atoms are fixed 1024-sample waveforms: each harmonic's phase must be rebuilt from them frame after
frame, and what a magnitude loss leaves of that is a floor between the harmonics (issue #25, assets/MODEL_CARD.md).
The bank instead sets, per decoder frame, the amplitudes of ``harmonics`` sinusoids at k * f0 (f0 from the
note's MIDI pitch, phases running continuously from the note's first sample) and the gains of ``noise_bands``
bands of noise (DDSP, Engel et al. 2020). Each frame is windowed by the decoder's Hann^2 and overlap-added like
the atoms' frames, so whole-note decoding and hop-by-hop streaming produce the same samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..dsp import midi_to_hz

MAX_HARMONIC = 64.0  # largest amplitude of one harmonic at the training gain (128: about half of full scale)
MAX_NOISE = 8.0  # largest gain of one noise band (unit-variance white noise at 1)
NOISE_ROWS = 509  # frames of fixed noise spectra, cycled (a prime, so voices at other pitches stay apart)


def midi_hz(pitch: torch.Tensor) -> torch.Tensor:
    """Equal-tempered frequency (float64) of MIDI pitches."""
    return midi_to_hz(pitch.double())


def exp_sigmoid(x: torch.Tensor, max_value: float) -> torch.Tensor:
    """DDSP's amplitude nonlinearity: ``max_value * sigmoid(x) ** ln 10``; its log is about linear in ``x`` below
    0, so a log-spectral loss moves quiet and loud partials alike."""
    return max_value * torch.sigmoid(x).pow(math.log(10.0)) + 1e-7


def band_matrix(n_bands: int, n_bins: int) -> torch.Tensor:
    """[n_bands, n_bins] linear interpolation from band gains (centres evenly spaced, ends at 0 and Nyquist) to
    FFT bins."""
    pos = torch.linspace(0, n_bands - 1, n_bins)
    lo = pos.floor().long().clamp(max=n_bands - 1)
    hi = (lo + 1).clamp(max=n_bands - 1)
    w = pos - lo
    m = torch.zeros(n_bands, n_bins)
    m[lo, torch.arange(n_bins)] += 1 - w
    m[hi, torch.arange(n_bins)] += w
    return m


class HarmonicBank(nn.Module):
    """Hidden decoder frames [B, J, channels] -> windowed frames [B, J, frame] of harmonics and noise."""

    def __init__(
        self,
        channels: int,
        harmonics: int,
        noise_bands: int,
        frame: int,
        hop: int,
        sample_rate: int,
        window: torch.Tensor,
        start_db: float = -20.0,
    ):
        super().__init__()
        self.harmonics, self.frame, self.hop, self.sample_rate = harmonics, frame, hop, sample_rate
        # normalised input: the decoder's activations scale with the audio (x128 in training), and an unnormalised
        # bank starts saturated, loud or silent, where exp_sigmoid's gradient vanishes and training cannot move it
        self.norm = nn.LayerNorm(channels)
        self.amp = nn.Linear(channels, harmonics)
        self.noise = nn.Linear(channels, noise_bands) if noise_bands else None
        for layer in (self.amp, self.noise):
            if layer is not None:
                nn.init.normal_(layer.weight, std=1e-3)
                nn.init.constant_(layer.bias, self._logit_for(start_db))
        self._basis_cache: dict[tuple[int, torch.device], torch.Tensor] = {}
        self._hop_cache: dict[tuple[int, torch.device], torch.Tensor] = {}
        self.register_buffer("scale", torch.ones(()))  # the output level: training gain and calibration fold in
        self.register_buffer("window", window.clone(), persistent=False)
        if noise_bands:
            gen = torch.Generator().manual_seed(0)
            z = torch.randn(NOISE_ROWS, frame // 2 + 1, 2, generator=gen) / math.sqrt(2.0)
            self.register_buffer("noise_table", torch.view_as_complex(z), persistent=False)
            self.register_buffer("bands", band_matrix(noise_bands, frame // 2 + 1), persistent=False)

    @staticmethod
    def _logit_for(db: float) -> float:
        """The pre-activation at which :func:`exp_sigmoid` gives ``db`` below its maximum."""
        s = 10 ** (db / 20 / math.log(10.0))
        return math.log(s / (1 - s))

    def basis(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, 2K, frame]: cos then sin of each harmonic over one frame (harmonics at or above Nyquist are 0).

        Kept per MIDI pitch once computed (0.5 MB each for 64 harmonics)."""
        return self._rows(pitch, self.frame, self._basis_cache)

    def hop_rows(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, 2K, hop]: the first hop of :meth:`basis` (what :meth:`harmonic_hop` needs), kept per MIDI pitch
        apart from it (128 kB each for 64 harmonics)."""
        return self._rows(pitch, self.hop, self._hop_cache)

    def _rows(
        self, pitch: torch.Tensor, length: int, cache: dict[tuple[int, torch.device], torch.Tensor]
    ) -> torch.Tensor:
        keys = [int(p) for p in pitch.reshape(-1).tolist()]
        device = self.window.device
        missing = sorted({k for k in keys if (k, device) not in cache})
        if missing:
            fresh = self._compute_rows(torch.tensor(missing, device=device), length)
            for k, rows in zip(missing, fresh, strict=True):
                cache[(k, device)] = rows
        return torch.stack([cache[(k, device)] for k in keys])

    def _compute_rows(self, pitch: torch.Tensor, length: int) -> torch.Tensor:
        f0 = midi_hz(pitch.to(self.window.device))
        k = torch.arange(1, self.harmonics + 1, dtype=torch.float64, device=f0.device)
        freq = f0[:, None] * k[None]  # [B, K]
        n = torch.arange(length, dtype=torch.float64, device=f0.device)
        cycles = torch.frac(freq[:, :, None] / self.sample_rate * n[None, None])
        audible = (freq < 0.5 * self.sample_rate).float()[:, :, None]
        angle = (2 * math.pi * cycles).float()  # (in [0, 2 pi): float32 keeps 1e-6 rad)
        return torch.cat([angle.cos(), angle.sin()], 1) * audible.repeat(1, 2, 1)

    def frames(
        self,
        hidden: torch.Tensor,
        pitch: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """Frames [B, J, frame] for hidden [B, J, C] of notes at MIDI ``pitch`` [B]; ``index`` [B, J] is each
        frame's number from the note's first (its phase)."""
        basis = self.basis(pitch)
        angle = self._start_phase(pitch, index)  # [B, J, K]
        hidden = self.norm(hidden.float())
        amp = self.amplitudes(hidden, normed=True)
        # sin(a + b) = sin a cos b + cos a sin b, with a the phase at the frame's start and b within the frame
        coef = torch.cat([amp * angle.sin().float(), amp * angle.cos().float()], 2)
        out = torch.bmm(coef, basis)
        if self.noise is not None:
            out = out + self._noise(hidden, pitch, index)
        return out * self.window

    def _start_phase(self, pitch: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Each harmonic's phase (radians, float64) at the start of frame / hop ``index`` ([B] or [B, J]) of notes
        at MIDI ``pitch`` [B]: [*index.shape, K]."""
        f0 = midi_hz(pitch.to(index.device)).view(-1, *[1] * (index.dim() - 1))
        k = torch.arange(1, self.harmonics + 1, dtype=torch.float64, device=index.device)
        start = torch.frac(f0 * self.hop / self.sample_rate * index.double())  # cycles at the start
        return 2 * math.pi * torch.frac(start[..., None] * k)

    def amplitudes(self, hidden: torch.Tensor, normed: bool = False) -> torch.Tensor:
        """Harmonic amplitudes [..., K] of hidden frames [..., C]."""
        if not normed:
            hidden = self.norm(hidden.float())
        return exp_sigmoid(self.amp(hidden), MAX_HARMONIC) * self.scale

    def _noise(self, hidden: torch.Tensor, pitch: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        gains = exp_sigmoid(self.noise(hidden), MAX_NOISE) * self.scale
        rows = (index + pitch.to(index.device).long()[:, None] * 37) % NOISE_ROWS
        spectrum = self.noise_table[rows] * (gains @ self.bands)
        return torch.fft.irfft(spectrum, n=self.frame, norm="ortho")

    def noise_frames(
        self, hidden: torch.Tensor, pitch: torch.Tensor, index: torch.Tensor, normed: bool = False
    ) -> torch.Tensor:
        """The noise part of :meth:`frames` alone (zeros without noise bands): [B, J, frame]."""
        if self.noise is None:
            return hidden.new_zeros(*hidden.shape[:2], self.frame)
        if not normed:
            hidden = self.norm(hidden.float())
        return self._noise(hidden, pitch, index) * self.window

    def harmonic_hop(
        self,
        amps: torch.Tensor,
        pitch: torch.Tensor,
        index: torch.Tensor,
        rows: torch.Tensor | None = None,
        row_of: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The harmonics' share of one overlap-added hop [B, hop] (what a streamer emits each step): ``amps``
        [B, frame // hop, K] are the amplitudes of the frames overlapping the hop, the newest (frame ``index`` [B],
        whose first hop this is) first; ``rows`` are the notes' :meth:`hop_rows` (looked up when not given), or
        with ``row_of`` [B] rows [R, 2K, hop] of which note b uses ``row_of[b]`` (a streamer's slots: no copy).

        The same samples as overlap-adding :meth:`frames` (to float32 rounding of the phases, about -90 dB): a
        harmonic's phase depends only on the sample's place in the note, so each frame's share is its amplitudes
        times the hop's oscillators (the rows, turned to the hop's starting phase) under its quarter of the window.
        One small batched matmul: this runs in the engine's worker for every step."""
        quarters = amps.shape[1]
        if rows is None:
            if row_of is not None:
                raise ValueError("row_of needs the rows it indexes")
            rows = self.hop_rows(pitch)
        angle = self._start_phase(pitch, index.to(amps.device)).float()  # [B, K]
        # sin(a + b) = sin a cos b + cos a sin b, with a the phase at the hop's start and b within the hop
        coef = torch.cat([amps * angle.sin()[:, None], amps * angle.cos()[:, None]], 2)  # [B, quarters, 2K]
        w = self.window.view(-1, self.hop)[:quarters]
        if row_of is None:
            return torch.einsum("bqn,qn->bn", torch.bmm(coef, rows), w)
        spread = coef.new_zeros(rows.shape[0], *coef.shape[1:])
        spread[row_of] = coef
        return torch.einsum("bqn,qn->bn", torch.bmm(spread, rows)[row_of], w)
