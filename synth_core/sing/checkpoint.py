"""SING checkpoints: one torch file holding the state dict, the JSON-able config, the
instrument names/families and the embedding table; written atomically, loaded with
clear errors when the file is corrupt or does not match its config."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..atomic_file import atomic_write
from .instrument_names import match_instrument
from .model import SING, Encoder, SINGConfig

FORMAT = "neurosynth-sing"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not fit the model it describes."""


@dataclass
class InstrumentInfo:
    name: str
    family: str = "unknown"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model plus everything saved beside it."""

    model: SING
    instruments: list[InstrumentInfo]
    encoder: Encoder | None = None
    training: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @property
    def config(self) -> SINGConfig:
        return self.model.config

    def instrument_index(self, name: str) -> int:
        return find_instrument(self.instruments, name)


def find_instrument(instruments: list[InstrumentInfo], name: str) -> int:
    """Index of an instrument by number, id, human name or an unambiguous part of one
    (:func:`synth_core.sing.instrument_names.match_instrument`).

    Raises KeyError naming the candidates when the name is unknown or ambiguous.
    """
    return match_instrument([i.name for i in instruments], name)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename over ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def save_checkpoint(
    path: str | os.PathLike,
    model: SING,
    instruments: list[InstrumentInfo],
    encoder: Encoder | None = None,
    training: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write a checkpoint atomically. ``dtype`` (e.g. torch.float16) shrinks shipped weights."""
    if len(instruments) != model.config.n_instruments:
        raise ValueError(f"{len(instruments)} instrument names for {model.config.n_instruments} embedding rows")

    def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {
            k: (v.detach().cpu().to(dtype) if dtype and v.is_floating_point() else v.detach().cpu())
            for k, v in module.state_dict().items()
        }

    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "instruments": [asdict(i) for i in instruments],
        "instrument_table": model.instrument_table.detach().float().cpu(),
        "model": state(model),
        "encoder": state(encoder) if encoder is not None else None,
        "training": training,
        "metadata": metadata or {},
    }
    atomic_torch_save(payload, path)


def write_json_sidecar(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    """Human-readable config, instrument names and embedding table next to a checkpoint."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "config": ckpt.config.to_dict(),
        "instruments": [asdict(i) for i in ckpt.instruments],
        "instrument_table": ckpt.model.instrument_table.detach().float().cpu().tolist(),
        "metadata": ckpt.metadata or {},
    }
    Path(path).write_text(json.dumps(data, indent=1))


def read_payload(path: Path, fmt: str, version: int, kind: str) -> dict[str, Any]:
    """The payload dict of a NeuroSynth checkpoint file tagged ``fmt``; :class:`CheckpointError` for a
    missing, corrupt, foreign (``kind`` names what was expected) or too new file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise CheckpointError(f"{path}: not a NeuroSynth {kind} checkpoint (format tag missing)")
    if not isinstance(payload.get("version", 0), int):
        raise CheckpointError(f"{path}: invalid checkpoint version {payload['version']!r}")
    if payload.get("version", 0) > version:
        raise CheckpointError(f"{path}: checkpoint version {payload['version']} is newer than supported ({version})")
    return payload


def load_state_checked(module: torch.nn.Module, state: Any, what: str, path: Path) -> None:
    """Load ``state`` into ``module`` as fp32, naming missing, unexpected and mis-shaped weights."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the {what} weights are missing or not a state dict")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: file {tuple(getattr(state[k], 'shape', ()))} vs config {tuple(own[k].shape)}"
        for k in own
        if k in state and (not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(own[k].shape))
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong:
            parts.append("shape mismatch " + "; ".join(wrong[:5]))
        raise CheckpointError(f"{path}: {what} weights do not match the saved config: " + ", ".join(parts))
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_training: bool = True
) -> Checkpoint:
    """Load a checkpoint (weights in fp32 on ``device``), raising :class:`CheckpointError`."""
    path = Path(path)
    payload = read_payload(path, FORMAT, VERSION, "SING")
    try:
        config = SINGConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid config: {exc}") from exc
    try:
        instruments = [InstrumentInfo(**i) for i in payload.get("instruments") or []]
    except TypeError as exc:
        raise CheckpointError(f"{path}: invalid instrument list: {exc}") from exc
    if len(instruments) != config.n_instruments:
        raise CheckpointError(f"{path}: {len(instruments)} instrument names but the config says {config.n_instruments}")
    try:
        model = SING(config)
        encoder = Encoder(config) if payload.get("encoder") is not None else None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: invalid config: {exc}") from exc
    load_state_checked(model, payload.get("model"), "model", path)
    if encoder is not None:
        load_state_checked(encoder, payload["encoder"], "encoder", path)
        encoder.to(device)
    return Checkpoint(
        model=model.to(device).eval(),
        instruments=instruments,
        encoder=encoder,
        training=payload.get("training") if with_training else None,
        metadata=payload.get("metadata") or {},
    )
