"""Fit new instruments' embedding rows to recorded notes: ``sing-train --embed`` and the measurements.

The fit itself (:func:`fit_embedding`, :func:`fit_dataset`, :func:`fit_samples`: every model weight frozen, only
a new instrument's 16 numbers move) lives in ``synth_core.sing.fit``, where the app runs it without importing
``training``; it is re-exported here. :func:`fit_pack` is training's: a sample pack's instruments added to a
checkpoint file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from synth_core.atomic_file import atomic_write_text
from synth_core.sing.checkpoint import InstrumentInfo, load_checkpoint, save_checkpoint
from synth_core.sing.fit import (  # noqa: F401 - re-exported
    FitCancelled,
    FitConfig,
    FitResult,
    Progress,
    fit_dataset,
    fit_embedding,
    fit_samples,
    loss_config_of,
    training_gain,
)
from training.datasets import load_pack


def fit_pack(
    init,
    pack,
    out,
    *,
    instrument: str | None = None,
    family: str = "custom",
    config: FitConfig = FitConfig(),  # noqa: B008 - a frozen dataclass
    max_notes: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Add one instrument per instrument of sample pack ``pack`` to checkpoint ``init``; write ``out``.

    ``out`` is the new checkpoint file (written atomically, in the source's dtype, with every old weight and
    row unchanged); a JSON report is written beside it (``<out>.embed.json``) and returned. ``instrument``
    names every note's instrument (one new instrument from a folder of samples). ValueError for an empty pack
    or a name the checkpoint already has; :class:`FitCancelled` leaves ``out`` as it was.
    """
    t0 = time.monotonic()
    ckpt = load_checkpoint(init, "cpu")
    cfg = ckpt.config
    ds = load_pack(pack, cache=True, sample_rate=cfg.sample_rate, note_samples=cfg.note_samples, instrument=instrument)
    try:
        fits = fit_dataset(ckpt, ds, config=config, max_notes=max_notes, progress=progress, should_stop=should_stop)
    except ValueError as exc:
        raise ValueError(f"{pack}: {exc}") from exc
    model = ckpt.model
    model.add_instruments(len(fits), init=torch.tensor([f["vector"] for f in fits], dtype=torch.float32))
    infos = [*ckpt.instruments, *(InstrumentInfo(f["instrument"], family) for f in fits)]
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(str((ckpt.metadata or {}).get("dtype")))
    metadata = dict(ckpt.metadata or {})
    metadata["embedding_fit"] = {"from": Path(init).name, "instruments": [f["instrument"] for f in fits]}
    training = dict(ckpt.training or {})
    training.pop("optimizer", None)  # the source run's optimizer does not fit the grown table
    report = {
        "init": str(init),
        "pack": str(pack),
        "out": str(out),
        "seconds": time.monotonic() - t0,
        "skipped": [{"file": str(p), "reason": r} for p, r in ds.skipped],
        "instruments": fits,
    }
    if should_stop is not None and should_stop():
        raise FitCancelled("fit cancelled")
    save_checkpoint(out, model, infos, encoder=ckpt.encoder, training=training, metadata=metadata, dtype=dtype)
    atomic_write_text(Path(str(out) + ".embed.json"), json.dumps(report, indent=1))
    return report
