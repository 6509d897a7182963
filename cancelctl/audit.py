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

import errno
import os
import stat
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

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
            # O_NONBLOCK: a FIFO nobody reads would block the open for ever (after the cancels: a run that never
            # ends, a guard that hangs for good). Only a regular file (or a link to one) takes the line.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(errno.EINVAL, "not a regular file", str(path))
                data = text.encode("utf-8")
                size = os.fstat(fd).st_size
                written = os.write(fd, data)
                if written != len(data):  # a short write (a file-size limit): no half line left for the next to join
                    os.ftruncate(fd, size)
                    raise OSError(errno.EFBIG, f"short write ({written} of {len(data)} bytes)", str(path))
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


# -- reading it back: ``cancelctl log`` ----------------------------------------------------------

TAIL_BLOCK = 64 << 10  # bytes read from the end at a time
TAIL_LIMIT = 8 << 20  # the most bytes ``tail`` reads, whatever the file's size (a 1 GB log is never read whole)
LINE_LIMIT = 1 << 20  # bytes: a longer line is counted as unreadable, never parsed


class Tail:
    """What :func:`tail` read: ``runs`` (one summary per readable line, oldest first), ``skipped`` (lines that
    were not a JSON object: torn, garbage, longer than :data:`LINE_LIMIT`), ``cut`` (True when only the last
    :data:`TAIL_LIMIT` bytes were read and fewer lines than asked were complete in them)."""

    def __init__(self, runs: list[dict[str, Any]], skipped: int, cut: bool) -> None:
        self.runs, self.skipped, self.cut = runs, skipped, cut


def log_path() -> Path:
    """``$CANCELCTL_STATE_DIR/audit.jsonl`` (the file :func:`record` appends to)."""
    from cancelctl.config import state_dir

    return state_dir() / "audit.jsonl"


def tail(path: Path, n: int) -> Tail:
    """The last ``n`` lines of the audit log at ``path``, summarised (:func:`summary`), oldest first.

    Bounded: reads backwards from the end, :data:`TAIL_BLOCK` bytes at a
    time, at most :data:`TAIL_LIMIT` bytes in all; opened with
    ``O_NONBLOCK`` and checked with ``fstat`` first, so a FIFO, a device
    or a directory is an error, never a hang. Raises FileNotFoundError
    when there is no log (no run recorded yet), ConfigError (exit 78) when
    it is not a regular file or cannot be read. A line that is not a JSON
    object (a torn write, garbage, one longer than :data:`LINE_LIMIT`)
    counts in ``skipped``.
    """
    import json

    from cancelctl.files import opened_regular

    hint = f"the audit log is {path}; move it aside to start a new one"
    with opened_regular(path, f"the audit log {path}", limit=None, hint=hint) as fd:
        end = os.fstat(fd).st_size
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        # n complete lines need n + 1 newlines before the last one (or the start of the file)
        while pos > 0 and newlines <= n and end - pos < TAIL_LIMIT:
            size = min(TAIL_BLOCK, pos, TAIL_LIMIT - (end - pos))
            pos -= size
            chunk = os.pread(fd, size, pos)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    lines = data.split(b"\n")
    cut = False
    if pos > 0:  # the first piece is the end of a line that began before what was read
        lines = lines[1:]
        cut = end - pos >= TAIL_LIMIT
    lines = [line for line in lines if line.strip()]
    cut = cut and len(lines) < n
    runs: list[dict[str, Any]] = []
    skipped = 0
    for line in lines[-n:] if n > 0 else []:
        record = None
        if len(line) <= LINE_LIMIT:
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
        if isinstance(record, dict):
            runs.append(summary(record))
        else:
            skipped += 1
    return Tail(runs, skipped, cut)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(record: dict[str, Any], ids: str, count: str | None = None) -> int:
    """A count from a result line: its ``count`` field when an int, else the length of its ``ids`` list."""
    if count is not None and _int(record.get(count)) is not None:
        return int(record[count])
    value = record.get(ids)
    return len(value) if isinstance(value, list) else 0


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """One audit line as ``cancelctl log`` shows it; any field of the wrong type is null (never an exception).

    Shape (docs/json.md, "cancelctl log --json"): ``time``, ``user``, ``host``
    (strings or null), ``pid`` (int or null), ``command`` (list of strings,
    as recorded: secrets were redacted when the line was written),
    ``reason``, ``dry_run`` (bool), ``exit_code`` (int or null),
    ``elapsed_ms`` (number or null), ``profiles``: per profile ``profile``,
    ``venue``, ``action``, ``status`` (strings or null), ``exit_code``,
    counts ``cancelled``, ``rejected``, ``unknown`` (ints) and ``remaining``
    (int, or null when not verified); ``error``: ``{"kind", "message"}`` or null.
    """
    results = record.get("results")
    profiles = []
    for r in results if isinstance(results, list) else []:
        if not isinstance(r, dict):
            continue
        remaining = r.get("remaining")
        profiles.append(
            {
                "profile": _str(r.get("profile")),
                "venue": _str(r.get("venue")),
                "action": _str(r.get("action")),
                "status": _str(r.get("status")),
                "exit_code": _int(r.get("exit_code")),
                "cancelled": _count(r, "cancelled", "cancelled_count"),
                "rejected": _count(r, "rejected", "rejected_count"),
                "unknown": _count(r, "unknown"),
                "remaining": len(remaining) if isinstance(remaining, list) else None,
            }
        )
    command = record.get("command")
    error = record.get("error")
    elapsed = record.get("elapsed_ms")
    return {
        "time": _str(record.get("time")),
        "user": _str(record.get("user")),
        "host": _str(record.get("host")),
        "pid": _int(record.get("pid")),
        "command": [w for w in command if isinstance(w, str)] if isinstance(command, list) else [],
        "reason": _str(record.get("reason")),
        "dry_run": record.get("dry_run") is True,
        "exit_code": _int(record.get("exit_code")),
        "elapsed_ms": elapsed if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) else None,
        "profiles": profiles,
        "error": {"kind": _str(error.get("kind")), "message": _str(error.get("message"))}
        if isinstance(error, dict)
        else None,
    }
