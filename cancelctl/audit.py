"""The audit log: one JSON line per run, appended to ``$CANCELCTL_STATE_DIR/audit.jsonl``.

Mode 0600; appended under a file lock (``cancelctl.locks``) so concurrent runs never
interleave; written after the cancels were sent (never before the first
one), also when the run fails or is interrupted. Fields: ``time`` (UTC ISO
8601), ``user``, ``host``, ``command`` (argv, secrets scrubbed), ``reason``,
``dry_run``, ``exit_code``, ``elapsed_ms``, ``results`` (per profile: action,
status, exit_code, counts and IDs cancelled/rejected/unknown/remaining,
error). Secrets never reach it: argv holds none, and every line is scrubbed
of the secrets resolved in this process before it is written.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cancelctl.results import Report

AUDIT_LOCK_S = 0.2  # the longest wait for the audit log's lock (s)


def record(report: Report, *, reason: str | None, elapsed_ms: float, argv: list[str] | None = None) -> None:
    """Append the run's line. Failure to write is one stderr line, never a lost exit code.

    Called by ``cancelctl.main`` only, once per run (see ``cancelctl.main.finish``).
    """
    from cancelctl.config import state_dir
    from cancelctl.redact import dumps
    from cancelctl.render import err

    doc = report.as_json()
    results = []
    for r in doc["results"]:
        r = {k: v for k, v in r.items() if k not in ("requests",)}
        r["rejected_count"] = len(r.get("rejected") or [])
        results.append(r)
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": _user(),
        "host": _host(),
        "pid": os.getpid(),
        "command": ["cancelctl", *(sys.argv[1:] if argv is None else argv)],
        "reason": reason,
        "dry_run": doc["dry_run"],
        "exit_code": doc["exit_code"],
        "elapsed_ms": elapsed_ms,
        "results": results,
        **({"error": doc["error"]} if "error" in doc else {}),
    }
    text = dumps(line, separators=(",", ":")) + "\n"  # secrets redacted value by value: the line stays JSON
    directory = state_dir()
    failure: BaseException | None = None
    try:
        from cancelctl.config import private_dir
        from cancelctl.locks import exclusive

        private_dir(directory)
        path = directory / "audit.jsonl"
        # Every run holds the lock for one write() only, so a wait beyond
        # AUDIT_LOCK_S means a stuck process; the line is appended anyway (one
        # O_APPEND write lands whole at the end on a local file system) rather
        # than holding this run past its --timeout or losing its record.
        release = exclusive(str(path) + ".lock", AUDIT_LOCK_S)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, text.encode("utf-8"))
            finally:
                os.close(fd)
        finally:
            if release is not None:
                release()
    except Exception as e:  # noqa: BLE001 - the audit log must never change the run's outcome
        failure = e
    # One line for everything this run could not write to the state dir (audit line, nonce counters).
    from cancelctl import state

    warning = state.warning_line(directory, failure)
    if warning:
        err(warning)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def _host() -> str:
    import socket

    return socket.gethostname()
