"""MIDI input through mido + python-rtmidi: list, open, hot-plug rescan, in-process feed."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import mido

log = logging.getLogger(__name__)


def _backend(name: str | None):
    return mido.Backend(name) if name else mido


_listers: dict[str, object] = {}


def _rtmidi_lister(backend: str | None):
    """A kept-open rtmidi input used only for listing: opening a new client per rescan is slow
    under JACK (seconds). None when the backend is not rtmidi."""
    name = backend or os.environ.get("MIDO_BACKEND") or "mido.backends.rtmidi"
    if not name.startswith("mido.backends.rtmidi"):
        return None
    if name not in _listers:
        import rtmidi

        api = name.partition("/")[2]
        _listers[name] = rtmidi.MidiIn(getattr(rtmidi, f"API_{api}") if api else rtmidi.API_UNSPECIFIED)
    return _listers[name]


def forget_midi_clients() -> None:
    """Close the listing clients (before stopping a JACK server, or to force a reconnect)."""
    _listers.clear()


def list_midi_ports(backend: str | None = None) -> list[str]:
    """Names of the MIDI input ports (empty when the MIDI system is unavailable)."""
    try:
        lister = _rtmidi_lister(backend)
        if lister is not None:
            try:
                return list(lister.get_ports())
            except Exception:
                _listers.clear()  # the MIDI system went away (e.g. JACK restarted): reconnect next time
                raise
        return list(_backend(backend).get_input_names())
    except Exception as exc:
        log.debug("no MIDI ports: %s", exc)
        return []


class MidiInput:
    """Forwards incoming messages to ``callback`` (e.g. ``engine.handle_midi``).

    ``backend`` is a mido backend name such as ``"mido.backends.rtmidi/UNIX_JACK"``
    (default: mido's, i.e. rtmidi with the system API).
    """

    def __init__(self, callback: Callable[[mido.Message], None], backend: str | None = None):
        self.callback = callback
        self.backend = backend
        self.port = None
        self.port_name: str | None = None
        self._wanted: str | None = None

    def _on_message(self, msg: mido.Message) -> None:
        try:
            self.callback(msg)
        except Exception:  # a bad message must not kill the MIDI thread
            log.exception("MIDI callback failed for %s", msg)

    def feed(self, msg: mido.Message) -> None:
        """Deliver a message as if it came from the port (tests, virtual keyboards)."""
        self._on_message(msg)

    def open(self, name: str) -> None:
        """Open input port ``name`` (closing the current one); ValueError if it does not exist."""
        self.close()
        ports = list_midi_ports(self.backend)
        if name not in ports:
            raise ValueError(f"MIDI input {name!r} not found; available: {', '.join(ports) or 'none'}")
        self.port = _backend(self.backend).open_input(name, callback=self._on_message)
        self.port_name = name
        self._wanted = name

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            finally:
                self.port = None
                self.port_name = None

    def rescan(self) -> list[str]:
        """List ports again (hot-plug): closes a vanished port, reopens the chosen one when it returns."""
        ports = list_midi_ports(self.backend)
        if self.port_name is not None and self.port_name not in ports:
            wanted = self._wanted
            self.close()
            self._wanted = wanted
        elif self.port is None and self._wanted in ports:
            try:
                self.open(self._wanted)
            except Exception as exc:
                log.warning("could not reopen MIDI input %s: %s", self._wanted, exc)
        return ports
