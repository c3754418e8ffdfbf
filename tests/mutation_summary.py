"""Summarise a mutmut run per module as a markdown table (run it in the folder where ``mutmut run`` ran).

    python /path/to/tests/mutation_summary.py [--survivors FILE]

Killed counts mutants a test failed on and those that timed out (the mutant hangs the code); "no tests" are
mutants in code no selected test runs. The score is killed / all.
"""

from __future__ import annotations

import argparse
import subprocess
from collections import Counter, defaultdict

KILLED = {"killed", "timeout"}


def results() -> list[tuple[str, str]]:
    out = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            rows.append((name, status.strip()))
    return rows


def module_of(name: str) -> str:
    head = name.split("__mutmut_")[0]
    parts = head.split(".")
    mod = [p for p in parts if not p.startswith("x")]  # mangled function names start with x_ / xǁ
    return ".".join(mod)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--survivors", help="write the surviving mutants' names here")
    args = ap.parse_args()
    rows = results()
    by_mod: dict[str, Counter] = defaultdict(Counter)
    for name, status in rows:
        by_mod[module_of(name)][status] += 1
    total = Counter()
    print("| module | mutants | killed | survived | no tests | score |")
    print("|---|---|---|---|---|---|")
    for mod in sorted(by_mod):
        c = by_mod[mod]
        total.update(c)
        n, k = sum(c.values()), sum(c[s] for s in KILLED)
        print(f"| `{mod}` | {n} | {k} | {c['survived']} | {c['no tests']} | {100 * k / n:.0f} % |")
    n, k = sum(total.values()), sum(total[s] for s in KILLED)
    print(f"| **all** | {n} | {k} | {total['survived']} | {total['no tests']} | **{100 * k / n:.1f} %** |")
    other = {s: v for s, v in total.items() if s not in KILLED | {"survived", "no tests"}}
    if other:
        print(f"\nother states: {other}")
    if args.survivors:
        with open(args.survivors, "w") as f:
            f.writelines(f"{name}\n" for name, status in rows if status in ("survived", "no tests"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
