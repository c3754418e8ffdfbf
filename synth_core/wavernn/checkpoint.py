"""WaveRNN voice checkpoints: weights (pruning masks included, so sparsity survives), config, presets,
optional training state; written atomically, loaded with clear errors. ``export_voice`` writes a
compact fp16 copy for shipping (zeros stay zeros)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synth_core.sing.checkpoint import CheckpointError, atomic_torch_save

from .features import VoicePreset
from .model import WaveRNN, WaveRNNConfig

FORMAT = "neurosynth-wavernn"
VERSION = 1

__all__ = ["CheckpointError", "VoiceCheckpoint", "export_voice", "load_voice", "save_voice"]


@dataclass
class VoiceCheckpoint:
    """A loaded voice: the model (eval mode, masks applied) plus everything saved beside it."""

    model: WaveRNN
    presets: list[VoicePreset]
    training: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @property
    def config(self) -> WaveRNNConfig:
        return self.model.config


def save_voice(
    path: str | os.PathLike,
    model: WaveRNN,
    presets: list[VoicePreset],
    training: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write a voice checkpoint atomically; ``dtype`` (e.g. torch.float16) shrinks shipped weights."""
    state = {
        k: (v.detach().cpu().to(dtype) if dtype and v.is_floating_point() else v.detach().cpu())
        for k, v in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "model": state,
        "presets": [p.to_dict() for p in presets],
        "training": training,
        "metadata": metadata or {},
    }
    atomic_torch_save(payload, path)


def load_voice(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_training: bool = True
) -> VoiceCheckpoint:
    """Load a voice (fp32 weights on ``device``), raising :class:`CheckpointError` for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such voice checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or corrupt files raise many types
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a NeuroSynth WaveRNN voice (format tag missing)")
    version = payload.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: unsupported voice checkpoint version {version!r} (this code reads {VERSION})")
    try:
        config = WaveRNNConfig.from_dict(payload["config"])
        model = WaveRNN(config)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: invalid config: {exc}") from exc
    state = payload.get("model")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the model weights are missing")
    own = model.state_dict()
    problems = sorted(set(own) ^ set(state))
    problems += [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape)
    ]
    if problems:
        raise CheckpointError(f"{path}: weights do not match the saved config: {problems[:5]}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.apply_masks()
    try:
        presets = [VoicePreset.from_dict(p) for p in payload.get("presets") or []]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid presets: {exc}") from exc
    training = payload.get("training") if with_training else None
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict) or (training is not None and not isinstance(training, dict)):
        raise CheckpointError(f"{path}: invalid training state or metadata")
    return VoiceCheckpoint(model.to(device).eval(), presets, training, metadata)


def export_voice(src: str | os.PathLike, dst: str | os.PathLike, dtype: torch.dtype = torch.float16) -> None:
    """Copy a (training) voice checkpoint without its optimiser state, weights in ``dtype``, masks kept."""
    ck = load_voice(src, "cpu", with_training=False)
    meta = dict(ck.metadata or {})
    meta["exported_from"] = str(src)
    save_voice(dst, ck.model, ck.presets, training=None, metadata=meta, dtype=dtype)
