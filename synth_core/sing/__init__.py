"""SING: Symbol-to-Instrument Neural Generator (Defossez et al. 2018)."""

from .checkpoint import CheckpointError, InstrumentInfo, load_checkpoint, save_checkpoint
from .loss import SpectralLoss, spectral_l1
from .model import NSYNTH_VELOCITIES, SING, Encoder, SINGConfig

__all__ = [
    "CheckpointError",
    "Encoder",
    "InstrumentInfo",
    "NSYNTH_VELOCITIES",
    "SING",
    "SINGConfig",
    "SpectralLoss",
    "load_checkpoint",
    "save_checkpoint",
    "spectral_l1",
]
