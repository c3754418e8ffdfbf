"""Reliability (issue #4): sing-train killed with SIGKILL mid-run resumes from its checkpoint; corrupt resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_core.sing import load_checkpoint
from training.sing_train import main

SR = 16000
ROOT = Path(__file__).resolve().parent.parent
MAX_STEPS = 60  # what the resumed run is asked for
KILLED_MAX_STEPS = 100_000  # the first run never ends by itself, however slow the poller is
TINY = [
    "--stage", "e2e", "--lstm-hidden", "16", "--lstm-layers", "1", "--decoder-channels", "16",
    "--batch-size", "1", "--crop-steps", "4", "--checkpoint-every", "2", "--device", "cpu", "--threads", "1",
    "--no-progress", "--p-valid", "0", "--p-test", "0", "--eval-notes", "1", "--log-every", "1",
]  # fmt: skip


def write_pack(folder: Path, pitches: range = range(48, 80)) -> Path:
    """Sine-like notes, 0.5 s each, two instruments: with batch 1 an epoch is 2 * len(pitches) steps."""
    folder.mkdir(parents=True)
    t = np.arange(SR // 2) / SR
    for name, h in (("sine", 1), ("odd", 5)):
        for pitch in pitches:
            f = 440.0 * 2.0 ** ((pitch - 69) / 12)
            x = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, h + 1, 2)) * 0.3 * np.exp(-3 * t)
            sf.write(folder / f"{name}_{pitch}_100.wav", x.astype(np.float32), SR)
    return folder


def train_cmd(pack: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training.sing_train", "--pack", str(pack), "--out", str(out), *TINY, *extra]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    return e


def checkpoint_step(path: Path) -> int:
    """Step of the checkpoint at ``path`` (-1 while there is none); saves are atomic, so it is never half written."""
    if not path.is_file():
        return -1
    return int(load_checkpoint(path, "cpu").training["step"])


def train_steps(out: Path) -> list[int]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["step"] for r in records if "train_loss" in r]


def test_sigkill_mid_run_then_resume_reaches_max_steps(tmp_path):
    pack = write_pack(tmp_path / "pack")
    out = tmp_path / "run"
    ckpt = out / "checkpoint.pt"
    proc = subprocess.Popen(
        train_cmd(pack, out, "--max-steps", str(KILLED_MAX_STEPS)),
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while checkpoint_step(ckpt) < 2:
            assert proc.poll() is None, f"training ended before its first checkpoint: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no checkpoint with step >= 2 within 120 s"
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.stderr.close()
    killed = load_checkpoint(ckpt, "cpu").training
    step = killed["step"]
    print(f"killed with checkpoint at step {step} (epoch {killed['epoch']}, batch {killed['batch']})")
    assert 2 <= step < MAX_STEPS
    assert killed["epoch"] == 0 and killed["batch"] == step  # one epoch is 64 steps: killed mid-epoch
    logged_before = len(train_steps(out))

    resumed = subprocess.run(
        train_cmd(pack, out, "--max-steps", str(MAX_STEPS), "--resume"),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    new_steps = train_steps(out)[logged_before:]
    assert new_steps, "the resumed run logged no training step"
    assert new_steps[0] == step + 1, f"resumed at step {new_steps[0]}, checkpoint was at {step}"
    assert new_steps == sorted(new_steps) and new_steps[-1] == MAX_STEPS
    final = load_checkpoint(ckpt, "cpu").training
    assert final["step"] == final["stage_step"] == MAX_STEPS
    assert final["stage"] == "e2e"
    assert (out / "stage_e2e.pt").is_file()


def test_resume_from_corrupt_checkpoint_is_a_clear_error(tmp_path):
    """As a user sees it: a subprocess, exit status non-zero, the file named, no traceback, the file kept."""
    pack = write_pack(tmp_path / "pack", range(60, 62))
    out = tmp_path / "run"
    out.mkdir()
    content = b"garbage, not a checkpoint"
    (out / "checkpoint.pt").write_bytes(content)
    proc = subprocess.run(
        train_cmd(pack, out, "--max-steps", "2", "--resume"),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "checkpoint.pt" in proc.stderr and "sing-train:" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert (out / "checkpoint.pt").read_bytes() == content  # left for inspection, not replaced


@pytest.mark.parametrize(
    "content",
    [None, b"", b"PK\x03\x04" + bytes(range(256)) * 4, b"\x80\x02}q\x00."],
    ids=["missing", "empty", "broken_zip", "old_pickle"],
)
def test_resume_from_missing_or_corrupt_checkpoint_exits_with_its_name(tmp_path, content):
    """The same in-process (faster): SystemExit with a message naming the file, nothing written."""
    pack = write_pack(tmp_path / "pack", range(60, 62))
    out = tmp_path / "run"
    out.mkdir()
    ckpt = out / "checkpoint.pt"
    if content is not None:
        ckpt.write_bytes(content)
    with pytest.raises(SystemExit) as info:
        main(["--pack", str(pack), "--out", str(out), *TINY, "--max-steps", "2", "--resume"])
    message = str(info.value.code)
    assert message.startswith("sing-train:") and str(ckpt) in message
    assert sorted(f.name for f in out.iterdir()) == ([] if content is None else ["checkpoint.pt"])
