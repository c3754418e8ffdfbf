"""Runs an instrument fit (``synth_core.sing.fit.fit_samples``) in a child process.

A child process keeps the fit off the GUI thread and away from the audio callback's GIL, runs at a lower
priority with one torch thread, and can be stopped at any moment: nothing is written by the child, so a
cancelled or killed fit leaves the user's instruments as they were. The GUI polls :meth:`FitProcess.poll`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from dataclasses import dataclass
from pathlib import Path


@dataclass
class FitEvent:
    kind: str  # "progress", "done" or "error"
    fraction: float = 0.0
    message: str = ""
    report: dict | None = None


def _child(init: str, files: list[str], name: str, events, steps: int | None) -> None:  # runs in the child
    try:
        os.nice(5)  # the audio and the GUI come first
    except OSError:
        pass
    import torch

    torch.set_num_threads(1)
    from synth_core.sing.fit import FitConfig, fit_samples

    config = FitConfig() if steps is None else FitConfig(steps=steps)
    try:
        report = fit_samples(
            init, [Path(f) for f in files], name, config=config, progress=lambda f, m: events.put(("progress", f, m))
        )
        events.put(("progress", 1.0, "measuring its level"))
        report["level"] = measure_level(init, report["vector"])
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI as a message
        events.put(("error", 0.0, str(exc) or type(exc).__name__))
        return
    events.put(("done", 1.0, report))


def measure_level(checkpoint: str, vector) -> dict:
    """How the fitted vector's level compares with its nearest instrument's (``synth_core.level.match_level``),
    with that instrument's name: ``gain_db`` makes it play at that level."""
    import numpy as np

    from synth_core.engine import SingSource
    from synth_core.level import match_level

    source = SingSource.from_checkpoint(checkpoint, device="cpu")
    match = match_level(source, np.asarray(vector, np.float32))
    return {**match.to_json(), "nearest_name": source.instruments[match.nearest].name}


class FitProcess:
    """One fit of ``files`` as instrument ``name`` for checkpoint ``init``; start it, poll it, cancel it."""

    def __init__(self, init: str | Path, files: list[str | Path], name: str, steps: int | None = None):
        self._args = (str(init), [str(f) for f in files], name)
        self._steps = steps
        ctx = mp.get_context("spawn")  # a clean interpreter: no Qt, no audio threads copied from the parent
        self._events = ctx.Queue()
        self._proc = ctx.Process(target=_child, args=(*self._args, self._events, steps), daemon=True)
        self.finished = False

    def start(self) -> None:
        self._proc.start()

    @property
    def running(self) -> bool:
        return self._proc.is_alive() and not self.finished

    def poll(self) -> list[FitEvent]:
        """Events since the last poll; a child that died without a word gives an "error" event."""
        out: list[FitEvent] = []
        while True:
            try:
                kind, fraction, payload = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                out.append(FitEvent("progress", float(fraction), str(payload)))
            elif kind == "done":
                out.append(FitEvent("done", 1.0, "done", report=payload))
                self.finished = True
            else:
                out.append(FitEvent("error", message=str(payload)))
                self.finished = True
        if not self.finished and self._proc.exitcode is not None:
            self.finished = True
            out.append(FitEvent("error", message=f"the fit stopped unexpectedly (exit code {self._proc.exitcode})"))
        return out

    def cancel(self) -> None:
        """Stop the child now (nothing it did is kept)."""
        self.finished = True
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=2.0)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc.join(timeout=2.0)
