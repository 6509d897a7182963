"""The narrow windows of signal handling (cancelctl/signals.py), each driven into on purpose, not waited for.

A signal's Python handler runs where the main thread is when it next checks for signals, which a test cannot
choose by sleeping. These tests put the main thread inside C code (a ``SimpleQueue.get``, a ``read`` restarted
after a signal) while the other side acts, so the moment the handler runs is fixed: the window is entered
every time, in milliseconds.
"""

from __future__ import annotations

import itertools
import operator
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import pending


class _Dropped:
    """Raises ``signum`` in its ``__del__``: cancelctl's handler runs where Python drops its exception."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        signal.raise_signal(self.signum)


def _call_from_c_once_re_delivered(last, signum: int) -> None:
    """Drop ``signum``'s Interrupted in a finalizer, then call ``last()`` with the re-delivery thread's trip already
    pending and no safe point in between: ``last`` is called from C (``map`` over ``SimpleQueue.get``), and the
    queue gives it only once the real re-delivery thread (:func:`cancelctl.signals._redeliver`) has tripped the
    handler while the main thread waited in ``get``. The handler then runs at ``last``'s first instruction: the
    window between the re-delivery and ``restore()``'s or ``ignore()``'s own work."""
    from cancelctl import signals

    calls: queue.SimpleQueue = queue.SimpleQueue()
    held = threading.Event()
    go = threading.Event()
    dropped = threading.Event()

    def drop() -> None:
        item = _Dropped(signum)
        del item  # the handler raises inside __del__; Python drops it; signals._unraisable sends it again
        dropped.set()

    def other_side() -> None:
        with signals._redelivery:  # the re-delivery thread waits here until the main thread is in get()
            held.set()
            go.wait(10)
            dropped.wait(10)
            time.sleep(0.02)  # drop() has returned into the C loop below, or is just doing so (no safe point left)
        end = time.monotonic() + 10
        while signals._state["sent"] != signum and time.monotonic() < end:
            time.sleep(0.001)
        calls.put(last)

    helper = threading.Thread(target=other_side, daemon=True)
    helper.start()
    held.wait(10)
    calls.put(drop)
    go.set()
    list(itertools.islice(map(operator.call, iter(calls.get, None)), 2))  # drop(), then last(), both called from C
    helper.join(10)


@pytest.mark.parametrize("ending", ["restore", "ignore"])
def test_a_re_delivery_tripped_as_the_run_ends_is_counted_not_raised(ending):
    """A dropped Ctrl-C whose re-delivery trips just as the run ends (its handlers restored by ``restore()``, or the
    cold process's ``ignore()`` before it exits) raised Interrupted from inside restore/ignore: out of
    ``main.run`` after the run had its code (cold: a traceback at exit, or a second report; in a guard, its
    caller's command "failed", exit 70, and the handlers were left half-restored). It is counted once, never
    raised there."""
    from cancelctl import signals

    previous = signal.getsignal(signal.SIGINT)
    got: list[int] = []
    mine = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        restore = signals.install()
        signals.RECEIVED.clear()
        try:
            _call_from_c_once_re_delivered(restore if ending == "restore" else signals.ignore, signal.SIGINT)
        finally:
            restore()
        time.sleep(0.05)  # a trip left over would reach the restored handler at one of these safe points
        assert signals.RECEIVED == [signal.SIGINT]  # counted once: when it came, not again when re-delivered
        assert got == []  # and it never reached the handler that came back (a guard's own would stop the guard)
        assert signal.getsignal(signal.SIGINT) is not signals._handler
    finally:
        signal.signal(signal.SIGINT, mine if previous is None else previous)
        signals.RECEIVED.clear()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from cancelctl import signals
    restore = signals.install()
    for s in signals.HANDLED:
        signal.siginterrupt(s, False)  # a read restarts after a signal: the main thread stays in C code
    print("ready", flush=True)
    try:
        os.read(0, 1)  # the signals arrive while the main thread is in here
        sum(range(10))  # a safe point
        print("none", flush=True)
    except signals.Interrupted as e:
        print(int(e.signum), ",".join(str(int(s)) for s in signals.RECEIVED), flush=True)
    """
)


def _state(pid: int) -> str:
    """The process's state letter (``R`` running or runnable, ``S`` asleep in a system call...): /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def send_and_wait_delivered(pid: int, signum: int, deadline: float) -> None:
    """Send ``signum`` to ``pid`` (one thread, asleep in a restarting read) and return once the kernel has delivered
    it (no longer pending) and the process is asleep again (its C-level handler ran): it has taken this one before
    the next one is sent. Two signals pending at once are delivered in an order of the kernel's
    (by number), not the order they were sent in, and no process can tell which came first then."""
    os.kill(pid, signum)
    while pending(pid) >> (signum - 1) & 1 and time.monotonic() < deadline:
        time.sleep(0.0005)
    while _state(pid) != "S" and time.monotonic() < deadline:  # its C-level handler ran; the read sleeps again
        time.sleep(0.0005)


@pytest.mark.parametrize(
    "first,second",
    [(signal.SIGTERM, signal.SIGINT), (signal.SIGHUP, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)],
)
def test_the_first_signal_to_arrive_decides_not_the_lowest_numbered(first, second):
    """A SIGTERM, then a Ctrl-C, both arriving while the main thread is in C code: CPython runs their handlers in
    the order of their numbers (SIGINT's first), so the run said 130 where the first signal was a SIGTERM (143).
    The handler reads the order of arrival (the wakeup fd) and raises the first; each is counted once, in that
    order."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while _state(proc.pid) != "S" and time.monotonic() < deadline:  # asleep in its read, not still printing
            time.sleep(0.0005)
        send_and_wait_delivered(proc.pid, first, deadline)
        send_and_wait_delivered(proc.pid, second, deadline)
        out, err = proc.communicate("x", timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.split() == [str(int(first)), f"{int(first)},{int(second)}"], (out, err)


DEADMAN = textwrap.dedent(
    """
    import os, signal, sys
    from cancelctl.cli import watch
    decided = watch.watch_file

    def watch_file(path, ttl, stop, **kw):
        silent = decided(path, ttl, stop, **kw)
        if silent is not None:  # the switch has decided to fire: the signal lands before signals.install()
            os.kill(os.getpid(), signal.SIGTERM)
            while not stop.is_set():  # its handler (the old one, which only sets stop) has run
                pass
        return silent

    watch.watch_file = watch_file
    sys.argv = ["cancelctl", *sys.argv[1:]]
    from cancelctl.main import main
    main()
    """
)


def test_a_signal_as_the_deadman_fires_stops_the_panic_it_was_not_swallowed(gemini, env):
    """A SIGTERM between the dead-man's switch deciding to fire and its signal handlers for the panic (a microsecond
    window, made wide here) was swallowed: the old handler only set the watch's stop event, which nothing read any
    more, and the panic ran to its end, exit 0. It stops the panic before anything is sent, as a signal a moment
    later would: 143, "stopped before any cancel was sent", its audit line and its JSON document."""
    import json

    from conftest import audit_lines

    gemini.add_order()
    alive = env.root / "bot.alive"
    proc = subprocess.run(
        [sys.executable, "-c", DEADMAN, "deadman", "--ttl", "1", "--file", str(alive), "--json"],
        env=env.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "deadman fired" in proc.stderr, proc.stderr  # the window was entered
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "stopped before any cancel was sent" in proc.stderr, proc.stderr
    assert len(gemini.open_orders()) == 1  # the panic sent nothing
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 143 and doc["error"]["kind"] == "terminated"
    (line,) = audit_lines(env)
    assert line["exit_code"] == 143


def _guard_that(env, behave):
    """A "guard" socket served by a thread of this test (tests/test_guard_hostile.py's Fake), doing ``behave``."""
    from test_guard_hostile import Fake

    return Fake(env, behave)


@pytest.mark.parametrize("answer", ["declined", "busy", "gone"])
def test_a_ctrl_c_to_a_caller_the_guard_hands_back_is_reported_not_lost(gemini, env, answer):
    """A Ctrl-C while a guard holds the caller's request, then the guard hands it back (declined after the go, or
    busy before it) and the caller runs cold: the Ctrl-C was lost (declined: the cold run put its handlers over
    it and sent every cancel, exit 0; busy: Python's own handler, a KeyboardInterrupt traceback). The caller ends
    130 with one report that says nothing was sent, and sends nothing ("gone": the guard had the go and went away
    without answering: what it sent is not known, and the line says so)."""
    import json

    from test_guard_hostile import _read

    from cancelctl import handoff

    from conftest import audit_lines

    asked = threading.Event()  # the caller waits for the guard's next frame now
    interrupt = threading.Event()  # the caller forwarded its Ctrl-C (declined) or was sent it (busy)

    def behave(conn) -> None:
        assert _read(conn)[0] == handoff.REQUEST
        if answer == "busy":
            asked.set()
            interrupt.wait(10)
            conn.sendall(handoff.frame(handoff.BUSY, b"busy"))
            return
        conn.sendall(handoff.frame(handoff.READY))
        assert _read(conn)[0] == handoff.GO
        asked.set()
        try:
            kind, payload = _read(conn)  # the caller's Ctrl-C, forwarded
            if kind == handoff.INTERRUPT and payload == bytes([signal.SIGINT]):
                interrupt.set()
        except (OSError, EOFError):
            pass
        if answer == "declined":
            conn.sendall(handoff.frame(handoff.DECLINED, b"a profile the guard does not hold"))

    fake = _guard_that(env, behave)
    try:
        gemini.add_order()
        proc = env.popen("panic", "--json", extra_env={"CANCELCTL_GUARD_BUDGET_MS": "5000"})
        try:
            assert asked.wait(20), "the caller never reached the guard"
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            if answer == "busy":
                interrupt.set()
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        fake.close()
    assert answer == "busy" or interrupt.is_set(), "the Ctrl-C was not forwarded to the guard"
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    if answer == "gone":
        assert "the guard stopped before answering" in err and "what it sent is not known" in err, err
    else:
        assert "interrupted; stopped before any cancel was sent" in err, err
    assert len(gemini.open_orders()) == 1  # the cold run sent nothing
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["error"]["kind"] == "interrupted"
    (line,) = audit_lines(env)
    assert line["exit_code"] == 130


EARLY = textwrap.dedent(
    """
    import os, signal, sys
    from cancelctl import handoff

    def try_guard(argv):  # no guard; the Ctrl-C lands while the cold path is still importing
        os.kill(os.getpid(), signal.SIGINT)
        return None

    handoff.try_guard = try_guard
    sys.argv = ["cancelctl", *sys.argv[1:]]
    handoff.main()
    """
)


def test_a_ctrl_c_before_the_cold_run_s_handlers_is_reported_not_a_traceback(gemini, env):
    """A Ctrl-C in the milliseconds between the entry point and the cold run's handlers (its imports) was Python's
    own: a KeyboardInterrupt traceback, no report, no audit line. It is kept from the entry point on and reported
    by the run: 130, "stopped before any cancel was sent", its JSON document and audit line; nothing is sent."""

    gemini.add_order()
    proc = subprocess.run(
        [sys.executable, "-c", EARLY, "cancel", "all", "--json"],
        env=env.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    stopped_before_sending(proc, gemini, env)


# A second Ctrl-C lands while signals.install() puts the handlers in: the first is kept by the entry point's
# handler, the second reaches cancelctl's own handler before install() has returned into main.run's try.
DURING_INSTALL = textwrap.dedent(
    """
    import signal, sys
    from cancelctl import handoff, signals

    real = signal.signal

    def signal_then_trip(sig, handler):
        old = real(sig, handler)
        if handler is signals._handler and sig == signal.SIGINT:
            signal.raise_signal(signal.SIGINT)  # runs the handler now, inside install()'s loop
        return old

    def try_guard(argv):  # no guard; the first Ctrl-C, kept by the entry point's handler
        signal.raise_signal(signal.SIGINT)
        return None

    signals.signal.signal = signal_then_trip
    if FIRST:
        handoff.try_guard = try_guard
    sys.argv = ["cancelctl", *sys.argv[1:]]
    handoff.main()
    """
)


@pytest.mark.parametrize("first", [True, False], ids=["kept-first", "only-during-install"])
def test_a_signal_while_the_handlers_go_in_is_reported_not_a_traceback(gemini, env, first):
    """A signal whose handler ran inside ``signals.install()`` (its loop setting SIGINT's, SIGTERM's, SIGHUP's) raised
    Interrupted before main.run's ``try``: a traceback and exit 1 (seen in test_robustness under load). It is kept
    and raised once the ``try`` is entered: 130, one line, the JSON document, the audit line; nothing sent."""

    gemini.add_order()
    source = f"FIRST = {first}\n" + DURING_INSTALL
    proc = subprocess.run(
        [sys.executable, "-c", source, "cancel", "all", "--json"],
        env=env.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    stopped_before_sending(proc, gemini, env)


def stopped_before_sending(proc: subprocess.CompletedProcess, gemini, env) -> None:
    """A run a Ctrl-C stopped before its first cancel: 130, one line saying so, no traceback, the order still open,
    the JSON document and one audit line with 130."""
    import json

    from conftest import audit_lines

    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == "cancelctl: error: interrupted; stopped before any cancel was sent", proc.stderr
    assert len(gemini.open_orders()) == 1
    assert json.loads(proc.stdout)["exit_code"] == 130
    (line,) = audit_lines(env)
    assert line["exit_code"] == 130
