"""Thread scheduling: a thread made real-time where the process may, and a clear reason where it may not."""

from __future__ import annotations

import os
import threading

import pytest

from synth_core.engine.thread_priority import ThreadScheduling, make_realtime, thread_scheduling

linux = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux thread scheduling")


def in_thread(fn):
    """``fn(tid)`` run in a fresh thread (its scheduling dies with it); returns what fn returned."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(threading.get_native_id())))
    t.start()
    t.join()
    return out[0]


@linux
def test_a_default_thread_is_not_realtime_and_make_realtime_raises_it_or_says_why():
    before, after, seen = in_thread(lambda tid: (thread_scheduling(tid), make_realtime(tid, 5), thread_scheduling(tid)))
    assert before.policy == "other" and not before.realtime
    if after.realtime:  # root, or an rtprio limit
        assert (after.policy, after.priority) == ("fifo", 5) and seen == after
        assert after.describe() == "real-time (FIFO 5)"
    else:
        assert "permission" in after.reason and not seen.realtime
        assert after.describe().startswith("not real-time (no permission")


@linux
def test_a_thread_that_is_realtime_already_is_left_as_it_is():
    def raise_twice(tid: int) -> tuple[ThreadScheduling, ThreadScheduling]:
        first = make_realtime(tid, 3)
        return first, make_realtime(tid, 7)  # (a real-time JACK server's client thread: keep its priority)

    first, second = in_thread(raise_twice)
    if not first.realtime:
        pytest.skip("this process may not make threads real-time")
    assert second == first


def test_an_unknown_thread_is_reported_not_raised():
    sched = thread_scheduling(2**22 + 12345)  # beyond pid_max's default: no such thread
    assert sched.policy == "unknown" and "cannot read" in sched.reason
    assert make_realtime(2**22 + 12345).policy == "unknown"


@linux
def test_below_the_callers_rtprio_limit_it_takes_the_limit(monkeypatch):
    """A user whose rtprio limit (limits.conf, the audio group) is below our priority gets FIFO at that limit."""
    import synth_core.engine.thread_priority as tp

    calls = []
    real = os.sched_setscheduler

    def limited(tid, policy, param):
        calls.append(param.sched_priority)
        if param.sched_priority > 4:
            raise PermissionError("rtprio limit 4")
        real(tid, policy, param)

    monkeypatch.setattr(tp.os, "sched_setscheduler", limited)
    monkeypatch.setattr(tp, "_rtprio_limit", lambda: 4)
    got = in_thread(lambda tid: make_realtime(tid, 20))
    if not got.realtime:
        pytest.skip("this process may not make threads real-time")
    assert calls == [20, 4] and (got.policy, got.priority) == ("fifo", 4)
    monkeypatch.setattr(tp, "_rtprio_limit", lambda: 0)  # no limit at all: the reason says what to change
    assert "rtprio" in in_thread(lambda tid: make_realtime(tid, 20)).reason
