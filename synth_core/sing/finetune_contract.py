"""The contract between the app's fine-tune and ``sing-train``: the one place both sides read it from.

The app (``sing_app.finetune_process.FineTuneProcess``) never imports ``training``: it runs ``sing-train`` as a
child process and talks to it only through the command line and the files of the run folder:

* **Command**: ``python -m training.sing_train`` (:data:`TRAIN_MODULE`, the ``sing-train`` entry point) with the
  flags of :func:`finetune_command`: an end-to-end fine-tune (``--stage e2e``) of checkpoint ``--init`` on the
  samples copied into ``--pack`` (every file the instrument ``--name``), ``--max-steps`` steps (``--epochs`` so
  large that the steps decide), one CPU thread, no validation or test split, no tqdm bar, no periodic
  checkpoints. The training parser must accept every one of these flags (``tests/test_layering.py``).
* **Progress**: ``<out>/metrics.jsonl`` (:data:`METRICS_FILE`), one JSON object a line, appended while it runs
  (a line without its newline is still being written). The app reads the lines that have :data:`LOSS_FIELD`
  (``train_loss``, float: the mean loss since the last such line, written every ``--log-every`` steps) and
  their ``step`` (:data:`STEP_FIELD`, int: optimizer steps so far; progress is ``step / --max-steps``). Other
  lines (evaluations, ``epoch_train_loss``) and other fields (``stage``, ``epoch``, ``lr``) are ignored.
* **Result**: exit code 0 and ``<out>/checkpoint.pt`` (:data:`CHECKPOINT_FILE`, a ``synth_core.sing``
  checkpoint with the new instrument in its table). The app copies it atomically to where the user's models
  live and plays it; any other exit leaves nothing, and the log's last lines are the error shown.

``training.sing_train`` writes these files under these names (it imports them from here).
"""

from __future__ import annotations

from pathlib import Path

TRAIN_MODULE = "training.sing_train"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
STEP_FIELD = "step"
LOSS_FIELD = "train_loss"


def finetune_flags(pack: str | Path, init: str | Path, name: str, out: str | Path, steps: int) -> list[str]:
    """The ``sing-train`` flags of the app's fine-tune (see the module docstring)."""
    return [
        "--pack", str(pack), "--init", str(init), "--stage", "e2e", "--name", name, "--out", str(out),
        "--max-steps", str(int(steps)), "--epochs", "1000000", "--batch-size", "8", "--crop-steps", "16",
        "--lr", "2e-4", "--p-valid", "0", "--p-test", "0", "--eval-notes", "2", "--log-every", "5",
        "--checkpoint-every", "0", "--threads", "1", "--no-progress",
    ]  # fmt: skip


def finetune_command(
    python: str, pack: str | Path, init: str | Path, name: str, out: str | Path, steps: int
) -> list[str]:
    """The whole command line: ``python -m training.sing_train`` and :func:`finetune_flags`."""
    return [python, "-m", TRAIN_MODULE, *finetune_flags(pack, init, name, out, steps)]
