"""The slow path to a custom instrument: an end-to-end fine-tune (``sing-train --stage e2e --init``) of the whole
model on the samples, in a child process the GUI polls for progress and the training loss.

The run lives in a work folder; only when it finished is its checkpoint copied (atomically) to ``dest``. A
cancelled or failed run leaves ``dest`` untouched and the work folder is removed. The app talks to training only
through that command and the run folder's files: the flags, the ``metrics.jsonl`` fields read and the checkpoint
path are written down in ``synth_core.sing.finetune_contract``, which ``training.sing_train`` reads too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from synth_core.atomic_file import atomic_write
from synth_core.sing.finetune_contract import (
    CHECKPOINT_FILE,
    LOSS_FIELD,
    METRICS_FILE,
    STEP_FIELD,
    finetune_command,
)

from .fit_process import FitEvent

AUDIO = (".wav", ".flac")


def collect_audio(paths: list[Path]) -> list[Path]:
    """The audio files of ``paths`` (folders searched recursively), in order, without duplicates."""
    out: list[Path] = []
    for p in map(Path, paths):
        found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO) if p.is_dir() else [p] * p.is_file()
        out += [f for f in found if f not in out]
    return out


class FineTuneProcess:
    """Fine-tune checkpoint ``init`` on ``files`` as instrument ``name`` for ``steps`` steps; result at ``dest``."""

    def __init__(self, init, files, name: str, dest, steps: int = 300, work: str | Path | None = None):
        self.init, self.name, self.dest, self.steps = Path(init), name, Path(dest), int(steps)
        self.files = collect_audio(list(files))
        self.work = Path(work) if work else Path(tempfile.mkdtemp(prefix="neurosynth-finetune-"))
        self.run = self.work / "run"
        self.losses: list[tuple[int, float]] = []
        self.finished = False
        self._proc: subprocess.Popen | None = None
        self._read = 0

    def start(self) -> None:
        pack = self.work / "pack"
        pack.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(self.files):  # keep the names (they may carry the pitch); never two alike
            target = pack / f.name if not (pack / f.name).exists() else pack / f"{i}_{f.name}"
            shutil.copyfile(f, target)
        args = finetune_command(sys.executable, pack, self.init, self.name, self.run, self.steps)
        self._log = open(self.work / "train.log", "w")  # noqa: SIM115 - closed in _close
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and not self.finished

    def poll(self) -> list[FitEvent]:
        """New training-loss points as progress events; then "done" (checkpoint at ``dest``) or "error"."""
        events: list[FitEvent] = []
        metrics = self.run / METRICS_FILE
        if metrics.is_file():
            with open(metrics) as f:
                f.seek(self._read)
                for line in f:
                    if not line.endswith("\n"):
                        break
                    self._read += len(line.encode())
                    rec = json.loads(line)
                    if LOSS_FIELD in rec:
                        step, loss = int(rec[STEP_FIELD]), float(rec[LOSS_FIELD])
                        self.losses.append((step, loss))
                        events.append(
                            FitEvent("progress", min(1.0, step / self.steps), f"step {step}: loss {loss:.3f}")
                        )
        if self.finished or self._proc is None or self._proc.poll() is None:
            return events
        self.finished = True
        code = self._proc.returncode
        checkpoint = self.run / CHECKPOINT_FILE
        if code == 0 and checkpoint.is_file():
            with open(checkpoint, "rb") as src:
                atomic_write(self.dest, lambda f: shutil.copyfileobj(src, f))
            events.append(FitEvent("done", 1.0, "done", report={"checkpoint": str(self.dest), "losses": self.losses}))
        else:
            tail = (self.work / "train.log").read_text(errors="replace").strip().splitlines()[-3:]
            events.append(FitEvent("error", message=f"the fine-tune stopped (exit code {code}): {' '.join(tail)}"))
        self._close()
        return events

    def cancel(self) -> None:
        """Stop the run now; nothing of it is kept."""
        self.finished = True
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._close()

    def _close(self) -> None:
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.work, ignore_errors=True)
