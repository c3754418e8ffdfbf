"""Thread scheduling: the audio callback's thread (and our JACK MIDI clients' threads) made real-time where the OS
allows, the worker made nice.

A JACK server started without real-time scheduling (``jackd --no-realtime``), or a driver that does not raise its
own thread, leaves PortAudio's callback thread at the default policy beside every other thread of the machine: a
busy GUI thread or a model step then delays it past the block and the device reports an underflow (a click).
Where the process may (root, or the ``rtprio`` limit of the audio group), the callback's thread gets
``SCHED_FIFO`` at a modest priority, as audio servers grant it; the callback is short and bounded, so nothing else
starves. The same holds for the process threads of our JACK MIDI clients (RtMidi's, C only): in a server's cycle
every client is waited for, and one that is late is an xrun for all (``jackd`` names it in its log). Linux only;
elsewhere nothing changes and the reason says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

AUDIO_RT_PRIORITY = 20  # SCHED_FIFO priority (rtkit's default ceiling; JACK's own threads run higher)
MAX_CLIENT_THREADS = 4  # threads a JACK client starts (libjack: about 2-3); more means others started some too
NO_PERMISSION = "no permission: raise the rtprio limit (e.g. join the audio group) or run a real-time JACK server"
_POLICIES = {getattr(os, n): n.removeprefix("SCHED_").lower() for n in ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR",
             "SCHED_BATCH", "SCHED_IDLE") if hasattr(os, n)}  # fmt: skip


@dataclass(frozen=True)
class ThreadScheduling:
    """How a thread is scheduled: ``policy`` ("fifo", "rr", "other", ..., "unknown"), its real-time ``priority``
    (0 outside fifo / rr) and, when it is not real-time, ``reason``."""

    policy: str
    priority: int = 0
    reason: str = ""

    @property
    def realtime(self) -> bool:
        return self.policy in ("fifo", "rr")

    def describe(self) -> str:
        if self.realtime:
            return f"real-time ({self.policy.upper()} {self.priority})"
        return f"not real-time ({self.reason})" if self.reason else "not real-time"


def thread_scheduling(tid: int) -> ThreadScheduling:
    """The scheduling of thread ``tid`` (a native thread id)."""
    if not hasattr(os, "sched_getscheduler"):
        return ThreadScheduling("unknown", reason="not supported on this OS")
    try:
        policy = os.sched_getscheduler(tid)
        priority = os.sched_getparam(tid).sched_priority
    except (AttributeError, OSError) as exc:
        return ThreadScheduling("unknown", reason=f"cannot read it: {exc}")
    return ThreadScheduling(_POLICIES.get(policy, str(policy)), priority)


def make_realtime(tid: int, priority: int = AUDIO_RT_PRIORITY) -> ThreadScheduling:
    """Give thread ``tid`` ``SCHED_FIFO`` at ``priority`` unless it is real-time already (a real-time JACK server
    raises its clients' threads itself); returns what it has now, with the reason when it stays as it was."""
    now = thread_scheduling(tid)
    if now.realtime or now.policy == "unknown":
        return now
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        limit = _rtprio_limit()
        if not 0 < limit < priority:
            return ThreadScheduling(now.policy, reason=NO_PERMISSION)
        try:  # the user's rtprio limit is below our priority: take what it allows
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(limit))
        except OSError:
            return ThreadScheduling(now.policy, reason=NO_PERMISSION)
    except (AttributeError, OSError) as exc:
        return ThreadScheduling(now.policy, reason=str(exc))
    return thread_scheduling(tid)


def _rtprio_limit() -> int:
    try:
        import resource

        return int(resource.getrlimit(resource.RLIMIT_RTPRIO)[0])
    except (ImportError, AttributeError, OSError, ValueError):
        return 0


def native_thread_ids() -> set[int]:
    """The native ids of this process's threads (Linux: ``/proc/self/task``; elsewhere empty)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


@contextlib.contextmanager
def threads_started() -> Iterator[list[int]]:
    """The native ids of the threads a C library starts inside the block (Python's own threads left out): the
    list is filled when the block ends (best effort: empty when more than a client's few appeared). Used for the
    JACK client threads RtMidi's libjack starts, which nothing else names."""
    before = native_thread_ids()
    started: list[int] = []
    yield started
    python = {t.native_id for t in threading.enumerate()}
    new = sorted(native_thread_ids() - before - python)
    if len(new) <= MAX_CLIENT_THREADS:
        started.extend(new)
    else:  # others started threads meanwhile (a torch pool, Qt): which are the client's cannot be told, raise none
        log.warning("%d threads started while a client opened: none made real-time", len(new))


def lower_thread_priority(nice: int) -> None:
    """Make the calling thread ``nice`` (Linux: per thread); where the OS has no such thing, nothing happens."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
