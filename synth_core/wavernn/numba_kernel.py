"""Numba block-sparse WaveRNN sampler: one compiled call generates whole frames for one or a few streams.

Per frame: the conditioning network and its gate contribution (once), the excitation's sin/cos
start values (then a rotation per sample). Per sample: the block-sparse recurrent mat-vec R h,
the coarse half of the GRU, the sparse coarse heads O2 relu(O1 h_c), softmax + inverse-CDF draw,
the fine half with c_t, the sparse fine heads, the fine draw. float32 throughout (the excitation
phase in float64, as in `model.excitation`). Non-linearities of the GRU use a rational
approximation of tanh, max abs error 3.4e-7 (sigmoid(x) = (1 + tanh(x/2))/2, 1.7e-7); the
conditioning network uses exact tanh. No `reassoc` in fastmath: sums keep their order, so results
stay within float32 rounding of the torch reference (see tests/test_wavernn_sampling.py).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from .model import N_CLASSES, N_SAMPLE_INPUTS, WaveRNN  # noqa: E402
from .sampling import Sampler  # noqa: E402
from .sparse import BlockSparse, pack_bsr  # noqa: E402

FASTMATH = {"nsz", "arcp", "contract", "afn"}  # no "reassoc": keep the order of sums
_JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_CLAMP = np.float32(9.0)
# tanh(x) ~ x P(x^2) / Q(x^2) on [-9, 9] (least-squares rational fit, Loeb iterations), clamped outside
_P0, _P1, _P2, _P3, _P4 = (
    np.float32(c)
    for c in (
        0.9999999230454328,
        0.13384769939219968,
        0.0035002712131790626,
        2.0695049876620457e-05,
        1.3489845823722035e-08,
    )
)
_Q1, _Q2, _Q3, _Q4 = (
    np.float32(c) for c in (0.46718072937136834, 0.025894197391878607, 0.00032936830332344863, 7.828520440233966e-07)
)
TANH_MAX_ABS_ERROR = 3.4e-7
_BYTE_SCALE = np.float32(1.0 / 127.5)


@njit(inline="always", **_JIT)
def fast_tanh(x):
    """Rational tanh for float32, max abs error 3.4e-7."""
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = (((_P4 * x2 + _P3) * x2 + _P2) * x2 + _P1) * x2 + _P0
    q = (((_Q4 * x2 + _Q3) * x2 + _Q2) * x2 + _Q1) * x2 + _ONE
    return x * p / q


@njit(inline="always", **_JIT)
def fast_sigmoid(x):
    return _HALF + _HALF * fast_tanh(_HALF * x)


@njit(**_JIT)
def _mv44(ptr, col, v, x, bias, y):
    """y = W x + bias for W in (4, 4) blocks (two accumulators per row: even and odd blocks)."""
    for i in range(ptr.shape[0] - 1):
        r = 4 * i
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = _ZERO
        k = ptr[i]
        end = ptr[i + 1]
        while k + 1 < end:
            j = 4 * col[k]
            a0 += v[k, 0] * x[j] + v[k, 4] * x[j + 1] + v[k, 8] * x[j + 2] + v[k, 12] * x[j + 3]
            a1 += v[k, 1] * x[j] + v[k, 5] * x[j + 1] + v[k, 9] * x[j + 2] + v[k, 13] * x[j + 3]
            a2 += v[k, 2] * x[j] + v[k, 6] * x[j + 1] + v[k, 10] * x[j + 2] + v[k, 14] * x[j + 3]
            a3 += v[k, 3] * x[j] + v[k, 7] * x[j + 1] + v[k, 11] * x[j + 2] + v[k, 15] * x[j + 3]
            j = 4 * col[k + 1]
            b0 += v[k + 1, 0] * x[j] + v[k + 1, 4] * x[j + 1] + v[k + 1, 8] * x[j + 2] + v[k + 1, 12] * x[j + 3]
            b1 += v[k + 1, 1] * x[j] + v[k + 1, 5] * x[j + 1] + v[k + 1, 9] * x[j + 2] + v[k + 1, 13] * x[j + 3]
            b2 += v[k + 1, 2] * x[j] + v[k + 1, 6] * x[j + 1] + v[k + 1, 10] * x[j + 2] + v[k + 1, 14] * x[j + 3]
            b3 += v[k + 1, 3] * x[j] + v[k + 1, 7] * x[j + 1] + v[k + 1, 11] * x[j + 2] + v[k + 1, 15] * x[j + 3]
            k += 2
        if k < end:
            j = 4 * col[k]
            a0 += v[k, 0] * x[j] + v[k, 4] * x[j + 1] + v[k, 8] * x[j + 2] + v[k, 12] * x[j + 3]
            a1 += v[k, 1] * x[j] + v[k, 5] * x[j + 1] + v[k, 9] * x[j + 2] + v[k, 13] * x[j + 3]
            a2 += v[k, 2] * x[j] + v[k, 6] * x[j + 1] + v[k, 10] * x[j + 2] + v[k, 14] * x[j + 3]
            a3 += v[k, 3] * x[j] + v[k, 7] * x[j + 1] + v[k, 11] * x[j + 2] + v[k, 15] * x[j + 3]
        y[r + 0] = (a0 + b0) + bias[r + 0]
        y[r + 1] = (a1 + b1) + bias[r + 1]
        y[r + 2] = (a2 + b2) + bias[r + 2]
        y[r + 3] = (a3 + b3) + bias[r + 3]


@njit(**_JIT)
def _mv161(ptr, col, v, x, bias, y):
    """y = W x + bias for W in (16, 1) blocks (two accumulators per row: even and odd blocks)."""
    for i in range(ptr.shape[0] - 1):
        r = 16 * i
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = _ZERO
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = b9 = b10 = b11 = b12 = b13 = b14 = b15 = _ZERO
        k = ptr[i]
        end = ptr[i + 1]
        while k + 1 < end:
            xa = x[col[k]]
            xb = x[col[k + 1]]
            a0 += v[k, 0] * xa
            a1 += v[k, 1] * xa
            a2 += v[k, 2] * xa
            a3 += v[k, 3] * xa
            a4 += v[k, 4] * xa
            a5 += v[k, 5] * xa
            a6 += v[k, 6] * xa
            a7 += v[k, 7] * xa
            a8 += v[k, 8] * xa
            a9 += v[k, 9] * xa
            a10 += v[k, 10] * xa
            a11 += v[k, 11] * xa
            a12 += v[k, 12] * xa
            a13 += v[k, 13] * xa
            a14 += v[k, 14] * xa
            a15 += v[k, 15] * xa
            b0 += v[k + 1, 0] * xb
            b1 += v[k + 1, 1] * xb
            b2 += v[k + 1, 2] * xb
            b3 += v[k + 1, 3] * xb
            b4 += v[k + 1, 4] * xb
            b5 += v[k + 1, 5] * xb
            b6 += v[k + 1, 6] * xb
            b7 += v[k + 1, 7] * xb
            b8 += v[k + 1, 8] * xb
            b9 += v[k + 1, 9] * xb
            b10 += v[k + 1, 10] * xb
            b11 += v[k + 1, 11] * xb
            b12 += v[k + 1, 12] * xb
            b13 += v[k + 1, 13] * xb
            b14 += v[k + 1, 14] * xb
            b15 += v[k + 1, 15] * xb
            k += 2
        if k < end:
            xa = x[col[k]]
            a0 += v[k, 0] * xa
            a1 += v[k, 1] * xa
            a2 += v[k, 2] * xa
            a3 += v[k, 3] * xa
            a4 += v[k, 4] * xa
            a5 += v[k, 5] * xa
            a6 += v[k, 6] * xa
            a7 += v[k, 7] * xa
            a8 += v[k, 8] * xa
            a9 += v[k, 9] * xa
            a10 += v[k, 10] * xa
            a11 += v[k, 11] * xa
            a12 += v[k, 12] * xa
            a13 += v[k, 13] * xa
            a14 += v[k, 14] * xa
            a15 += v[k, 15] * xa
        y[r + 0] = (a0 + b0) + bias[r + 0]
        y[r + 1] = (a1 + b1) + bias[r + 1]
        y[r + 2] = (a2 + b2) + bias[r + 2]
        y[r + 3] = (a3 + b3) + bias[r + 3]
        y[r + 4] = (a4 + b4) + bias[r + 4]
        y[r + 5] = (a5 + b5) + bias[r + 5]
        y[r + 6] = (a6 + b6) + bias[r + 6]
        y[r + 7] = (a7 + b7) + bias[r + 7]
        y[r + 8] = (a8 + b8) + bias[r + 8]
        y[r + 9] = (a9 + b9) + bias[r + 9]
        y[r + 10] = (a10 + b10) + bias[r + 10]
        y[r + 11] = (a11 + b11) + bias[r + 11]
        y[r + 12] = (a12 + b12) + bias[r + 12]
        y[r + 13] = (a13 + b13) + bias[r + 13]
        y[r + 14] = (a14 + b14) + bias[r + 14]
        y[r + 15] = (a15 + b15) + bias[r + 15]


@njit(**_JIT)
def _matvec(kind, ptr, col, v, x, bias, y):
    if kind == 0:
        _mv44(ptr, col, v, x, bias, y)
    else:
        _mv161(ptr, col, v, x, bias, y)


@njit(**_JIT)
def _draw(logits, e, u, inv_temp, greedy):
    """Inverse-CDF draw from softmax(logits * inv_temp) with uniform u (argmax when greedy)."""
    n = logits.shape[0]
    best = 0
    m = logits[0]
    for i in range(1, n):
        if logits[i] > m:
            m = logits[i]
            best = i
    if greedy:
        return best
    for i in range(n):
        e[i] = math.exp((logits[i] - m) * inv_temp)
    total = _ZERO
    for i in range(n):
        total += e[i]
    target = u * total
    cum = _ZERO
    for i in range(n):
        cum += e[i]
        if cum >= target:
            return i
    return n - 1


@njit(**_JIT)
def _dense_tanh(w, b, x, y):
    """y = tanh(w x + b), exact tanh (conditioning network, once per frame)."""
    for j in range(w.shape[0]):
        s = _ZERO
        for i in range(w.shape[1]):
            s += w[j, i] * x[i]
        y[j] = np.tanh(s + b[j])


@njit(**_JIT)
def _generate(
    feats,
    unif,
    h_all,
    prev_c,
    prev_f,
    phase,
    hop,
    sample_rate,
    inv_temp,
    greedy,
    cw1,
    cb1,
    cw2,
    cb2,
    wc,
    b_ih,
    wcols,
    b_hh,
    kind,
    r_ptr,
    r_col,
    r_val,
    o1_ptr,
    o1_col,
    o1_val,
    b1,
    o2_ptr,
    o2_col,
    o2_val,
    b2,
    o3_ptr,
    o3_col,
    o3_val,
    b3,
    o4_ptr,
    o4_col,
    o4_val,
    b4,
    record,
    logits_out,
    out,
):
    """Generate feats.shape[1] frames for each stream in turn; updates h_all, prev_c, prev_f, phase."""
    n_streams, n_frames = feats.shape[0], feats.shape[1]
    H = h_all.shape[1]
    Hh = H // 2
    CC = cw1.shape[0]
    NH = b1.shape[0]
    c1 = np.empty(CC, np.float32)
    c2 = np.empty(CC, np.float32)
    gf = np.empty(3 * H, np.float32)
    gh = np.empty(3 * H, np.float32)
    h = np.empty(H, np.float32)
    hn = np.empty(H, np.float32)
    y1 = np.empty(NH, np.float32)
    lc = np.empty(256, np.float32)
    lf = np.empty(256, np.float32)
    e = np.empty(256, np.float32)
    two_pi = 2.0 * math.pi
    for b in range(n_streams):
        h[:] = h_all[b]
        pc = prev_c[b]
        pf = prev_f[b]
        ph = phase[b]
        t = 0
        for fr in range(n_frames):
            x = feats[b, fr]
            # conditioning gates, once per frame
            _dense_tanh(cw1, cb1, x, c1)
            _dense_tanh(cw2, cb2, c1, c2)
            gf[:] = _ZERO
            for j in range(CC):
                cj = c2[j]
                for r in range(3 * H):
                    gf[r] += wc[j, r] * cj
            for r in range(3 * H):
                gf[r] += b_ih[r]
            # excitation: sin/cos of the f0 phase, rotated per sample
            f0 = 440.0 * 2.0 ** ((60.0 + 24.0 * np.float64(x[0]) - 69.0) / 12.0)
            inc = two_pi / sample_rate * f0
            voicing = min(max(x[1], _ZERO), _ONE)
            sn = math.sin(ph)
            cs = math.cos(ph)
            rot_c = math.cos(inc)
            rot_s = math.sin(inc)
            for _ in range(hop):
                e0 = np.float32(sn) * voicing
                e1 = np.float32(cs) * voicing
                sn, cs = sn * rot_c + cs * rot_s, cs * rot_c - sn * rot_s
                sc = np.float32(pc) * _BYTE_SCALE - _ONE
                sf = np.float32(pf) * _BYTE_SCALE - _ONE
                _matvec(kind, r_ptr, r_col, r_val, h, b_hh, gh)
                # coarse half
                for u in range(Hh):
                    gr = gf[u] + sc * wcols[0, u] + sf * wcols[1, u]
                    gr = gr + e0 * wcols[3, u] + e1 * wcols[4, u]
                    gz = gf[H + u] + sc * wcols[0, H + u] + sf * wcols[1, H + u]
                    gz = gz + e0 * wcols[3, H + u] + e1 * wcols[4, H + u]
                    gn = gf[2 * H + u] + sc * wcols[0, 2 * H + u] + sf * wcols[1, 2 * H + u]
                    gn = gn + e0 * wcols[3, 2 * H + u] + e1 * wcols[4, 2 * H + u]
                    rg = fast_sigmoid(gr + gh[u])
                    zg = fast_sigmoid(gz + gh[H + u])
                    ng = fast_tanh(gn + rg * gh[2 * H + u])
                    hn[u] = (_ONE - zg) * ng + zg * h[u]
                _matvec(kind, o1_ptr, o1_col, o1_val, hn[:Hh], b1, y1)
                for i in range(NH):
                    y1[i] = max(y1[i], _ZERO)
                _matvec(kind, o2_ptr, o2_col, o2_val, y1, b2, lc)
                c = _draw(lc, e, unif[b, t, 0], inv_temp, greedy)
                sct = np.float32(c) * _BYTE_SCALE - _ONE
                # fine half, also seeing c_t
                for u in range(Hh, H):
                    gr = gf[u] + sc * wcols[0, u] + sf * wcols[1, u]
                    gr = gr + e0 * wcols[3, u] + e1 * wcols[4, u] + sct * wcols[2, u]
                    gz = gf[H + u] + sc * wcols[0, H + u] + sf * wcols[1, H + u]
                    gz = gz + e0 * wcols[3, H + u] + e1 * wcols[4, H + u] + sct * wcols[2, H + u]
                    gn = gf[2 * H + u] + sc * wcols[0, 2 * H + u] + sf * wcols[1, 2 * H + u]
                    gn = gn + e0 * wcols[3, 2 * H + u] + e1 * wcols[4, 2 * H + u] + sct * wcols[2, 2 * H + u]
                    rg = fast_sigmoid(gr + gh[u])
                    zg = fast_sigmoid(gz + gh[H + u])
                    ng = fast_tanh(gn + rg * gh[2 * H + u])
                    hn[u] = (_ONE - zg) * ng + zg * h[u]
                _matvec(kind, o3_ptr, o3_col, o3_val, hn[Hh:], b3, y1)
                for i in range(NH):
                    y1[i] = max(y1[i], _ZERO)
                _matvec(kind, o4_ptr, o4_col, o4_val, y1, b4, lf)
                f = _draw(lf, e, unif[b, t, 1], inv_temp, greedy)
                if record:
                    logits_out[b, t, 0, :] = lc
                    logits_out[b, t, 1, :] = lf
                h[:] = hn
                pc = c
                pf = f
                out[b, t] = np.float32(c * 256 + f - 32768) / np.float32(32768.0)
                t += 1
            ph = (ph + hop * inc) % two_pi
        h_all[b] = h
        prev_c[b] = pc
        prev_f[b] = pf
        phase[b] = ph


class NumbaSparseSampler(Sampler):
    """Single-thread block-sparse sampler; one numba call per `generate`, streams one after another.

    The recurrent matrix and the four head matrices are packed in the model's pruning blocks
    (``config.block``, (4, 4) or (16, 1)) from their pruning masks; an unpruned model packs to
    full blocks and still works (slowly). The weights are copied at construction: make a new sampler
    after changing the model."""

    name = "numba sparse"

    def __init__(self, model: WaveRNN) -> None:
        super().__init__(model)
        c = model.config
        if c.block not in ((4, 4), (16, 1)):
            raise ValueError(f"numba sampler supports blocks (4, 4) and (16, 1), not {c.block}")
        self.kind = 0 if c.block == (4, 4) else 1

        def f32(t):
            return np.ascontiguousarray(t.detach().cpu().float().numpy())

        m = model
        l1, l2 = m.cond_net[0], m.cond_net[2]
        self.cond = (f32(l1.weight), f32(l1.bias), f32(l2.weight), f32(l2.bias))
        w_ih = f32(m.gru.weight_ih_l0 * m.mask_ih)
        self.wc = np.ascontiguousarray(w_ih[:, N_SAMPLE_INPUTS:].T)  # [CC, 3H]
        self.b_ih = f32(m.gru.bias_ih_l0)
        self.wcols = np.ascontiguousarray(w_ih[:, :N_SAMPLE_INPUTS].T)  # [5, 3H]
        self.b_hh = f32(m.gru.bias_hh_l0)
        self.mats: dict[str, BlockSparse] = {}
        for name, w in m.prunable().items():
            try:
                self.mats[name] = pack_bsr(f32(w * m.mask(name)), c.block, keep=f32(m.mask(name)))
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        self.biases = [f32(getattr(m, n).bias) for n in ("o1", "o2", "o3", "o4")]
        self.workers = 1  # threads the streams of a call are split over (the same samples however many)
        self._executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None or self._executor._max_workers < self.workers:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="wavernn-streams")
        return self._executor

    def density(self) -> dict[str, float]:
        """Stored fraction of each packed matrix."""
        return {n: s.density() for n, s in self.mats.items()}

    def generate_with_uniforms(self, features, uniforms, state, temperature=1.0, record_logits=False):
        """As `Sampler.generate_with_uniforms`; with record_logits also returns the coarse/fine logits
        [B, T, 2, 256] the kernel drew from (a debug entry point for tests)."""
        B, F = features.shape[:2]
        T = F * self.config.hop
        if uniforms.shape != (B, T, 2):
            raise ValueError(f"uniforms must be {(B, T, 2)}, got {uniforms.shape}")
        out = np.empty((B, T), np.float32)
        logits = np.zeros((B, T, 2, N_CLASSES) if record_logits else (1, 1, 2, N_CLASSES), np.float32)
        h = np.ascontiguousarray(state.h, np.float32).copy()
        pc = state.prev_c.astype(np.int64).copy()
        pf = state.prev_f.astype(np.int64).copy()
        ph = state.phase.astype(np.float64).copy()
        greedy = temperature <= 0
        inv_temp = np.float32(1.0 if greedy else 1.0 / temperature)
        mats = [self.mats[n] for n in ("gru.weight_hh_l0", "o1.weight", "o2.weight", "o3.weight", "o4.weight")]
        heads = []
        for s, b in zip(mats[1:], self.biases, strict=True):
            heads += [s.row_ptr, s.col_idx, s.values, b]
        unif = np.ascontiguousarray(uniforms, np.float32)
        weights = (*self.cond, self.wc, self.b_ih, self.wcols, self.b_hh, self.kind)
        weights += (mats[0].row_ptr, mats[0].col_idx, mats[0].values, *heads)
        hop, sr = self.config.hop, float(self.config.sample_rate)

        def run(a: int, b: int) -> None:  # streams a..b-1 (the kernel runs without the GIL)
            _generate(
                features[a:b],
                unif[a:b],
                h[a:b],
                pc[a:b],
                pf[a:b],
                ph[a:b],
                hop,
                sr,
                inv_temp,
                greedy,
                *weights,
                record_logits,
                logits[a:b] if record_logits else logits,
                out[a:b],
            )

        parts = min(self.workers, B) if not record_logits else 1
        if parts <= 1:
            run(0, B)
        else:
            cuts = [B * i // parts for i in range(parts + 1)]
            pool = self._pool()
            futures = [pool.submit(run, a, b) for a, b in zip(cuts[:-2], cuts[1:-1], strict=True)]
            run(cuts[-2], cuts[-1])  # the last part on this thread
            for f in futures:
                f.result()
        state.h, state.prev_c, state.prev_f, state.phase = h, pc, pf, ph
        return (out, logits) if record_logits else out


def warm_up() -> None:
    """Compile (or load from cache) the kernel with a tiny model."""
    from .model import WaveRNNConfig

    m = WaveRNN(WaveRNNConfig(hidden=32, cond_channels=8, head_hidden=16, hop=4))
    NumbaSparseSampler(m).generate(np.zeros((1, 1, 23), np.float32), seed=0)
