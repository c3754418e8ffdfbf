"""WaveRNN voice checkpoints: weights (pruning masks included, so sparsity survives), config, presets,
optional training state; written atomically, loaded with clear errors. ``export_voice`` writes a
compact fp16 copy for shipping (zeros stay zeros)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synth_core.sing.checkpoint import CheckpointError, atomic_torch_save, load_state_checked, read_payload

from .features import VoicePreset
from .model import WaveRNN, WaveRNNConfig
from .subscale import SubscaleWaveRNN

FORMAT = "neurosynth-wavernn"
VERSION = 1

__all__ = [
    "CheckpointError",
    "VoiceCheckpoint",
    "architecture",
    "build_model",
    "export_voice",
    "load_voice",
    "save_voice",
]


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


def architecture(model: WaveRNN) -> dict[str, Any]:
    """What class to rebuild and its extra arguments: {"kind": "plain"} or {"kind": "subscale", "subscale": 16, ...}."""
    if isinstance(model, SubscaleWaveRNN):
        return {"kind": "subscale", **model.extra_config()}
    return {"kind": "plain"}


def build_model(config: WaveRNNConfig, arch: dict[str, Any] | None = None) -> WaveRNN:
    """A fresh model of the architecture `architecture` described (None: a plain WaveRNN, older files)."""
    arch = dict(arch or {"kind": "plain"})
    kind = arch.pop("kind", "plain")
    if kind == "plain":
        return WaveRNN(config)
    if kind == "subscale":
        return SubscaleWaveRNN(config, **{k: int(v) for k, v in arch.items()})
    raise ValueError(f"unknown architecture {kind!r}")


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
        "architecture": architecture(model),
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
    payload = read_payload(path, FORMAT, VERSION, "WaveRNN voice")
    try:
        config = WaveRNNConfig.from_dict(payload["config"])
        model = build_model(config, payload.get("architecture"))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: invalid config: {exc}") from exc
    load_state_checked(model, payload.get("model"), "model", path)
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
