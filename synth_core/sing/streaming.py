"""Hop-by-hop SING generation for real-time voices.

The LSTM is stepped by a hand-written cell (one fused matmul per layer; ``nn.LSTM`` called
one step at a time is far slower), the decoder computes one 1024-sample frame per latent
step from the last ``context`` latents, and frames are overlap-added; every call emits the
next 256 finished samples of each voice. The output equals whole-note generation.

Voices live in slots of one batch so that polyphony costs one matmul per layer per hop.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .model import SING


class LSTMCellStack:
    """Stacked LSTM cells sharing the weights of an ``nn.LSTM`` (gate order i, f, g, o)."""

    def __init__(self, lstm: nn.LSTM, dtype: torch.dtype = torch.float32):
        self.layers = []
        for k in range(lstm.num_layers):
            w_ih = getattr(lstm, f"weight_ih_l{k}").detach()
            w_hh = getattr(lstm, f"weight_hh_l{k}").detach()
            bias = (getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")).detach()
            self.layers.append((torch.cat([w_ih, w_hh], 1).t().contiguous().to(dtype), bias.to(dtype)))
        self.dtype = dtype

    def step(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step. x [B, in], h/c [L, B, H] -> (top output [B, H], new h, new c)."""
        hs, cs = [], []
        inp = x.to(self.dtype)
        for k, (weight, bias) in enumerate(self.layers):
            gates = torch.addmm(bias, torch.cat([inp, h[k].to(self.dtype)], 1), weight).float()
            i, f, g, o = gates.chunk(4, 1)
            ck = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
            hk = torch.sigmoid(o) * torch.tanh(ck)
            hs.append(hk)
            cs.append(ck)
            inp = hk.to(self.dtype)
        return hs[-1], torch.stack(hs), torch.stack(cs)


class StreamWeights:
    """The model's weights laid out for hop-by-hop generation, in one dtype."""

    @torch.no_grad()
    def __init__(self, model: SING, dtype: torch.dtype, cells: bool = True):
        c = model.config
        self.dtype = dtype
        self.cells = LSTMCellStack(model.generator.lstm, dtype) if cells else None  # for hop-by-hop steps
        lstm = model.generator.lstm
        self.lstm = lstm if dtype == torch.float32 else copy.deepcopy(lstm).to(dtype)  # for whole warm-ups
        out = model.generator.output
        self.out_w = out.weight.detach().t().contiguous().to(dtype)
        self.out_b = out.bias.detach().to(dtype)
        conv0, conv1, conv2 = (model.decoder.layers[i] for i in (0, 2, 4))
        # conv weight [C, latent, context] -> [context * latent, C] matching history [S, context, latent]
        self.w0 = conv0.weight.detach().permute(2, 1, 0).reshape(-1, c.decoder_channels).contiguous().to(dtype)
        self.b0 = conv0.bias.detach().to(dtype)
        self.w1 = conv1.weight.detach()[:, :, 0].t().contiguous().to(dtype)
        self.b1 = conv1.bias.detach().to(dtype)
        self.w2 = conv2.weight.detach()[:, :, 0].t().contiguous().to(dtype)
        self.b2 = conv2.bias.detach().to(dtype)
        slope = model.decoder.last_slope()
        self.slope = None if slope is None else slope.detach().to(dtype)
        self.ws = model.decoder.frame_weight().detach()[:, 0].contiguous().to(dtype) if c.atoms else None
        self.bs = model.decoder.synthesis.bias.detach().to(dtype)
        self.bank = model.decoder.bank  # (float32 whatever ``dtype``: its phases need the precision)

    def frame(self, hist: torch.Tensor) -> torch.Tensor:
        """Decoded 1024-sample frames [B, frame] or [B, J, frame] (float32) from latent windows [B, context, latent]
        or [B, J, context, latent] of a decoder without a harmonic bank (with one: :meth:`parts`)."""
        if self.bank is not None:
            raise ValueError("a harmonic bank's frames stream through parts() and HarmonicBank.harmonic_hop")
        return self._atoms(self._pre(hist), hist.shape[:-2])

    def _pre(self, hist: torch.Tensor) -> torch.Tensor:
        x = hist.reshape(-1, hist.shape[-2] * hist.shape[-1]).to(self.dtype)
        x = torch.relu(torch.addmm(self.b0, x, self.w0))
        x = torch.relu(torch.addmm(self.b1, x, self.w1))
        return torch.addmm(self.b2, x, self.w2)

    def _atoms(self, pre: torch.Tensor, shape: torch.Size) -> torch.Tensor | int:
        if self.ws is None:
            return 0
        x = torch.relu(pre) if self.slope is None else F.prelu(pre, self.slope)
        return (x @ self.ws).float().view(*shape, -1)

    def parts(
        self, hist: torch.Tensor, pitch: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor | int, torch.Tensor]:
        """With a harmonic bank: the frames [B, frame] or [B, J, frame] of atoms and noise from latent windows
        ``hist`` (as for :meth:`frame`) of notes at MIDI ``pitch`` [B], frame ``index`` [B] or [B, J], and the
        harmonics' amplitudes [B, K] or [B, J, K], which :meth:`.HarmonicBank.harmonic_hop` turns into samples
        (the bank reads the last layer before its activation, as Decoder.frames)."""
        shape = hist.shape[:-2]
        b = shape[0]
        pre = self._pre(hist).float()
        normed = self.bank.norm(pre).view(b, -1, pre.shape[1])
        noise = self.bank.noise_frames(normed, pitch, index.view(b, -1), normed=True)
        amps = self.bank.amplitudes(normed, normed=True)
        return self._atoms(pre, shape) + noise.view(*shape, -1), amps.view(*shape, -1)


class WarmUp(NamedTuple):
    """New notes' state after their warm-up (:meth:`SingStreamer._warm_batch`)."""

    h: torch.Tensor  # LSTM state [L, N, H]
    c: torch.Tensor
    history: torch.Tensor  # the last ``context`` latents [N, context, latent]
    ola: torch.Tensor  # overlap-add buffer [N, frame]
    first: torch.Tensor  # the first hop of output [N, hop]
    amp_hist: torch.Tensor | None  # with a harmonic bank: the frames' amplitudes a step needs [N, frame/hop - 1, K]
    hop_rows: torch.Tensor | None  # and the notes' HarmonicBank.hop_rows [N, 2K, hop]


class SingStreamer:
    """A fixed number of voice slots stepped together, one hop (256 samples) per call.

    ``warmup_dtype`` (default: ``dtype``) runs the warm-up of new notes in another precision: bf16 on a CPU
    with native bf16 matmuls halves a chord's note-on latency, at the cost of a deviation of about -40 dB
    (relative) in the note's first 0.1 s that fades below -100 dB within a second (bench/RESULTS.md).
    """

    def __init__(
        self,
        model: SING,
        max_voices: int = 32,
        dtype: torch.dtype = torch.float32,
        warmup_dtype: torch.dtype | None = None,
    ):
        model.eval()
        c = model.config
        self.model = model
        self.config = c
        self.max_voices = max_voices
        dev = next(model.parameters()).device
        self.device = dev
        self.dtype = dtype
        self.weights = StreamWeights(model, dtype)
        warmup_dtype = warmup_dtype or dtype
        self.warmup = self.weights if warmup_dtype == dtype else StreamWeights(model, warmup_dtype, cells=False)
        S, L, H = max_voices, c.lstm_layers, c.lstm_hidden
        self.static = torch.zeros(S, c.input_dim - c.time_dim, device=dev)
        self.h = torch.zeros(L, S, H, device=dev)
        self.c = torch.zeros(L, S, H, device=dev)
        self.history = torch.zeros(S, c.context, c.latent_dim, device=dev)
        self.ola = torch.zeros(S, c.frame, device=dev)
        self.t = torch.zeros(S, dtype=torch.long, device=dev)
        self.pitch = torch.zeros(S, dtype=torch.long, device=dev)
        bank = model.decoder.bank
        # a harmonic bank's amplitudes of the last frames but one, newest first: the warm-up and each step add the
        # harmonics of the frames overlapping their hop from each slot's oscillators over one hop (hop_rows)
        older = c.frame // c.hop - 1  # frames overlapping a hop besides its newest
        self.amp_hist = None if bank is None else torch.zeros(S, older, bank.harmonics, device=dev)
        # and each slot's oscillators over one hop (HarmonicBank.hop_rows, copied at note-on; 128 kB a slot)
        self.hop_rows = None if bank is None else torch.zeros(S, 2 * bank.harmonics, c.hop, device=dev)
        self.time_limit = torch.full((S,), 1 << 30, dtype=torch.long, device=dev)
        self.first = torch.zeros(S, c.hop, device=dev)  # a new note's first hop, computed by its warm-up
        self.pending: set[int] = set()  # slots whose next step returns ``first``
        self.lead = c.trim // c.hop  # frames computed before the first block is final (5)
        self._first_frame = max(0, self.lead + 1 - -(-c.frame // c.hop))  # the first frame reaching output sample 0
        self._warm_steps = torch.arange(c.context + self.lead, device=dev)[None]

    @torch.no_grad()
    def start(
        self,
        slot: int,
        instrument_vec: torch.Tensor,
        pitch: int,
        velocity: float,
        sustain_step: int | None = None,
    ) -> None:
        """Begin a note in ``slot`` and run the warm-up so the next :meth:`step` emits sample 0.

        ``sustain_step`` freezes the time embedding at that step (for notes held past
        the model's note length); ``None`` follows the learned time course.
        """
        self.start_many([slot], instrument_vec[None], [pitch], [velocity], [sustain_step])

    @torch.no_grad()
    def start_many(
        self,
        slots: Sequence[int],
        instrument_vecs: torch.Tensor,
        pitches: Sequence[int],
        velocities: Sequence[float],
        sustain_steps: Sequence[int | None] | None = None,
    ) -> None:
        """Start several notes at once (their warm-ups share one batch; the warm-up also computes each note's
        first hop, which the next :meth:`step` returns)."""
        slots = list(slots)
        self.pending.difference_update(slots)
        idx = torch.as_tensor(slots, dtype=torch.long, device=self.device)
        gen = self.model.generator
        static = gen.static_condition(
            instrument_vecs.to(self.device).float(),
            torch.as_tensor(list(pitches), device=self.device),
            torch.as_tensor(list(velocities), dtype=torch.float32, device=self.device),
        )
        self.static[idx] = static
        self.pitch[idx] = torch.as_tensor(list(pitches), dtype=torch.long, device=self.device)
        limits = [(1 << 30) if s is None else int(s) for s in (sustain_steps or [None] * len(idx))]
        self.time_limit[idx] = torch.as_tensor(limits, dtype=torch.long, device=self.device)
        self._warm_up(idx)
        self.pending.update(slots)

    @torch.no_grad()
    def set_vectors(self, slots: Sequence[int], instrument_vecs: torch.Tensor) -> None:
        """Sounding notes continue with new instrument vectors [len(slots), dim] from their next latent step (an MPE
        slide): the instrument part of their static condition changes; pitch, velocity, the LSTM state and what is
        already decoded stay, so the timbre moves as the LSTM follows, without a new attack."""
        idx = torch.as_tensor(list(slots), dtype=torch.long, device=self.device)
        vecs = instrument_vecs.to(self.device).float()
        self.static[idx, : vecs.shape[1]] = vecs

    def _warm_up(self, idx: torch.Tensor) -> None:
        """Run the first ``context + lead`` latent steps of the notes in ``idx`` and put their first hop (output
        samples 0..hop-1) in ``first`` (see :meth:`_warm_batch`)."""
        warm = self._warm_batch(self.static[idx], self.time_limit[idx], idx)
        self.h[:, idx] = warm.h
        self.c[:, idx] = warm.c
        self.history[idx] = warm.history
        self.ola[idx] = warm.ola
        self.t[idx] = self.config.context + self.lead
        if warm.amp_hist is not None:
            self.amp_hist[idx] = warm.amp_hist
            self.hop_rows[idx] = warm.hop_rows
        self.first[idx] = warm.first

    @torch.no_grad()
    def _warm_batch(self, static: torch.Tensor, time_limit: torch.Tensor, idx: torch.Tensor | None = None) -> WarmUp:
        """The warm-up of new notes (static condition [N, D], time limit [N], slots ``idx`` whose pitch a
        harmonic bank reads; without them MIDI 60) from silence: their LSTM state
        (h, c), latent history, overlap-add buffer and first hop, after ``context + lead`` latent steps.

        Equal to stepping them one by one (as :meth:`_advance` and :meth:`step` do), but the LSTM runs the whole
        warm-up in one ``nn.LSTM`` call (its own C++ loop, no Python per step, the GIL released) and the decoder
        runs once for the warm-up frames: this is what a cold note waits for.
        """
        c = self.config
        hop, frame = c.hop, c.frame
        n, steps = len(static), c.context + self.lead
        # (few, large ops: between two ops this thread waits for the GIL, which the audio callback may hold)
        t = torch.minimum(self._warm_steps, time_limit[:, None])  # [N, T]
        x = torch.cat([static[:, None].expand(-1, steps, -1), self.model.generator.time_condition(t)], 2)
        wts = self.warmup
        out, (h, cc) = wts.lstm(x.to(wts.dtype))
        latents = torch.addmm(wts.out_b, out.reshape(n * steps, -1), wts.out_w).float().view(n, steps, -1)
        # frame j ends at latent step context-1+j; frames before ``lead`` only reach into the trimmed prefix (those
        # overlapping output sample 0, from ``first_frame`` on, are decoded), frame ``lead`` starts at output sample 0
        n_frames = self.lead + 1 - self._first_frame
        windows = latents.unfold(1, c.context, 1)[:, self._first_frame :].transpose(2, 3)  # [N, E, context, latent]
        index = torch.arange(self._first_frame, self.lead + 1, device=static.device).expand(n, -1)
        amp_hist = rows = None
        if wts.bank is None:
            frames = wts.frame(windows)  # [N, E, frame]
        else:  # the harmonics as a step adds them: one hop of oscillator rows per note (128 kB, not 0.5 MB)
            pitch = self.pitch[idx] if idx is not None else torch.full((n,), 60, device=static.device)
            frames, amps = wts.parts(windows, pitch, index)
            quarters = frame // hop
            newest = F.pad(amps.flip(1), (0, 0, 0, quarters - n_frames))  # [N, quarters, K], frame ``lead`` first
            rows = wts.bank.hop_rows(pitch)
            harmonics = wts.bank.harmonic_hop(newest, pitch, index[:, -1], rows)
            amp_hist = newest[:, : quarters - 1]
        span = (n_frames - 1) * hop + frame  # overlap-add of the frames; output sample 0 at ``zero``
        y = F.fold(frames.transpose(1, 2), (1, span), (1, frame), stride=(1, hop)).view(n, span)
        zero = (n_frames - 1) * hop
        first = y[:, zero : zero + hop] + self.weights.bs.float()  # (the synthesis bias: once per sample)
        if amp_hist is not None:
            first = first + harmonics
        ola = F.pad(y[:, zero + hop :], (0, hop))  # what the next hops add their frames to
        return WarmUp(h.float(), cc.float(), latents[:, steps - c.context :], ola, first, amp_hist, rows)

    #: per-slot tensors (slot first) that make up a sounding note, with ``h`` / ``c`` (slot second), the pending
    #: first hop and a bank's amplitude history; a bank's ``hop_rows`` follow from ``pitch``
    SLOT_STATE = ("static", "time_limit", "t", "pitch", "history", "ola")

    def save_slot(self, slot: int) -> dict[str, torch.Tensor | None]:
        """What :meth:`load_slot` needs to continue the note in ``slot`` in any slot (copies)."""
        state: dict[str, torch.Tensor | None] = {k: getattr(self, k)[slot].clone() for k in self.SLOT_STATE}
        state["h"], state["c"] = self.h[:, slot].clone(), self.c[:, slot].clone()
        state["first"] = self.first[slot].clone() if slot in self.pending else None  # a first hop not stepped out
        if self.amp_hist is not None:
            state["amp_hist"] = self.amp_hist[slot].clone()
        return state

    def load_slot(self, slot: int, state: dict[str, torch.Tensor | None]) -> None:
        """Continue a note saved by :meth:`save_slot` (possibly from another slot) in ``slot``."""
        for k in self.SLOT_STATE:
            getattr(self, k)[slot] = state[k]
        self.h[:, slot], self.c[:, slot] = state["h"], state["c"]
        if self.amp_hist is not None:
            self.amp_hist[slot] = state["amp_hist"]
            self.hop_rows[slot] = self.model.decoder.bank.hop_rows(self.pitch[slot : slot + 1])[0]
        if state["first"] is None:
            self.pending.discard(slot)
        else:
            self.first[slot] = state["first"]
            self.pending.add(slot)

    def take_over(self, other: SingStreamer) -> None:
        """Continue every slot of ``other`` (same model, same slot count; e.g. on another device)."""
        for k in (*self.SLOT_STATE, "h", "c", "first", "amp_hist", "hop_rows"):
            if getattr(other, k) is not None:
                setattr(self, k, getattr(other, k).to(self.device))
        self.pending = set(other.pending)

    @torch.no_grad()
    def prime(self, batch: int) -> None:
        """Run a warm-up of ``batch`` silent notes without touching any slot: the first warm-up of each batch size
        creates its oneDNN kernels (1-2 ms more than the next ones); priming the sizes a chord can have keeps that
        out of note-on latency. With a harmonic bank it also computes the oscillator rows of the piano's 88 keys
        (:meth:`.HarmonicBank.hop_rows`, 128 kB each at 64 harmonics), which a note-on then copies."""
        c = self.config
        if self.hop_rows is not None:
            self.model.decoder.bank.hop_rows(torch.arange(21, 109, device=self.device))
        static = torch.zeros(batch, c.input_dim - c.time_dim, device=self.device)
        self._warm_batch(static, torch.full((batch,), 1 << 30, dtype=torch.long, device=self.device))

    def _advance(self, idx: torch.Tensor, emit_frame: bool) -> torch.Tensor | None:
        """One LSTM step for ``idx``; returns the latent window of the next frame once enough latents exist.

        During warm-up the history is filled first: the first ``context - 1`` latents
        produce no frame, so they are computed here in a loop.
        """
        c = self.config
        while True:
            step = torch.minimum(self.t[idx], self.time_limit[idx])
            x = torch.cat([self.static[idx], self.model.generator.time_condition(step)], 1)
            w = self.weights
            top, h, cc = w.cells.step(x, self.h[:, idx], self.c[:, idx])
            self.h[:, idx] = h
            self.c[:, idx] = cc
            latent = torch.addmm(w.out_b, top.to(self.dtype), w.out_w).float()
            hist = torch.cat([self.history[idx, 1:], latent[:, None]], 1)
            self.history[idx] = hist
            self.t[idx] += 1
            if int(self.t[idx].min()) >= c.context:
                break
        return hist if emit_frame else None

    @torch.no_grad()
    def step(self, slots: Sequence[int], between: Callable[[], None] | None = None) -> torch.Tensor:
        """Next ``hop`` samples of each slot: [len(slots), hop] (float32, model device).

        ``between`` is called once the LSTM has stepped and before the decoder runs (about half way): the engine
        starts notes that arrived meanwhile there, so that they wait for half a step, not a whole one. It may start
        notes and step them (other slots than these), nothing else.
        """
        slots = list(slots)
        if self.pending and not self.pending.isdisjoint(slots):  # new notes: their first hop is ready
            ready = [i for i, s in enumerate(slots) if s in self.pending]
            rest = [i for i, s in enumerate(slots) if s not in self.pending]
            out = torch.empty(len(slots), self.config.hop, device=self.device)
            out[ready] = self.first[[slots[i] for i in ready]]
            self.pending.difference_update(slots)
            if rest:
                out[rest] = self._step([slots[i] for i in rest], between)
            elif between is not None:
                between()
            return out
        return self._step(slots, between)

    def _step(self, slots: list[int], between: Callable[[], None] | None = None) -> torch.Tensor:
        idx = torch.as_tensor(slots, dtype=torch.long, device=self.device)
        hist = self._advance(idx, emit_frame=True)
        if between is not None:
            between()
        if self.amp_hist is None:
            return self._emit_hop(idx, self.weights.frame(hist))
        index, pitch = self.t[idx] - self.config.context, self.pitch[idx]
        frames, amps = self.weights.parts(hist, pitch, index)
        overlapping = torch.cat([amps[:, None], self.amp_hist[idx]], 1)  # [B, frame // hop, K], newest first
        self.amp_hist[idx] = overlapping[:, :-1]
        lo, hi = min(slots), max(slots) + 1  # the slots' oscillator rows as a view (copying them cost a third)
        harmonics = self.model.decoder.bank.harmonic_hop(overlapping, pitch, index, self.hop_rows[lo:hi], idx - lo)
        return self._emit_hop(idx, frames) + harmonics

    def _emit_hop(self, idx: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Overlap-add the next ``frames`` of ``idx`` and take their finished hop out of the buffer."""
        hop = self.config.hop
        ola = self.ola[idx] + frames
        out = ola[:, :hop] + self.weights.bs.float()  # the synthesis bias is added once per sample
        self.ola[idx] = torch.cat([ola[:, hop:], torch.zeros_like(ola[:, :hop])], 1)
        return out


@torch.no_grad()
def stream_note(
    model: SING,
    instrument_vec: torch.Tensor,
    pitch: int,
    velocity: float,
    n_samples: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Render one note hop by hop (reference for tests and benchmarks): [n_samples]."""
    streamer = SingStreamer(model, max_voices=1, dtype=dtype)
    streamer.start(0, instrument_vec, pitch, velocity)
    hops = -(-n_samples // model.config.hop)
    return torch.cat([streamer.step([0])[0] for _ in range(hops)])[:n_samples]
