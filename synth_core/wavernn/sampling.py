"""WaveRNN samplers: streaming state and the torch reference sampler (CPU, or GPU with CUDA graphs).

Every sampler turns frame features [B, F, 23] into audio [B, F * hop] and a `SamplerState` to continue
from, so a voice can be rendered one frame at a time with the same samples as in one call. The
uniforms for inverse-CDF sampling come from a numpy generator kept in the state, drawn in [T, B, 2]
with `draw_uniforms` (keyed by the seed, the stream's index in the call and its sample count), so two
samplers given the same seed draw the same uniforms.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..device import is_gpu_failure, select_device
from .model import N_SAMPLE_INPUTS, WaveRNN, _gate_rows, _gru_cell, excitation, sample_class, scale_byte

log = logging.getLogger(__name__)


@dataclass
class SamplerState:
    """Per-stream sampler state: GRU state h [B, H] float32, the last coarse/fine classes [B] int64,
    the excitation phase [B] float64, the number of samples generated so far [B] int64 and a key per
    stream [B] int64 (with the seed, they pick the stream's uniforms; `zeros` numbers the streams)."""

    h: np.ndarray
    prev_c: np.ndarray
    prev_f: np.ndarray
    phase: np.ndarray
    t: np.ndarray
    key: np.ndarray

    @classmethod
    def zeros(cls, batch: int, hidden: int) -> SamplerState:
        """Silence before the first sample (coarse 128, fine 0), zero state and phase."""
        return cls(
            h=np.zeros((batch, hidden), np.float32),
            prev_c=np.full(batch, 128, np.int64),
            prev_f=np.zeros(batch, np.int64),
            phase=np.zeros(batch, np.float64),
            t=np.zeros(batch, np.int64),
            key=np.arange(batch, dtype=np.int64),
        )

    @property
    def batch(self) -> int:
        return int(self.h.shape[0])

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def copy(self) -> SamplerState:
        return type(self)(**{k: a.copy() for k, a in self._arrays().items()})

    def take(self, idx) -> SamplerState:
        """The states of streams ``idx`` (a copy)."""
        idx = np.asarray(idx, np.int64)
        return type(self)(**{k: a[idx] for k, a in self._arrays().items()})

    def restore(self, other: SamplerState) -> None:
        """Take all of ``other``'s arrays (e.g. a copy saved before a failed call)."""
        for k, a in other._arrays().items():
            setattr(self, k, a)

    def put(self, idx, other: SamplerState) -> None:
        """Write ``other``'s streams into streams ``idx``."""
        idx = np.asarray(idx, np.int64)
        for k, a in self._arrays().items():
            a[idx] = getattr(other, k)


def draw_uniforms(seed: int | None, keys: np.ndarray, t0: np.ndarray, n: int) -> np.ndarray:
    """Uniforms [B, n, 2] float32 for samples t0[b] .. t0[b] + n - 1 of each stream b.

    Counter-based (Philox keyed by (seed, keys[b]), counter = sample index): a stream draws the
    same uniforms whether it is rendered in one call or frame by frame, alone or with others, with
    the same seed. seed None: fresh entropy."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    seed = int(seed) % (1 << 64)
    out = np.empty((len(t0), n, 2), np.float32)
    for b, (key, t) in enumerate(zip(np.asarray(keys, np.int64), np.asarray(t0, np.int64), strict=True)):
        bitgen = np.random.Philox(key=(seed << 64) | (int(key) % (1 << 64)))
        bitgen.advance(int(t))  # one counter step (4 doubles) per sample
        out[b] = np.random.Generator(bitgen).random((n, 4))[:, :2]
    return out


class Sampler:
    """Common front end: checks the features, makes or continues the state, draws the uniforms."""

    name = "sampler"

    def __init__(self, model: WaveRNN) -> None:
        self.config = model.config

    def generate(
        self,
        features: np.ndarray,
        state: SamplerState | None = None,
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> tuple[np.ndarray, SamplerState]:
        """features [B, F, n_features] -> (audio [B, F * hop] float32 in [-1, 1), the state after it).

        With ``state`` given the call continues those streams; the passed state is not modified.
        The same seed gives the same audio however the frames are split between calls."""
        feats = self._check_features(features)
        B, F = feats.shape[:2]
        if state is None:
            state = self.zero_state(B)
        else:
            if state.batch != B or state.h.shape[1:] != self._state_units:
                raise ValueError(f"state is for {state.batch} streams of {state.h.shape[1:]} units, features for {B}")
            state = state.copy()
        n = F * self.config.hop
        audio = self.generate_with_uniforms(feats, draw_uniforms(seed, state.key, state.t, n), state, temperature)
        state.t = state.t + n
        return audio, state

    def zero_state(self, batch: int) -> SamplerState:
        """The state of ``batch`` streams that have not started (silence before them)."""
        return SamplerState.zeros(batch, self.config.hidden)

    @functools.cached_property
    def _state_units(self) -> tuple[int, ...]:
        """Shape of one stream's GRU state (checked on every call, so made once)."""
        return self.zero_state(1).h.shape[1:]

    def generate_with_uniforms(
        self, features: np.ndarray, uniforms: np.ndarray, state: SamplerState, temperature: float = 1.0
    ) -> np.ndarray:
        """Generate with given uniforms [B, T, 2]; updates ``state`` (h, prev_c, prev_f, phase, not t) in place."""
        raise NotImplementedError

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        feats = np.asarray(features, dtype=np.float32)
        if feats.ndim != 3 or feats.shape[2] != self.config.n_features:
            raise ValueError(f"features must be [B, frames, {self.config.n_features}], got {feats.shape}")
        if not np.isfinite(feats).all():
            raise ValueError("features contain NaN or inf")
        return np.ascontiguousarray(feats)


class TorchSampler(Sampler):
    """Reference sampler with `WaveRNN.step` semantics, batched over streams.

    Conditioning gates and the excitation are computed once per frame. On CUDA one frame of steps
    (hop samples) is captured in a CUDA graph per (batch rounded up to a power of two, temperature)
    and replayed; a GPU failure
    moves the sampler to the CPU and regenerates the call there (the state lives on the host).
    """

    def __init__(self, model: WaveRNN, device: str | torch.device | None = "cpu", cuda_graphs: bool = True) -> None:
        super().__init__(model)
        self.device = _device(device)
        self.cuda_graphs = cuda_graphs
        # a host copy to fall back to: after a GPU failure the model's GPU memory may be unreadable
        on_cpu = next(model.parameters()).device.type == "cpu"
        self._model = model if on_cpu else copy.deepcopy(model).cpu()
        self._graphs: dict[tuple[int, float], _FrameGraph] = {}
        self._load()

    @property
    def name(self) -> str:
        graphs = " + CUDA graphs" if self.device.type == "cuda" and self.cuda_graphs else ""
        return f"torch {self.device.type}{graphs}"

    def _load(self) -> None:
        m, c = self._model, self.config
        H, Hh = c.hidden, c.hidden // 2
        dev = self.device
        with torch.no_grad():
            self.net = (m if dev.type == "cpu" else copy.deepcopy(m).to(dev)).eval()
            m = self.net
            w_ih = (m.gru.weight_ih_l0 * m.mask_ih).detach()
            self.w_cols = w_ih[:, :N_SAMPLE_INPUTS].contiguous()  # [3H, 5]
            self.w_hh = (m.gru.weight_hh_l0 * m.mask("gru.weight_hh_l0")).detach().contiguous()
            self.b_hh = m.gru.bias_hh_l0.detach()
            self.rows_c = _gate_rows(H, 0, Hh, dev)
            self.rows_f = _gate_rows(H, Hh, H, dev)
            self.w_c_f = self.w_cols[self.rows_f, 2].contiguous()
            heads = ("o1", "o2", "o3", "o4")
            self.heads = {n: (getattr(m, n).weight * m.mask(f"{n}.weight")).detach().contiguous() for n in heads}
            self.head_b = {n: getattr(m, n).bias.detach() for n in heads}
        self._graphs.clear()

    def _step(self, h, prev_c, prev_f, gates, exc, draw, temperature):
        """`WaveRNN.step` with the masked weights prepared once (same arithmetic)."""
        Hh = self.config.hidden // 2
        w = self.w_cols
        gh = torch.nn.functional.linear(h, self.w_hh, self.b_hh)
        gi = gates + scale_byte(prev_c)[:, None] * w[:, 0] + scale_byte(prev_f)[:, None] * w[:, 1]
        gi = gi + exc[:, :1] * w[:, 3] + exc[:, 1:2] * w[:, 4]
        h_c = _gru_cell(gi[:, self.rows_c], gh[:, self.rows_c], h[:, :Hh])
        c_t = sample_class(self._head(h_c, "o1", "o2"), draw[:, 0], temperature)
        gi_f = gi[:, self.rows_f] + scale_byte(c_t)[:, None] * self.w_c_f
        h_f = _gru_cell(gi_f, gh[:, self.rows_f], h[:, Hh:])
        f_t = sample_class(self._head(h_f, "o3", "o4"), draw[:, 1], temperature)
        return c_t, f_t, torch.cat([h_c, h_f], 1)

    def _head(self, x, a, b):
        lin = torch.nn.functional.linear
        return lin(torch.relu(lin(x, self.heads[a], self.head_b[a])), self.heads[b], self.head_b[b])

    def generate_with_uniforms(self, features, uniforms, state, temperature=1.0):
        saved = state.copy()
        try:
            return self._generate(features, uniforms, state, temperature)
        except Exception as e:  # noqa: BLE001 - only GPU failures are handled, the rest re-raised
            if self.device.type != "cuda" or not is_gpu_failure(e):
                raise
            log.warning("GPU failed while sampling (%s); continuing on the CPU", e)
            state.restore(saved)
            self.device = torch.device("cpu")
            self._load()
            return self._generate(features, uniforms, state, temperature)

    @torch.no_grad()
    def _generate(self, features, uniforms, state, temperature):
        c = self.config
        dev = self.device
        B, F = features.shape[:2]
        hop = c.hop
        feats = torch.from_numpy(features).to(dev)
        draws = torch.from_numpy(uniforms).to(dev)
        h = torch.from_numpy(state.h).to(dev).clone()  # torch-allocated (aligned): same BLAS path as later steps
        prev_c = torch.from_numpy(state.prev_c).to(dev)
        prev_f = torch.from_numpy(state.prev_f).to(dev)
        phase = torch.from_numpy(state.phase).to(dev)
        graph = self._graph(_bucket(B), float(temperature)) if self._use_graphs() else None
        cs = torch.empty(B, F * hop, dtype=torch.long, device=dev)
        fs = torch.empty_like(cs)
        for k in range(F):
            frame = feats[:, k : k + 1].clone()  # fresh memory: the same BLAS path whatever the call splitting
            gates = self.net.cond_gates(frame)[:, 0]
            exc, phase = excitation(frame, hop, c.sample_rate, phase)
            sl = slice(k * hop, (k + 1) * hop)
            if graph is not None:
                h, prev_c, prev_f = graph.run(h, prev_c, prev_f, gates, exc, draws[:, sl], cs[:, sl], fs[:, sl])
                continue
            for t in range(hop):
                prev_c, prev_f, h = self._step(h, prev_c, prev_f, gates, exc[:, t], draws[:, sl][:, t], temperature)
                cs[:, k * hop + t] = prev_c
                fs[:, k * hop + t] = prev_f
        state.h = h.float().cpu().numpy().copy()
        state.prev_c = prev_c.cpu().numpy().astype(np.int64)
        state.prev_f = prev_f.cpu().numpy().astype(np.int64)
        state.phase = phase.cpu().numpy().astype(np.float64)
        audio = (cs * 256 + fs - 32768).float() / 32768.0
        return audio.cpu().numpy()

    def _use_graphs(self) -> bool:
        return self.device.type == "cuda" and self.cuda_graphs

    def _graph(self, batch: int, temperature: float) -> _FrameGraph | None:
        key = (batch, temperature)
        if key not in self._graphs:
            try:
                self._graphs[key] = _FrameGraph(self, batch, temperature)
            except Exception as e:  # noqa: BLE001 - capture unsupported: run eagerly
                if is_gpu_failure(e):
                    raise
                log.warning("CUDA graph capture failed (%s); sampling eagerly", e)
                self._graphs[key] = None
        return self._graphs[key]


class _FrameGraph:
    """One frame (hop steps) of `TorchSampler._step` captured in a CUDA graph for a fixed batch."""

    def __init__(self, sampler: TorchSampler, batch: int, temperature: float) -> None:
        c, dev = sampler.config, sampler.device
        hop, H = c.hop, c.hidden
        self.h = torch.zeros(batch, H, device=dev)
        self.prev_c = torch.full((batch,), 128, dtype=torch.long, device=dev)
        self.prev_f = torch.zeros(batch, dtype=torch.long, device=dev)
        self.gates = torch.zeros(batch, 3 * H, device=dev)
        self.exc = torch.zeros(batch, hop, 2, device=dev)
        self.draws = torch.full((batch, hop, 2), 0.5, device=dev)
        self.cs = torch.zeros(batch, hop, dtype=torch.long, device=dev)
        self.fs = torch.zeros_like(self.cs)
        self.h_out = torch.zeros_like(self.h)
        self.c_out = torch.zeros_like(self.prev_c)
        self.f_out = torch.zeros_like(self.prev_f)

        def frame():
            h, pc, pf = self.h, self.prev_c, self.prev_f
            for t in range(hop):
                pc, pf, h = sampler._step(h, pc, pf, self.gates, self.exc[:, t], self.draws[:, t], temperature)
                self.cs[:, t] = pc
                self.fs[:, t] = pf
            self.h_out.copy_(h)
            self.c_out.copy_(pc)
            self.f_out.copy_(pf)

        self.replay = self._capture(frame, dev)

    @staticmethod
    def _capture(frame, dev: torch.device):
        """Capture ``frame`` (which reads and writes only static tensors) in a CUDA graph; returns its replay."""
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            frame()  # warm-up (allocator, kernels) before capture
        torch.cuda.current_stream(dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            frame()
        return graph.replay

    def run(self, h, prev_c, prev_f, gates, exc, draws, cs_out, fs_out):
        """One frame for the first B <= capture batch streams (the rest of the batch idles)."""
        B = h.shape[0]
        self.h[:B].copy_(h)
        self.prev_c[:B].copy_(prev_c)
        self.prev_f[:B].copy_(prev_f)
        self.gates[:B].copy_(gates)
        self.exc[:B].copy_(exc)
        self.draws[:B].copy_(draws)
        self.replay()
        cs_out.copy_(self.cs[:B])
        fs_out.copy_(self.fs[:B])
        return self.h_out[:B].clone(), self.c_out[:B].clone(), self.f_out[:B].clone()


def _bucket(batch: int) -> int:
    """Batch size a CUDA graph is captured for: the next power of two, so few graphs cover any polyphony."""
    return 1 << max(0, batch - 1).bit_length()


def _device(device: str | torch.device | None) -> torch.device:
    """None / "auto": CUDA if usable, else the CPU; "cuda" without a GPU: the CPU (with a warning)."""
    return select_device(None if device is None or str(device) == "auto" else str(device))
