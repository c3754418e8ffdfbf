"""What idle JACK clients cost: a silent stream's device underflows and jackd xruns with 0 or N idle RtMidi JACK
inputs (each an active client the server wakes every cycle), rounds interleaved, host steal beside; prints JSON.

    PYTHONPATH=. python bench/jack_clients.py --clients 0,2 --rounds 4 --seconds 15 [--busy-core]
"""

from __future__ import annotations

import argparse
import json
import time

from bench.common import busy_core, cpu_model, cpu_steal_s
from bench.jack_dummy import baseline_dropouts, jack_dummy_server


def measure(counts: list[int], rounds: int, seconds: float) -> list[dict]:
    import rtmidi

    rows = []
    with jack_dummy_server() as jack:
        baseline_dropouts(jack, 2.0)  # the server settles
        for r in range(rounds):
            for n in counts:
                clients = []
                for i in range(n):
                    m = rtmidi.MidiIn(rtmidi.API_UNIX_JACK)
                    m.open_virtual_port(f"idle{i}")
                    clients.append(m)
                time.sleep(0.5)
                steal0 = cpu_steal_s()
                d = baseline_dropouts(jack, seconds)
                steal = None if steal0 is None else round(cpu_steal_s() - steal0, 2)
                rows.append({"round": r, "idle_clients": n, **d, "host_steal_s": steal})
                for m in clients:
                    m.close_port()
                    m.delete()
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="0,2", help="comma list of idle client counts")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--busy-core", action="store_true", help="a pure-Python loop in another process meanwhile")
    args = p.parse_args(argv)
    with busy_core(args.busy_core):
        rows = measure([int(c) for c in args.clients.split(",")], args.rounds, args.seconds)
    total = {}
    for row in rows:
        t = total.setdefault(row["idle_clients"], {"device_underflows": 0, "jack_xruns": 0, "seconds": 0.0})
        for k in t:
            t[k] += row[k]
    print(json.dumps({"cpu_model": cpu_model(), "busy_core": args.busy_core, "rows": rows, "total": total}, indent=1))


if __name__ == "__main__":
    main()
