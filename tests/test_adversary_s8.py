"""Adversarial review (s8-adv2): windows left in transport.resolve and signals.install, each driven into on purpose."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def test_a_lookup_thread_that_could_not_start_does_not_jam_the_name_for_every_later_lookup():
    """``_thread.start_new_thread`` raising (RuntimeError "can't start new thread": a cgroup's pids.max, a ulimit,
    a guard with many threads) left the host's entry in the in-flight table with an event nobody would set: every
    later lookup of that name, for the life of the process (a resident guard), waited its whole deadline and said
    'did not answer', though the resolver was fine. The failed lookup itself must be an OSError (nothing sent, 75),
    not a RuntimeError (an internal error, 70)."""
    script = textwrap.dedent(
        """
        import time
        from cancelctl import transport
        real = transport._thread.start_new_thread
        def refuse(*a, **k):
            raise RuntimeError("can't start new thread")
        transport._thread.start_new_thread = refuse
        try:
            transport.resolve("localhost", 80, time.monotonic() + 1.0)
        except OSError as e:
            print("first: OSError")
        except BaseException as e:
            print("first:", type(e).__name__)
        transport._thread.start_new_thread = real
        t0 = time.monotonic()
        try:
            found = transport.resolve("localhost", 80, time.monotonic() + 1.0)
            print("second: ok", bool(found), round(time.monotonic() - t0, 2))
        except BaseException as e:
            print("second:", type(e).__name__, round(time.monotonic() - t0, 2))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "first: OSError", proc.stdout
    assert lines[1].startswith("second: ok True"), proc.stdout


# A Ctrl-C whose handler runs at install()'s last call (``_CLOSING.add``, a C call after which the main thread checks
# for signals), after its loop's ``finally`` has said the handlers are in and before main.run's try is entered.
AFTER_INSTALL_LOOP = textwrap.dedent(
    """
    import signal, sys
    from cancelctl import handoff, signals

    class Tripping(set):
        def add(self, item):
            super().add(item)
            if getattr(item, "co_name", "") == "restore":
                signal.raise_signal(signal.SIGINT)  # the handler runs here, as install() returns

    signals._CLOSING = Tripping(signals._CLOSING)
    sys.argv = ["cancelctl", *sys.argv[1:]]
    handoff.main()
    """
)


def test_a_signal_as_install_returns_is_reported_not_a_traceback(gemini, env):
    """install() cleared its 'installing' mark in the loop's ``finally`` and then still called ``_CLOSING.add``: a
    signal handled there raised Interrupted out of install(), before main.run's try: a KeyboardInterrupt-like
    traceback, exit 1, no report, no audit line. It is kept and reported: 130, nothing sent."""
    import json

    from conftest import audit_lines

    gemini.add_order()
    proc = subprocess.run(
        [sys.executable, "-c", AFTER_INSTALL_LOOP, "cancel", "all", "--json"],
        env=env.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "cancelctl: error: interrupted; stopped before any cancel was sent", proc.stderr
    assert len(gemini.open_orders()) == 1
    assert json.loads(proc.stdout)["exit_code"] == 130
    (line,) = audit_lines(env)
    assert line["exit_code"] == 130


# A Ctrl-C whose handler runs inside the deadman's own signals.install() (as it fires), once SIGINT's handler is
# cancelctl's: install() keeps it for raise_early(), which only main.run called.
DEADMAN_INSTALL = textwrap.dedent(
    """
    import signal, sys
    from cancelctl import signals

    real = signal.signal
    seen = []

    def signal_then_trip(sig, handler):
        old = real(sig, handler)
        if handler is signals._handler and sig == signal.SIGINT:
            seen.append(sig)
            if len(seen) == 2:  # the deadman's install (the first is main.run's)
                signal.raise_signal(signal.SIGINT)
        return old

    signals.signal.signal = signal_then_trip
    sys.argv = ["cancelctl", *sys.argv[1:]]
    from cancelctl.main import main
    main()
    """
)


def test_a_ctrl_c_while_the_deadman_s_handlers_go_in_stops_the_panic(gemini, env):
    """The deadman's own install() (as it fires) kept a Ctrl-C handled inside its loop for raise_early(), which
    nothing called there: the Ctrl-C was swallowed and the panic ran to its end, exit 0. It stops the panic before
    anything is sent: 130, "stopped before any cancel was sent"."""
    gemini.add_order()
    alive = env.root / "bot.alive"
    proc = subprocess.run(
        [sys.executable, "-c", DEADMAN_INSTALL, "deadman", "--ttl", "1", "--file", str(alive), "--json"],
        env=env.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "deadman fired" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 130, proc.stderr
    assert "stopped before any cancel was sent" in proc.stderr, proc.stderr
    assert len(gemini.open_orders()) == 1


# A Ctrl-C whose handler runs in main.run's finally (at handoff.reset()) after a command that returns its code without
# a report (log, profiles list, keys list, completion): nothing had said the run was reporting, so it was raised there.
AFTER_RUN = textwrap.dedent(
    """
    import signal, sys
    from cancelctl import handoff

    real = handoff.reset

    def reset():
        signal.raise_signal(signal.SIGINT)  # the handler runs here: main.run's finally, the command's code in hand
        real()

    handoff.reset = reset
    sys.argv = ["cancelctl", *sys.argv[1:]]
    handoff.main()
    """
)


@pytest.mark.parametrize("command", [["log"], ["profiles", "list"], ["completion", "bash"]])
def test_a_signal_as_a_command_without_a_report_ends_is_no_traceback(env, command):
    """A Ctrl-C handled in main.run's ``finally`` after such a command raised Interrupted out of main.run: a
    traceback and exit 1 at the cold process's end. It is counted as one after the report: the command's code."""
    proc = subprocess.run(
        [sys.executable, "-c", AFTER_RUN, *command],
        env=env.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 78), (proc.returncode, proc.stderr)
