"""The layers: the app does not import training, the engine and models know nothing of Qt or of the app, and the
app's fine-tune talks to ``sing-train`` only through the contract in ``synth_core.sing.finetune_contract``."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from synth_core.sing import finetune_contract as contract

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every absolute module an ``import x`` / ``from x import y`` of ``path`` names (at any depth of the code)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


def test_the_checker_sees_both_import_forms(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import training.embed_fit\ndef g():\n    from training import datasets\nfrom . import sibling\n")
    assert imported_modules(f) == {"training.embed_fit", "training"}


def test_the_app_does_not_import_training():
    assert offenders("sing_app", ("training",)) == []


def test_the_engine_and_models_know_nothing_of_qt_or_the_app():
    assert offenders("synth_core", ("PyQt6", "PyQt5", "sing_app", "training")) == []


def started_command(tmp_path, monkeypatch) -> list[str]:
    """The command line FineTuneProcess.start() hands to subprocess.Popen (nothing is run)."""
    from sing_app import finetune_process

    seen = []

    class FakePopen:
        def __init__(self, args, **kwargs):
            seen.append(list(args))

    monkeypatch.setattr(finetune_process.subprocess, "Popen", FakePopen)
    (tmp_path / "a_C4.wav").write_bytes(b"")
    job = finetune_process.FineTuneProcess(
        tmp_path / "init.pt", [tmp_path / "a_C4.wav"], "My Cello", tmp_path / "out.pt", steps=300, work=tmp_path / "w"
    )
    job.start()
    job._close()
    (cmd,) = seen
    return cmd


def test_the_app_fine_tune_runs_sing_train_as_a_child_process(tmp_path, monkeypatch):
    """The app's only way into training: ``python -m training.sing_train`` with the contract's flags."""
    cmd = started_command(tmp_path, monkeypatch)
    assert cmd[:3] == [sys.executable, "-m", "training.sing_train"]
    w = tmp_path / "w"
    assert cmd == contract.finetune_command(
        sys.executable, w / "pack", tmp_path / "init.pt", "My Cello", w / "run", 300
    )


def test_training_accepts_every_flag_the_app_passes(tmp_path, monkeypatch):
    """The flags the app passes, parsed by sing-train's own parser (no training run): all known, as meant."""
    from training.sing_train import build_parser

    flags = started_command(tmp_path, monkeypatch)[3:]
    args = build_parser().parse_args(flags)
    assert (args.stage, args.name, args.max_steps, args.threads) == ("e2e", "My Cello", 300, 1)
    assert args.pack == tmp_path / "w" / "pack" and args.out == tmp_path / "w" / "run"
    assert Path(args.init) == tmp_path / "init.pt" and args.no_progress and args.checkpoint_every == 0
    with pytest.raises(SystemExit):  # the parser does refuse what it does not know
        build_parser().parse_args([*flags, "--no-such-flag"])


def test_training_writes_the_files_the_app_reads(tmp_path):
    """sing-train's metric lines carry the contract's fields, in the contract's file."""
    from training import sing_train

    class Dist:
        is_main = True

    trainer = object.__new__(sing_train.Trainer)
    trainer.dist, trainer.out, trainer.writer = Dist(), tmp_path, None
    trainer.state = {"stage": "e2e", "epoch": 0, "step": 5}
    trainer.metric({contract.LOSS_FIELD: 0.5})
    (line,) = (tmp_path / contract.METRICS_FILE).read_text().splitlines()
    rec = json.loads(line)
    assert rec[contract.STEP_FIELD] == 5 and rec[contract.LOSS_FIELD] == 0.5
    assert "train_loss" == contract.LOSS_FIELD and "step" == contract.STEP_FIELD  # what older runs wrote
    assert contract.CHECKPOINT_FILE == "checkpoint.pt" and contract.TRAIN_MODULE == "training.sing_train"
