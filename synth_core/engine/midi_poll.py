"""rtmidi input ports read by a polling thread, never by a Python callback in the MIDI system's thread.

mido's rtmidi ports always hand RtMidi a Python callback. Under JACK, RtMidi calls it from the client's *process*
thread, inside the server's cycle: each incoming message waits there for the GIL (held by the GUI's repaint or the
engine's Python work for up to the switch interval) and then runs the app's MIDI handling, so the whole cycle
comes late for every client, the audio one included (a jackd xrun, a click). Here RtMidi keeps the messages in its
own C queue (no callback set) and one daemon thread, ``midi-poll``, takes them out every ``POLL_S`` and delivers
them as mido messages: the server's thread never waits for Python.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import mido

from .thread_priority import ThreadScheduling, make_realtime, threads_started

log = logging.getLogger(__name__)

POLL_S = 0.001  # 1 ms: below a 256-frame block (5.3 ms at 48 kHz), so a note still starts in the same block
QUEUE_LIMIT = 4096  # messages RtMidi keeps between two polls (a dense MPE stream is a few hundred a second)


def _api(backend: str):
    import rtmidi

    api = backend.partition("/")[2]
    return getattr(rtmidi, f"API_{api}") if api else rtmidi.API_UNSPECIFIED


class PolledInput:
    """One rtmidi input port (a system port by name, or a virtual port of ours) whose messages reach
    ``callback`` from the poll thread. Mirrors the part of mido's port the app uses: ``name``, ``close()``."""

    def __init__(
        self,
        backend: str,
        name: str,
        callback: Callable[[mido.Message], None],
        *,
        virtual: bool = False,
        client_name: str | None = None,
    ):
        import rtmidi

        self.callback = callback
        with threads_started() as started:  # under JACK: the client's threads (its process thread among them)
            client = client_name or "RtMidi Input Client"
            self._rt = rtmidi.MidiIn(_api(backend), name=client, queue_size_limit=QUEUE_LIMIT)
            try:
                if virtual:
                    self._rt.open_virtual_port(name)
                else:
                    ports = self._rt.get_ports()
                    if name not in ports:
                        raise OSError(f"unknown MIDI port {name!r}")
                    self._rt.open_port(ports.index(name))
                self._rt.ignore_types(sysex=False, timing=False, active_sense=True)  # as mido's ports
            except Exception:
                self._rt.delete()
                raise
        #: the scheduling of the JACK client's threads (empty for other MIDI systems): real-time, as a real-time
        #: server would make them, so that a cycle never waits for this client behind the GUI or the model
        self.client_threads: list[ThreadScheduling] = (
            [make_realtime(tid) for tid in started] if self._rt.get_current_api() == rtmidi.API_UNIX_JACK else []
        )
        if self.client_threads:
            log.info("JACK MIDI client %r: %s", client, ", ".join(t.describe() for t in self.client_threads))
        self.name = name
        self.closed = False
        _poller().add(self)

    def drain(self) -> int:
        """Deliver every queued message (the poll thread's step; tests call it directly). Messages delivered."""
        n = 0
        while not self.closed:
            got = self._rt.get_message()
            if got is None:
                break
            try:
                msg = mido.Message.from_bytes(got[0])
            except ValueError:  # unknown or broken bytes: ignored, as mido's callback does
                continue
            n += 1
            try:
                self.callback(msg)
            except Exception:  # a bad message must not stop the poll thread
                log.exception("MIDI callback failed for %s", msg)
        return n

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        _poller().remove(self)
        try:
            self._rt.close_port()
        finally:
            self._rt.delete()


class _Poller:
    """The one thread that drains every open :class:`PolledInput`; it sleeps while none is open."""

    def __init__(self):
        self._ports: list[PolledInput] = []
        self._lock = threading.RLock()  # a callback may close its own port
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, port: PolledInput) -> None:
        with self._lock:
            self._ports = [*self._ports, port]
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="midi-poll", daemon=True)
                self._thread.start()
        self._wake.set()

    def remove(self, port: PolledInput) -> None:
        with self._lock:  # held while a drain runs: after this returns, no callback of ``port`` runs any more
            self._ports = [p for p in self._ports if p is not port]

    def _loop(self) -> None:
        while True:
            ports = self._ports
            if not ports:
                self._wake.wait()
                self._wake.clear()
                continue
            with self._lock:
                for port in self._ports:
                    port.drain()
            time.sleep(POLL_S)


_the_poller: _Poller | None = None
_poller_lock = threading.Lock()


def _poller() -> _Poller:
    global _the_poller
    with _poller_lock:
        if _the_poller is None:
            _the_poller = _Poller()
        return _the_poller


class PolledBackend:
    """The part of ``mido.Backend`` the app uses, for an rtmidi backend name (``mido.backends.rtmidi[/API]``),
    with its inputs read by the poll thread."""

    def __init__(self, name: str):
        self.name = name

    def open_input(
        self, name: str, callback: Callable[[mido.Message], None], client_name: str | None = None, virtual=False
    ) -> PolledInput:
        """``client_name`` (as in mido) makes a virtual port of that client for other programs to connect to."""
        return PolledInput(
            self.name, name, callback, virtual=virtual or client_name is not None, client_name=client_name
        )
