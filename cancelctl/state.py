"""What this run could not write to the state directory, said once on stderr with its fix.

The state directory (``$CANCELCTL_STATE_DIR``) holds the Gemini nonce
counters and the audit log. When it cannot be written (read-only file
system, full disk, a path under a regular file, owned by root after an
earlier ``sudo cancelctl``), the cancels still go out (nonces come from the
clock, held in memory: see :mod:`cancelctl.nonce`) and the run ends with one
stderr line naming what was not written and how to fix it. Imports nothing
of cancelctl.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()
_problems: dict[str, str] = {}  # what could not be written -> why (strerror)


def problem(what: str, path: Path | str, error: BaseException) -> None:
    """Record that ``what`` (e.g. "Gemini nonce counters") could not be written at ``path``."""
    why = getattr(error, "strerror", None) or type(error).__name__
    with _lock:
        _problems.setdefault(what, f"{path} ({why})")


def problems() -> dict[str, str]:
    with _lock:
        return dict(_problems)


def fix_hint(path: Path | str) -> str:
    """How to make ``path`` writable: chown when another user owns it (an earlier sudo), else the general fix."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.exists() and not p.is_dir():
        return f"{p} is a file, not a directory: move it away or set CANCELCTL_STATE_DIR to a writable directory"
    try:
        owner = p.stat().st_uid
    except OSError:
        owner = None
    if hasattr(os, "getuid") and owner is not None and owner != os.getuid():
        return (
            f"it belongs to another user (an earlier sudo cancelctl?): sudo chown -R {os.getuid()} {p}, "
            "or set CANCELCTL_STATE_DIR to a writable directory"
        )
    return f"make {p} writable (disk full? read-only?) or set CANCELCTL_STATE_DIR to a writable directory"


def warning_line(state_dir: Path | str, audit_error: BaseException | None) -> str | None:
    """The one stderr line for this run's state problems (None when there were none); they are said: forgotten.

    ``audit_error``: why the audit line could not be written, when it could not.
    The problems are taken, not just read: a process that runs many commands
    (``cancelctl guard``) says for each only what that one could not write,
    never an earlier command's missing audit line for a line that was written.
    """
    if audit_error is not None:
        problem("this run's audit line", Path(state_dir) / "audit.jsonl", audit_error)
    with _lock:
        found = dict(_problems)
        _problems.clear()
    if not found:
        return None
    what = "; ".join(f"{k}: {v}" for k, v in found.items())
    consequences = []
    if "Gemini nonce counters" in found:
        consequences.append("Gemini nonces came from the clock, held in memory for this run")
    if "this run's audit line" in found:
        consequences.append("this run's audit line is missing")
    tail = f" ({'; '.join(consequences)})" if consequences else ""
    return f"cancelctl: warning: could not write {what}{tail}. Fix: {fix_hint(state_dir)}"
