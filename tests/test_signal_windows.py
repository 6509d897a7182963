"""The narrow windows of signal handling (cancelctl/signals.py), each driven into on purpose, not waited for.

A signal's Python handler runs where the main thread is when it next checks for signals, which a test cannot
choose by sleeping. These tests put the main thread inside C code (a ``SimpleQueue.get``, a ``read`` restarted
after a signal) while the other side acts, so the moment the handler runs is fixed: the window is entered
every time, in milliseconds.
"""

from __future__ import annotations

import itertools
import operator
import queue
import signal
import threading
import time

import pytest


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
