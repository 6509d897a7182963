"""Adversarial review (s8-adv2): transport.resolve's one-lookup-in-flight table under a thread that never ran."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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
