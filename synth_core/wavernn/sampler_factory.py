"""`make_sampler`: picks the sampler for a WaveRNN voice (torch, numba block-sparse or subscale).

Its own module so that the imports run one way: the samplers import their base classes from ``sampling``, and
only this factory imports the samplers.
"""

from __future__ import annotations

import logging

import torch

from .model import WaveRNN
from .sampling import Sampler, TorchSampler, _device
from .subscale_sampling import SubscaleSampler

log = logging.getLogger(__name__)

# Measured (bench/wavernn_speed.py, hidden 512, one core): numba ~12k samples/s unpruned, ~22k at 50%, ~93k
# at 95%; torch ~4.5k for one stream, ~21k in total for 16 batched streams. From half the blocks pruned the
# numba kernel is as fast as batched torch at 16 voices and faster for fewer.
AUTO_MIN_SPARSITY = 0.5


def make_sampler(model: WaveRNN, backend: str = "auto", device: str | torch.device | None = "auto") -> Sampler:
    """The fastest sampler for this model and device.

    backend "torch": `TorchSampler` on ``device``; "numba": `NumbaSparseSampler` (CPU only);
    "auto": torch on CUDA, else numba when the model's recurrent matrix is sparse enough to pay
    off (>= 50% of its blocks pruned) and numba works, else the torch sampler on the CPU.
    A `SubscaleWaveRNN` gets the `SubscaleSampler` (torch, output delayed by (S - 1) S samples).
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    dev = _device(device)
    if getattr(model, "subscale", 0):  # 16 samples per step, torch on the CPU or CUDA
        if backend == "numba":
            raise ValueError("the numba kernel samples plain voices; a subscale voice uses the torch sampler")
        return SubscaleSampler(model, dev)
    if backend == "torch" or (backend == "auto" and dev.type == "cuda"):
        return TorchSampler(model, dev)
    if backend == "numba":
        from .numba_kernel import NumbaSparseSampler  # numba's import is slow: only when needed

        return NumbaSparseSampler(model)
    if model.sparsity()["gru.weight_hh_l0"] >= AUTO_MIN_SPARSITY:
        try:
            from .numba_kernel import NumbaSparseSampler

            return NumbaSparseSampler(model)
        except (ImportError, ValueError) as e:
            log.warning("numba sparse sampler unavailable (%s); using the torch sampler", e)
    return TorchSampler(model, "cpu")
