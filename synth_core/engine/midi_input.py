"""MIDI input through mido + python-rtmidi: list, open, hot-plug rescan, in-process feed."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable

import mido

from synth_core.engine.jack_patchbay import Connection, JackPatchbay
from synth_core.engine.midi_poll import PolledBackend

log = logging.getLogger(__name__)


RTMIDI = "mido.backends.rtmidi"
APP_CLIENT, APP_PORT = "NeuroSynth", "midi_in"  # the app's own input: JACK's (and ALSA's) "NeuroSynth:midi_in"
JACK = f"{RTMIDI}/UNIX_JACK"
RETRY_S = 10.0  # an rtmidi API that failed (no JACK server) is tried again after this long, not at every rescan


def _effective(name: str | None) -> str:
    """The backend ``name`` stands for: itself, else ``$MIDO_BACKEND``, else rtmidi (mido's default)."""
    return name or os.environ.get("MIDO_BACKEND") or RTMIDI


def _backend(name: str | None):
    """Where ports of the backend ``name`` (None: ``$MIDO_BACKEND`` or rtmidi) open: rtmidi's through
    :class:`PolledBackend` (no Python in the MIDI system's thread: ``midi_poll``), others through mido."""
    effective = _effective(name)
    if effective.startswith(RTMIDI):
        return PolledBackend(effective)
    return mido.Backend(name) if name else mido


_listers: dict[str, object] = {}
_failed: dict[str, float] = {}  # backend -> when its listing client last failed to start
_port_backends: dict[str, str | None] = {}  # port name (as listed) -> the backend it came from


@contextlib.contextmanager
def _quiet_stderr():
    """Silence what C libraries print on fd 2 meanwhile (libjack's "Cannot connect to server socket", ALSA's
    "open /dev/snd/seq failed" when the system lacks them: a missing API is skipped quietly)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def jack_patchbay() -> JackPatchbay | None:
    """The kept-open passive JACK client (listing, connecting), or None without JACK-Client or a server."""
    lister = _listers.get(JACK)
    if isinstance(lister, JackPatchbay) and lister.alive:
        return lister
    try:
        with _quiet_stderr():
            _listers[JACK] = JackPatchbay()
    except OSError as exc:
        log.debug("%s", exc)
        return None
    return _listers[JACK]


def _rtmidi_lister(backend: str | None):
    """A kept-open client used only for listing: opening a new one per rescan is slow under JACK (seconds). Under
    JACK the passive :class:`JackPatchbay` (it takes no part in the server's cycle), else an rtmidi input. None
    when the backend is not rtmidi."""
    name = _effective(backend)
    if not name.startswith(RTMIDI):
        return None
    if name not in _listers:
        if name == JACK and jack_patchbay() is not None:
            return _listers[name]
        import rtmidi

        api = name.partition("/")[2]
        with _quiet_stderr():
            _listers[name] = rtmidi.MidiIn(getattr(rtmidi, f"API_{api}") if api else rtmidi.API_UNSPECIFIED)
    return _listers[name]


def default_backends() -> list[str | None]:
    """The backends ports are listed from when none is asked for: ``$MIDO_BACKEND`` when set, else every rtmidi
    API compiled in (the system's, e.g. ALSA, then JACK), else mido's default."""
    if os.environ.get("MIDO_BACKEND"):
        return [None]
    try:
        import rtmidi

        compiled = list(rtmidi.get_compiled_api())
    except Exception:  # noqa: BLE001 - no python-rtmidi: mido's own default
        return [None]
    names = {getattr(rtmidi, f"API_{a}", None): a for a in ("LINUX_ALSA", "MACOSX_CORE", "WINDOWS_MM", "UNIX_JACK")}
    found = [f"{RTMIDI}/{names[a]}" for a in compiled if a in names]
    return sorted(found, key=lambda b: b == JACK) or [None]  # the system's first, then JACK


def forget_midi_clients() -> None:
    """Close the listing clients (before stopping a JACK server, or to force a reconnect)."""
    for lister in _listers.values():
        if isinstance(lister, JackPatchbay):
            lister.close()
    _listers.clear()
    _failed.clear()


def _list_one(backend: str | None) -> list[str]:
    lister = _rtmidi_lister(backend)
    if lister is not None:
        try:
            return list(lister.get_ports())
        except Exception:
            _listers.pop(_effective(backend), None)  # gone (JACK restarted): again
            raise
    return list(_backend(backend).get_input_names())


def list_midi_ports(backend: str | None = None) -> list[str]:
    """Names of the MIDI input ports: of ``backend``, or of every rtmidi API the system has (ALSA and JACK on
    Linux, :func:`default_backends`), a failing one skipped quietly. A name both list is the JACK one's with
    " (JACK)" added. Empty when no MIDI system is available."""
    if backend is not None:
        try:
            return _list_one(backend)
        except Exception as exc:  # noqa: BLE001 - whatever the MIDI system raises
            log.debug("no MIDI ports from %s: %s", backend, exc)
            return []
    ports: list[str] = []
    now = time.monotonic()
    for b in default_backends():
        if b is not None and now - _failed.get(b, -RETRY_S) < RETRY_S:
            continue
        try:
            names = _list_one(b)
        except Exception as exc:  # noqa: BLE001
            log.debug("no MIDI ports from %s: %s", b or "mido's backend", exc)
            if b is not None:
                _failed[b] = now
            continue
        _failed.pop(b or "", None)
        for name in names:
            shown = f"{name} (JACK)" if name in ports and b is not None and b.endswith("JACK") else name
            if shown not in ports:
                ports.append(shown)
                _port_backends[shown] = b
    return ports


def port_backend(port: str) -> tuple[str | None, str]:
    """The backend a listed port came from and its name there (without the " (JACK)" that set it apart)."""
    backend = _port_backends.get(port)
    if backend is not None and backend.endswith("JACK") and port.endswith(" (JACK)"):
        return backend, port[: -len(" (JACK)")]
    return backend, port


def match_port(wanted: str, ports: list[str]) -> str:
    """The port ``wanted`` names: the exact name, else the one port whose name has it (any case, e.g. "keystep"
    for "Arturia KeyStep 32:Arturia KeyStep 32 MIDI 1 20:0"); ValueError listing the ports when none or several
    match."""
    if wanted in ports:
        return wanted
    hits = [p for p in ports if wanted.lower() in p.lower()]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ValueError(f"MIDI input {wanted!r} is ambiguous: it could be {', '.join(hits)}; give more of the name")
    raise ValueError(f"MIDI input {wanted!r} not found; available: {', '.join(ports) or 'none'}")


def _matches(wanted: str, ports: list[str]) -> bool:
    try:
        match_port(wanted, ports)
    except ValueError:
        return False
    return True


class MidiInput:
    """Forwards incoming messages to ``callback`` (e.g. ``engine.handle_midi``).

    ``backend`` is a mido backend name such as ``"mido.backends.rtmidi/UNIX_JACK"`` (default: the ports of every
    rtmidi API the system has, ALSA and JACK on Linux, each opened through its own).
    """

    def __init__(self, callback: Callable[[mido.Message], None], backend: str | None = None):
        self.callback = callback
        self.backend = backend
        self.port = None
        self.port_name: str | None = None
        self._wanted: str | None = None
        self.app_ports: dict[str, object] = {}  # backend -> the app's own input port there (open_app_ports)
        self.app_jack_port: str | None = None  # its full JACK name ("NeuroSynth:midi_in", or "NeuroSynth-01:...")
        self._app_ports_tried: float | None = None  # when open_app_ports last ran (None: not wanted)

    def open_app_ports(self) -> list[str]:
        """Open the app's own input port, ``NeuroSynth:midi_in``, in every MIDI system running (JACK, ALSA), for
        other programs to connect to (a DAW's MIDI output, a patchbay); what it plays reaches ``callback`` as
        the chosen port's does. A system that starts later gets its port at a later :meth:`rescan`. The backends
        with the port."""
        self._app_ports_tried = time.monotonic()
        backends = [self.backend] if self.backend else [b for b in default_backends() if b is not None]
        for b in backends:
            if b in self.app_ports or not b.startswith(RTMIDI):
                continue
            patchbay = jack_patchbay() if b == JACK else None
            before = set(patchbay.midi_inputs()) if patchbay is not None else set()
            try:
                with _quiet_stderr():
                    self.app_ports[b] = _backend(b).open_input(
                        APP_PORT, client_name=APP_CLIENT, callback=self._on_message
                    )
            except Exception as exc:  # noqa: BLE001 - that MIDI system is not running
                log.debug("no app MIDI port in %s: %s", b, exc)
                continue
            if patchbay is not None:
                ours = [p for p in patchbay.midi_inputs() if p not in before and p.endswith(f":{APP_PORT}")]
                self.app_jack_port = ours[0] if len(ours) == 1 else None
        return list(self.app_ports)

    def close_app_ports(self) -> None:
        if isinstance(self.port, Connection):  # it came in through the app's port
            self.close()
        self._app_ports_tried = None
        self.app_jack_port = None
        for port in self.app_ports.values():
            try:
                port.close()
            except Exception:  # noqa: BLE001 - its MIDI system went away
                pass
        self.app_ports.clear()

    def _on_message(self, msg: mido.Message) -> None:
        try:
            self.callback(msg)
        except Exception:  # a bad message must not kill the MIDI thread
            log.exception("MIDI callback failed for %s", msg)

    def feed(self, msg: mido.Message) -> None:
        """Deliver a message as if it came from the port (tests, virtual keyboards)."""
        self._on_message(msg)

    def open(self, name: str) -> None:
        """Open the input port ``name`` or the one port whose name has it (any case), through the API it was
        listed from (closing the current one); ValueError, listing the ports, if none or several match."""
        self.close()
        port = match_port(name, list_midi_ports(self.backend))
        backend, real = (self.backend, port) if self.backend is not None else port_backend(port)
        patchbay = jack_patchbay() if _effective(backend) == JACK and self.app_jack_port else None
        if patchbay is not None:  # connected to the app's own input: no JACK client more
            self.port = Connection(patchbay, real, self.app_jack_port)
        else:
            self.port = _backend(backend).open_input(real, callback=self._on_message)
        self.port_name = port
        self._wanted = name

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            finally:
                self.port = None
                self.port_name = None

    def rescan(self) -> list[str]:
        """List ports again (hot-plug): closes a vanished port, reopens the chosen one when it returns (and opens
        the app's own ports in a MIDI system started since, every ``RETRY_S``)."""
        ports = list_midi_ports(self.backend)
        if self._app_ports_tried is not None and time.monotonic() - self._app_ports_tried >= RETRY_S:
            self.open_app_ports()
        if self.port_name is not None and self.port_name not in ports:
            wanted = self._wanted
            self.close()
            self._wanted = wanted
        elif self.port is None and self._wanted is not None and _matches(self._wanted, ports):
            try:
                self.open(self._wanted)
            except Exception as exc:
                log.warning("could not reopen MIDI input %s: %s", self._wanted, exc)
        return ports
