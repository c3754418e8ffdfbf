"""jackd xruns while ``sing-app`` starts and idles (issue #22): the app as a user runs it, on a private JACK dummy
server (48 kHz / 256), window offscreen unless ``DISPLAY`` is given; prints JSON.

    PYTHONPATH=. python bench/app_startup.py --seconds 25 [--runs 3]

Each run: the server alone for ``--baseline`` seconds (its own xruns), then ``sing-app`` started and left idle for
``--seconds``, then stopped. Nothing plays: every xrun here is the start-up's (model loading, warm-up, the window).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import cpu_model
from bench.jack_dummy import jack_dummy_server


def one_run(seconds: float, baseline: float) -> dict:
    with jack_dummy_server() as server:
        x0 = server.xruns()
        time.sleep(baseline)
        x1 = server.xruns()
        env = dict(os.environ)
        if "DISPLAY" not in env:
            env["QT_QPA_PLATFORM"] = "offscreen"
        app = subprocess.Popen(
            [sys.executable, "-m", "sing_app.main", "--audio-device", str(server.device["index"])],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(seconds)
        x2 = server.xruns()
        app.terminate()
        try:
            _, err = app.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            _, err = app.communicate()
        return {
            "baseline_s": baseline,
            "baseline_xruns": x1 - x0,
            "app_s": seconds,
            "app_xruns": x2 - x1,
            "stderr_tail": err[-300:],
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=25.0)
    p.add_argument("--baseline", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args(argv)
    runs = [one_run(args.seconds, args.baseline) for _ in range(args.runs)]
    print(json.dumps({"cpu": cpu_model(), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
