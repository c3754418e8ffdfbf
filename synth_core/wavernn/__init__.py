"""Sparse WaveRNN voice: model, acoustic features, samplers (torch reference, numba sparse, GPU)."""

from .model import (
    N_CLASSES,
    N_SAMPLE_INPUTS,
    WaveRNN,
    WaveRNNConfig,
    excitation,
    frame_f0_hz,
    join_coarse_fine,
    sample_class,
    split_coarse_fine,
    to_uint16,
)

__all__ = [
    "N_CLASSES",
    "N_SAMPLE_INPUTS",
    "WaveRNN",
    "WaveRNNConfig",
    "excitation",
    "frame_f0_hz",
    "join_coarse_fine",
    "sample_class",
    "split_coarse_fine",
    "to_uint16",
]
