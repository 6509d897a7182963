"""SIGINT, SIGTERM and SIGHUP: the first one stops the work, none stops the report.

A panic button runs under cron, systemd, ``timeout`` and shaky terminals,
so any of these signals may arrive anywhere: while the config loads, while
a cancel is in flight, twice within milliseconds. The contract (exit codes
130 and 143): the run still reports every order whose fate is known, marks
the rest unknown or not sent, writes its audit line and, with ``--json``,
prints its one JSON document.

:func:`install` makes the first signal raise :class:`Interrupted` in the
main thread (a blocking socket read or ``join`` returns at once) and every
later one only be counted, so the report that follows cannot itself be
interrupted. :class:`Interrupted` is a ``BaseException`` that is not a
``KeyboardInterrupt``: click would otherwise print a blank line and turn it
into a bare ``Abort``. :func:`reporting` marks the start of the report for
a run that was not interrupted: a signal from then on is counted, never
raised. A signal counted while reporting arms a backstop: the process ends
``BACKSTOP_S`` later with 128 + the signal's number whatever the report is
stuck on (a reader that never reads stdout), so ``kill`` always works.

Imports nothing of cancelctl (a leaf): :mod:`cancelctl.main` installs it first.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
BACKSTOP_S = 2.0  # s after a signal that arrived while reporting before the process ends regardless

RECEIVED: list[int] = []  # every handled signal, in order
#: Whether a signal counted while reporting arms the backstop. ``cancelctl guard`` turns it off: its commands are a
#: caller's, whose own process has its backstop (:func:`cancelctl.handoff._answer`); a caller's Ctrl-C landing while
#: the guard renders must not end the resident guard (and its heartbeat and dead-man's switch) two seconds later.
BACKSTOP = True
#: ``pending``: the signal of an :class:`Interrupted` Python dropped (see :func:`_unraisable`), to be raised again;
#: ``sent``: its re-delivery was tripped and has not reached :func:`_handler` yet (it is not counted twice);
#: ``ahead``: a signal counted (and raised) by another signal's handler because it arrived first, whose own handler
#: call is still to come (it is not counted twice). See :func:`_arrived`.
_state: dict[str, object] = {
    "raise": True,
    "backstop": False,
    "pending": None,
    "sent": None,
    "ahead": None,
    "installing": False,  # install() is putting the handlers in: a signal is kept in "early", not raised
    "early": None,
}
_redelivery = threading.RLock()  # the re-delivery thread's check-and-send against restore() and ignore()


def exit_code(signum: int) -> int:
    """130 for SIGINT (Ctrl-C), 143 for SIGTERM and SIGHUP (the contract's "Exit codes")."""
    return 130 if signum == signal.SIGINT else 143


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(BaseException):
    """Raised in the main thread by the first SIGINT, SIGTERM or SIGHUP; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(name(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    @property
    def kind(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else "terminated"


def _handler(signum: int, frame: object) -> None:
    arrived = _arrived()
    redelivered = _state["sent"] == signum  # the re-delivery of a signal counted when it first came
    if redelivered:
        _state["sent"] = None
    elif _state["ahead"] == signum:  # counted already, by the handler of a signal that arrived after it
        _state["ahead"] = None
    else:
        RECEIVED.append(signum)
    if _state["installing"]:
        # The handlers are still going in (install()'s loop, which runs no try of the run's): raised here, the
        # Interrupted would escape before the run could report it (a traceback, exit 1). Kept, first one first,
        # and raised by :func:`raise_early` once the run's try is entered.
        if _state["early"] is None:
            _state["early"] = next((s for s in arrived if s in HANDLED), signum)
        return
    pending, _state["pending"] = _state["pending"], None
    if _state["raise"] and _closing(frame):
        # The run is over (its handlers are being restored, or the process is exiting): raised here, the
        # Interrupted would escape the run that already has its code and its report (a second report; in a
        # guard, its caller's command "failed", exit 70). Counted, as a signal after the report.
        _state["raise"] = False
    if _state["raise"]:
        _state["raise"] = False  # the second and later signals never interrupt the report
        # The first signal decides the code: one whose re-delivery is still on its way (a SIGINT dropped in a
        # finalizer) is the one raised, whichever signal reached the handler first; else the first to arrive,
        # which is not always the one whose handler Python runs first (see :func:`_arrived`).
        if isinstance(pending, int):
            raise Interrupted(pending)
        first = next((s for s in arrived if s in HANDLED), signum)
        if first != signum and not redelivered:
            RECEIVED.insert(len(RECEIVED) - 1, first)  # counted in the order they arrived
            _state["ahead"] = first
        raise Interrupted(first)
    if redelivered:  # already counted; it arms nothing
        return
    if not _state["backstop"] and BACKSTOP:
        _state["backstop"] = True
        first = RECEIVED[0] if RECEIVED else signum  # the first signal decides the code, not the one arming this
        timer = threading.Timer(BACKSTOP_S, os._exit, args=(exit_code(first),))
        timer.daemon = True
        timer.start()


def _unraisable(hook: object) -> None:
    """``sys.unraisablehook`` while installed: an :class:`Interrupted` raised where Python cannot raise it (the handler
    ran inside a weakref callback or a ``__del__``, e.g. the import system's module-lock callback) would be printed
    with a traceback and dropped, and the run would go on as if no signal had come. It is sent again instead, from
    a thread of its own (sent from here, it would be handled inside this hook and dropped again), to be raised at the
    main thread's next safe point, a few ms later at most; anything else goes to the previous hook.

    The re-delivery is ``_thread.interrupt_main``, not a signal: it only ever reaches :func:`_handler`. It is
    sent only while the run still wants it (:func:`restore`'s and :func:`ignore`'s ``pending`` cleared: a run that
    ended meanwhile, or began its report, keeps its code), it is not counted a second time, and a signal that
    comes while it is on its way raises the first signal, not its own (the contract: the first signal decides).
    """
    import _thread

    exc = getattr(hook, "exc_value", None)
    if isinstance(exc, Interrupted):
        _state["raise"] = True
        _state["pending"] = exc.signum
        try:
            _thread.start_new_thread(_redeliver, (exc.signum,))
        except RuntimeError:  # no thread to be had (interpreter shutdown): the next signal raises it
            pass
        return
    previous: Callable[[object], object] = _previous_hook.get("unraisable", sys.__unraisablehook__)
    previous(hook)


def _redeliver(signum: int) -> None:
    """The re-delivery thread: trip ``signum``'s handler in the main thread, if the run still waits for it."""
    import _thread

    with _redelivery:
        if _state["pending"] == signum and _state["raise"] and active():
            _state["sent"] = signum
            _thread.interrupt_main(signal.Signals(signum))


def _settle() -> None:
    """No re-delivery from now on; one already tripped is handled here, by :func:`_handler` (counted, never raised),
    not by whatever handler comes next (a guard's own, which would stop the guard; Python's, a KeyboardInterrupt)."""
    with _redelivery:
        _state["pending"] = None
        _state["raise"] = False
    if _state["sent"] is not None or _state["ahead"] is not None:
        _safe_point()


def _safe_point() -> None:
    """Nothing: calling a Python function is where the main thread runs the handlers of signals tripped before."""


_previous_hook: dict[str, Callable[..., object]] = {}

#: The code of the functions that end a run (:func:`install`'s ``restore``, :func:`_settle`, :func:`_safe_point`,
#: :func:`ignore`): a signal handled in one of them is counted, never raised (see :func:`_handler`).
_CLOSING: set[object] = set()

#: The read end and the write end of the pipe CPython's C-level handler writes each signal's number to as it
#: arrives (``signal.set_wakeup_fd``), made once per process by :func:`install`; -1: none (yet, or none to be had).
_wakeup = [-1, -1]


def _closing(frame: object, depth: int = 8) -> bool:
    """Whether ``frame`` (where the main thread was when the handler was called) is in one of the functions that end
    a run, or in what they call (``signal.signal``'s enum conversion, ``threading.current_thread``): a few frames
    up at most, so a handler called deep inside a command is never taken for one at its end."""
    while frame is not None and depth > 0:
        if getattr(frame, "f_code", None) in _CLOSING:
            return True
        frame, depth = getattr(frame, "f_back", None), depth - 1
    return False


def _arrived() -> bytes:
    """The numbers of the signals that reached the process since the last call, in the order they arrived.

    CPython runs the Python handlers of the signals that arrived while the main thread was busy (in C code, or
    not yet given the CPU back) in the order of their numbers, not of their arrival: a SIGTERM and then a
    SIGINT ran the SIGINT's handler first, and the run said 130 where the contract says the first signal
    decides (143). The C-level handler, which runs at each arrival, writes the number to the wakeup fd in
    arrival order (its documented use: https://docs.python.org/3/library/signal.html#signal.set_wakeup_fd).
    Empty when nothing is there, the pipe was never made, or another owner took the wakeup fd. Never raises.
    """
    if _wakeup[0] < 0:
        return b""
    got = b""
    while True:
        try:
            chunk = os.read(_wakeup[0], 512)
        except OSError:  # BlockingIOError: nothing (more) there
            return got
        got += chunk
        if len(chunk) < 512:
            return got


def _own_wakeup_fd() -> int | None:
    """Point the wakeup fd at this module's pipe (made the first time: non-blocking, close-on-exec, so no child
    process inherits it); the previous wakeup fd, or None when it could not be set. A full pipe is no error
    (``warn_on_full_buffer=False``): a byte lost there only loses the arrival order of a burst of signals."""
    made = _wakeup[0] < 0
    try:
        if made:
            _wakeup[:] = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC) if hasattr(os, "pipe2") else _nonblocking_pipe()
        previous = signal.set_wakeup_fd(_wakeup[1], warn_on_full_buffer=False)
    except (OSError, ValueError):
        return None
    if not made:
        _arrived()  # bytes of signals from before this run (a guard's earlier command): not this run's to order
    return previous


def _nonblocking_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    for fd in (r, w):
        os.set_blocking(fd, False)
        os.set_inheritable(fd, False)
    return r, w


def install() -> Callable[[], None]:
    """Handle SIGINT, SIGTERM and SIGHUP as above; returns a function that restores the previous handlers.

    Does nothing (and restores nothing) outside the main thread, where
    Python cannot set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _state.update({"raise": True, "backstop": False, "pending": None, "ahead": None, "installing": True, "early": None})
    unraisable = sys.unraisablehook
    mine = unraisable is not _unraisable  # a nested install leaves the hook to the outer one's restore
    if mine:
        _previous_hook["unraisable"] = unraisable
        sys.unraisablehook = _unraisable
    wakeup = _own_wakeup_fd() if mine else None
    if not mine:  # a run inside a run (a guard's command, a deadman that fired): the outer run's pipe, emptied
        _arrived()
    previous: dict[int, signal._HANDLER] = {}

    def restore() -> None:
        if mine:
            _settle()  # the (outermost) run is over: a re-delivery still on its way changes nothing
        if mine and sys.unraisablehook is _unraisable:
            sys.unraisablehook = _previous_hook.get("unraisable", sys.__unraisablehook__)
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            except (ValueError, OSError, TypeError):
                pass
        if wakeup is not None:  # the previous owner's wakeup fd back (an in-process caller's event loop), else none
            try:
                current = signal.set_wakeup_fd(wakeup)
                if current != _wakeup[1]:  # another owner took it during the run: theirs stays
                    signal.set_wakeup_fd(current)
            except (ValueError, OSError):
                pass

    # Registered before the handlers go in: once "installing" is off, nothing is left to call before main.run's
    # try (a signal handled at this C call, after the loop's finally, raised out of install(): a traceback).
    _CLOSING.add(restore.__code__)
    try:
        for sig in HANDLED:
            try:
                previous[sig] = signal.signal(sig, _handler)
            except (ValueError, OSError):  # not settable here
                pass
    finally:
        _state["installing"] = False
    return restore


def active() -> bool:
    """Whether :func:`install`'s handlers are this process's now (a run is between its start and its restore)."""
    return signal.getsignal(HANDLED[0]) is _handler if HANDLED else False


def raise_early() -> None:
    """Raise :class:`Interrupted` for a signal that came while :func:`install` put the handlers in (kept there, not
    raised: the caller's ``try`` had not begun); nothing when none did. Call it first thing in that ``try``."""
    early, _state["early"] = _state.get("early"), None
    if isinstance(early, int) and _state["raise"]:
        _state["raise"] = False
        raise Interrupted(early)


def replay(signum: int) -> None:
    """Deliver ``signum`` to this process now, through the handlers in place (main thread: :func:`install`'s raises
    :class:`Interrupted` here): a signal that came before them, kept by whoever had the handlers then (the hand-off
    to a guard, the dead-man's watch), counts as if it came now."""
    signal.raise_signal(signum)


def reporting() -> None:
    """From now on the run is reporting: a signal is counted (and arms the backstop), never raised."""
    _state["raise"] = False


def ended() -> None:
    """The run has its code (:func:`cancelctl.main.run`'s ``finally``, main thread): a signal from now on is counted,
    never raised, as after a report. A command that returns its code without one (``log``, ``profiles list``) never
    said :func:`reporting`: a signal handled in that ``finally`` raised out of the run (a traceback at exit)."""
    if threading.current_thread() is threading.main_thread():
        _settle()


def ignore() -> None:
    """Ignore the handled signals from now on (the process has reported and is exiting; main thread only)."""
    if threading.current_thread() is threading.main_thread():
        _settle()
        for sig in HANDLED:
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (ValueError, OSError):
                pass


def first() -> int | None:
    """The first signal handled in this process, or None."""
    return RECEIVED[0] if RECEIVED else None


_CLOSING.update(f.__code__ for f in (_settle, _safe_point, ignore, ended))
