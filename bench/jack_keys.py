"""A JACK MIDI keyboard in its own process: plays :func:`chord` chords (also ``bench/soak.py``'s) into a port (the app's
``NeuroSynth:midi_in``), as a USB keyboard bridged into JACK or a DAW's track would; prints JSON when done.

    python bench/jack_keys.py --port NeuroSynth:midi_in --voices 8 --period 1 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import time

import mido

JACK = "mido.backends.rtmidi/UNIX_JACK"


def chord(k: int, voices: int) -> list[int]:
    """The ``k``-th chord: ``voices`` distinct pitches, cycling through 4 voicings (so some repeat and hit
    the note cache, as when a player repeats a pattern)."""
    span = 3 * voices
    return [36 + (3 * i + 5 * (k % 4)) % span for i in range(voices)]


def _open(port: str, virtual: bool, wait_s: float):
    """Connect to ``port``, or (``virtual``) offer a port of that name and wait until someone connects to it (the
    app, once the musician picked it: its hot-plug rescan finds it within a few seconds)."""
    backend = mido.Backend(JACK)
    deadline = time.monotonic() + wait_s
    if virtual:
        import jack

        out = _realtime_client(lambda: backend.open_output(port, virtual=True))
        probe = jack.Client("jack-keys-probe", no_start_server=True)
        try:
            while True:
                mine = [p for p in probe.get_ports(f":{port}$", is_midi=True, is_output=True)]
                if mine and probe.get_all_connections(mine[0]):
                    return out
                if time.monotonic() > deadline:
                    raise SystemExit(f"nobody connected to the MIDI port {port!r}")
                time.sleep(0.1)
        finally:
            probe.close()
    while port not in backend.get_output_names():
        if time.monotonic() > deadline:
            raise SystemExit(f"MIDI port {port!r} did not appear; there are: {backend.get_output_names()}")
        time.sleep(0.1)
    return _realtime_client(lambda: backend.open_output(port))


def _realtime_client(open_port):
    """``open_port()`` with the JACK client threads it starts made real-time, as a real-time server (or a2jmidid
    beside one) runs a hardware keyboard's client: under ``jackd --no-realtime`` a late keyboard client is an xrun
    for every client, which is not the app's to answer for."""
    from synth_core.engine.thread_priority import make_realtime, threads_started

    with threads_started() as started:
        out = open_port()
    for tid in started:
        make_realtime(tid)
    return out


def play(port: str, voices: int, period_s: float, seconds: float, wait_s: float = 20.0, virtual: bool = False) -> dict:
    """Wait up to ``wait_s`` for ``port`` (or, ``virtual``, for a connection to a port of ours of that name), then
    play a chord every ``period_s`` for ``seconds``."""
    out = _open(port, virtual, wait_s)
    time.sleep(0.3)  # the connection settles
    k, sent, notes = 0, 0, []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for n in notes:
            out.send(mido.Message("note_off", note=n))
        notes = chord(k, voices)
        for n in notes:
            out.send(mido.Message("note_on", note=n, velocity=100))
        sent += len(notes)
        k += 1
        time.sleep(max(0.0, t0 + k * period_s - time.monotonic()))
    for n in notes:
        out.send(mido.Message("note_off", note=n))
    time.sleep(0.2)
    out.close()
    return {"port": port, "chords": k, "notes_sent": sent, "seconds": time.monotonic() - t0}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", default="NeuroSynth:midi_in")
    p.add_argument("--voices", type=int, default=8)
    p.add_argument("--period", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--virtual", action="store_true", help="offer a port named --port and wait for a connection")
    args = p.parse_args(argv)
    print(json.dumps(play(args.port, args.voices, args.period, args.seconds, virtual=args.virtual)))


if __name__ == "__main__":
    main()
