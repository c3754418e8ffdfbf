"""A passive JACK client (never activated) that lists MIDI ports and connects them to the app's own input.

Every *active* JACK client is woken once per server cycle, in turn; on a loaded machine each one is one more
chance for the cycle to come late (an xrun; `bench/RESULTS.md`: three idle RtMidi clients beside a busy core,
3-19 xruns in 20 s against 0-1 without). RtMidi's JACK clients are always active, one per port, and listing ports
through RtMidi needs one too. Here the listing and the patching go through one client that is never activated (it
talks to the server, it takes no part in the cycle), and a chosen keyboard is *connected* to
``NeuroSynth:midi_in`` instead of being opened by a client of its own: the app's MIDI input stays one client.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CLIENT = "NeuroSynth-patchbay"


class JackPatchbay:
    """List JACK MIDI output ports; connect and disconnect them. Raises ``OSError`` when JACK-Client, libjack or
    the server is missing (the caller falls back to RtMidi)."""

    def __init__(self):
        try:
            import jack
        except (ImportError, OSError) as exc:  # no JACK-Client, or no libjack
            raise OSError(f"JACK patchbay unavailable: {exc}") from exc
        try:
            self._client = jack.Client(CLIENT, no_start_server=True)
        except jack.JackError as exc:
            raise OSError(f"no JACK server: {exc}") from exc
        self._jack = jack
        self.alive = True
        self._client.set_shutdown_callback(self._on_shutdown)

    def _on_shutdown(self, status, reason) -> None:  # the server stopped (JACK's thread: only a flag)
        self.alive = False

    def _check(self) -> None:
        if not self.alive:
            raise OSError("the JACK server went away")

    def midi_outputs(self) -> list[str]:
        """Full names ("client:port") of the MIDI ports that can be read from (keyboards, DAW outputs)."""
        self._check()
        return [p.name for p in self._client.get_ports(is_midi=True, is_output=True)]

    get_ports = midi_outputs  # as an RtMidi input lists them: the patchbay stands in for RtMidi's listing client

    def midi_inputs(self) -> list[str]:
        """Full names of the MIDI ports that can be written to (the app's own input among them)."""
        self._check()
        return [p.name for p in self._client.get_ports(is_midi=True, is_input=True)]

    def connect(self, source: str, destination: str) -> None:
        try:
            self._client.connect(source, destination)
        except self._jack.JackError as exc:
            raise OSError(f"could not connect {source} to {destination}: {exc}") from exc

    def disconnect(self, source: str, destination: str) -> None:
        """Quietly nothing when the connection is gone (the keyboard was unplugged)."""
        try:
            self._client.disconnect(source, destination)
        except self._jack.JackError as exc:
            log.debug("disconnect %s -> %s: %s", source, destination, exc)

    def close(self) -> None:
        try:
            self._client.close()
        except self._jack.JackError:  # the server went away first
            pass


class Connection:
    """A JACK port connected to the app's own input, in the role of an opened port: ``name``, ``close()``."""

    def __init__(self, patchbay: JackPatchbay, source: str, destination: str):
        patchbay.connect(source, destination)
        self._patchbay, self.name, self.destination = patchbay, source, destination

    def close(self) -> None:
        self._patchbay.disconnect(self.name, self.destination)
