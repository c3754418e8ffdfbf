"""Every README command runs as written: the cheap ones are run (in a scratch folder that sees the repository's
``assets/``), the long ones (installs, training, benchmarks, the GUI) are skipped by the rules in ``SKIP`` below, and
every ``--flag`` a README command or table row gives a program is one its ``--help`` lists."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
_SCRIPTS_TABLE = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
SCRIPTS = dict(re.findall(r'^([\w-]+) = "([\w.]+:\w+)"', _SCRIPTS_TABLE, re.M))  # console script -> mod:fn (3.10)
PROGRAMS = {*SCRIPTS, "python", "python3", "bash", "pip", "apt-get", "torchrun", "mutmut", "git"}
OURS = ("sing_app", "synth_core", "training", "bench")  # the project's packages (pip's or pytest's flags are theirs)
PLACEHOLDER = re.compile(r"[\[\]|{}…]|\.\.\.|^[A-Z][A-Z0-9_]*$|^X\.|^my_|^song\.mid$")


@dataclass
class Command:
    text: str
    words: list[str]  # without leading VAR=value assignments
    env: dict[str, str]
    row_flags: list[str] = field(default_factory=list)  # flags the same table row gives the program

    @property
    def program(self) -> str:
        return self.words[0]

    @property
    def module(self) -> str | None:
        """The Python module the command runs (console scripts too), for its --help."""
        if self.program in SCRIPTS:
            return SCRIPTS[self.program].split(":")[0]
        if self.program in ("python", "python3") and len(self.words) > 2 and self.words[1] == "-m":
            return self.words[2] if self.words[2].split(".")[0] in OURS else None
        return None


def _command(text: str) -> Command | None:
    text = text.strip().strip("{}").strip()
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if not words or words[0] not in PROGRAMS:
        return None
    return Command(text, words, env)


def _segments(code: str) -> list[str]:
    return [s for s in re.split(r"\s*(?:&&|\|\||;)\s*", code) if s.strip()]


def readme_commands() -> list[Command]:
    """Commands of the README's fenced blocks (each step of a ``&&`` chain) and inline code; a table row's other
    code spans that are flags (``--sine``) belong to the row's first command."""
    found: list[Command] = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", README, re.S):
        for line in block.splitlines():
            found += filter(None, map(_command, _segments(line)))
    prose = re.sub(r"```[^\n]*\n.*?```", "", README, flags=re.S)
    for line in prose.splitlines():
        spans = [s.replace("\\|", "|") for s in re.findall(r"`([^`\n]+)`", line)]
        row = [c for s in spans for c in filter(None, map(_command, _segments(s)))]
        owner = next((c for c in row if c.module), None)  # a row's flags are its program's (not pip's)
        if owner is not None and line.lstrip().startswith("|"):
            owner.row_flags = [w for s in spans if s.startswith("--") for w in s.split() if w.startswith("--")]
        found += row
    return found


def _placeholders(cmd: Command) -> bool:
    return any(PLACEHOLDER.search(w) for w in cmd.words)


# Why a command is not run, tried in order after "--help" (always run): (reason, test).
SKIP: list[tuple[str, object]] = [
    ("installs packages", lambda c: c.program in ("apt-get", "pip") or c.words[1:3] == ["-m", "pip"]),
    ("changes the checkout", lambda c: c.program == "git"),
    ("runs the whole test suite (this test too)", lambda c: c.words[1:3] == ["-m", "pytest"]),
    ("trains a model (minutes to hours)", lambda c: c.program in ("sing-train", "wavernn-train", "torchrun")),
    ("trains a model (minutes to hours)", lambda c: c.program == "bash" and c.words[1].startswith("training/")),
    ("a training or evaluation tool on data the checkout lacks", lambda c: (c.module or "").startswith("training.")),
    ("a benchmark", lambda c: any(w.startswith("bench/") for w in c.words)),
    ("mutation testing (hours)", lambda c: c.program == "mutmut"),
    ("rewrites the screenshots in docs/ under a display", lambda c: c.module == "sing_app.screenshot"),
    ("opens the GUI", lambda c: c.program == "sing-app"),
    ("names the program in prose", lambda c: len(c.words) == 1),
    ("stands for a command with placeholders (CKPT, song.mid, [options])", _placeholders),
]


def skip_reason(cmd: Command) -> str | None:
    if "--help" in cmd.words:
        return None
    return next((reason for reason, test in SKIP if test(cmd)), None)


COMMANDS = readme_commands()
RUN = [c for c in COMMANDS if skip_reason(c) is None]


def _argv(cmd: Command) -> list[str]:
    if cmd.program in SCRIPTS:
        mod, fn = SCRIPTS[cmd.program].split(":")
        boot = f"import sys; from {mod} import {fn}; sys.argv[0] = {cmd.program!r}; sys.exit({fn}())"
        return [sys.executable, "-c", boot, *cmd.words[1:]]
    if cmd.program in ("python", "python3"):
        return [sys.executable, *cmd.words[1:]]
    return cmd.words


def _env(tmp: Path) -> dict[str, str]:
    threads = os.environ.get("NEUROSYNTH_TEST_THREADS", "2")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QT_QPA_PLATFORM": "offscreen",
        "OMP_NUM_THREADS": threads,
        "XDG_DATA_HOME": str(tmp / "data"),
    }  # fmt: skip - the user's own instruments stay out of it


def test_the_readme_commands_are_found_and_each_is_run_or_skipped_by_a_rule():
    runs = {c.text for c in RUN}
    assert "sing-render --note 60 --instrument grand_piano --velocity 100 --duration 3 -o note.wav" in runs
    assert {"sing-render --list-instruments", "sing-render assets/demo.mid -o demo.wav", "sing-app --help"} <= runs
    assert any(skip_reason(c) == "installs packages" for c in COMMANDS)
    assert any(skip_reason(c) == "opens the GUI" for c in COMMANDS)


@pytest.mark.parametrize("cmd", RUN, ids=[c.text[:60] for c in RUN])
def test_readme_command_runs_as_written(cmd, tmp_path):
    (tmp_path / "assets").symlink_to(ROOT / "assets")  # the README's commands run in the repository's root
    env = {**_env(tmp_path), **cmd.env}
    done = subprocess.run(_argv(cmd), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd.text}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    if "-o" in cmd.words:
        out = tmp_path / cmd.words[cmd.words.index("-o") + 1]
        assert out.is_file() and out.stat().st_size > 1000, f"{cmd.text} wrote no {out.name}"


MODULES = sorted({c.module for c in COMMANDS if c.module})
_HELP_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for module in sys.argv[1:]:
    text, sys.argv = io.StringIO(), [module, "--help"]
    try:
        with contextlib.redirect_stdout(text):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out[module] = [code, text.getvalue()]
print("HELP-JSON" + json.dumps(out))
"""


@cache
def _helps() -> dict[str, list]:
    """Every module's ``--help`` text, from one interpreter (torch and Qt imported once, not a dozen times)."""
    env = _env(Path(os.environ.get("TMPDIR", "/tmp")))
    done = subprocess.run([sys.executable, "-c", _HELP_ALL, *MODULES], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert "HELP-JSON" in done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout.split("HELP-JSON", 1)[1])


def _help(module: str) -> str:
    code, text = _helps()[module]
    assert code == 0, f"python -m {module} --help exited with {code}"
    return text


@pytest.mark.parametrize("module", MODULES)
def test_readme_flags_are_the_programs_own(module):
    """Also for the commands not run: a flag the README gives a program is one the program has."""
    text = _help(module)
    flags = {w.split("=")[0] for c in COMMANDS if c.module == module for w in [*c.words, *c.row_flags]}
    listed = set(re.findall(r"(?<![\w-])--[\w-]+", text))
    unknown = sorted(f for f in flags if f.startswith("--") and f not in listed)
    assert not unknown, f"README gives {module} flags its --help does not list: {unknown}"
