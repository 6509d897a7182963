"""Notifications after a run (contract, "Notifications"): one short message to each configured apprise URL.

Sent after ``panic``, after a ``deadman`` that fired and after a
``heartbeat`` that failed, once the report is printed and the audit line
written; never before, so it can never delay a cancel. The URLs come from
``CANCELCTL_NOTIFY_URLS`` (comma-separated; set, even empty, it replaces
the config's list) or the config file::

    [notify]
    urls = ["json://127.0.0.1:8000/hook", "tgram://BOT_TOKEN/CHAT_ID"]
    timeout = 5        # seconds for all of them together (default 5, at most 60)

apprise (https://github.com/caronc/apprise, the optional extra
``cancelctl[notify]``) is imported only when URLs are configured, and
only in a child process (``python -P -m cancelctl.notify``: never a module
from the working directory) that gets the
URLs and the message on its stdin (never in argv: an apprise URL holds
its service's token) and is killed when the bound passes, so a target
that never answers cannot hold cancelctl past ``timeout`` seconds. A
failure (apprise missing, a URL apprise does not understand, a target
that refused or did not answer in time, a signal while waiting) is one
stderr line naming the URLs' schemes only, and never changes the exit code.

The message holds the command, host, user, exit code and its meaning,
per profile its venue and counts, the run's ``--reason``; nothing else
(no order IDs, no venue text), and is scrubbed of every secret resolved
in the process (:func:`cancelctl.redact.scrub`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cancelctl.results import Report

ENV = "CANCELCTL_NOTIFY_URLS"
DEFAULT_TIMEOUT_S = 5.0  # s for every URL together, apprise's start-up included
MAX_TIMEOUT_S = 60.0
INSTALL_HINT = "pip install 'cancelctl[notify]'"

#: What each exit code means, in a notification's few words (docs/exit-codes.md).
MEANINGS = {
    0: "done",
    1: "failed",
    2: "usage error",
    3: "partial",
    4: "credentials rejected",
    5: "outcome unknown",
    70: "internal error",
    75: "nothing sent, safe to retry",
    78: "configuration or credentials unusable",
    130: "interrupted",
    143: "terminated",
}


class Settings:
    """The URLs to notify and the time bound (s); ``problem``: why the config's ``[notify]`` could not be used."""

    def __init__(self, urls: list[str], timeout: float = DEFAULT_TIMEOUT_S, problem: str | None = None) -> None:
        self.urls, self.timeout, self.problem = urls, timeout, problem


def settings() -> Settings:
    """``CANCELCTL_NOTIFY_URLS`` when set, else the config file's ``[notify]`` table; never raises."""
    env = os.environ.get(ENV)
    urls: list[str] = []
    timeout = DEFAULT_TIMEOUT_S
    problem = None
    table: Any = None
    try:
        from cancelctl.config import config_path, parse_toml
        from cancelctl.files import read_regular

        path = config_path()
        table = parse_toml(read_regular(path, str(path)), path).get("notify")
    except Exception:  # noqa: BLE001 - missing or unreadable: the run said so already (errors once); env URLs only
        table = None
    if table is not None:
        if not isinstance(table, dict):
            problem = "[notify] must be a table"
        else:
            t = table.get("timeout", DEFAULT_TIMEOUT_S)
            if isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= MAX_TIMEOUT_S:
                timeout = float(t)
            else:
                problem = f"[notify] timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}]"
            listed = table.get("urls", [])
            if isinstance(listed, list) and all(isinstance(u, str) for u in listed):
                urls = [u.strip() for u in listed if u.strip()]
            else:
                problem = '[notify] urls must be a list of strings, e.g. urls = ["json://127.0.0.1:8000/"]'
    if env is not None:
        urls = [u.strip() for u in env.split(",") if u.strip()]
    return Settings(urls, timeout, problem)


def scheme(url: str) -> str:
    """``json://`` for ``json://host/path``: the only part of a URL ever printed (the rest may hold a token)."""
    head, sep, _ = url.partition("://")
    return f"{head}://" if sep and head.isascii() and head.replace("+", "").isalnum() and len(head) <= 20 else "?://"


def message(
    command: str, code: int, report: Report | None = None, *, reason: str | None = None, detail: str | None = None
) -> tuple[str, str]:
    """(title, body) of the notification: command, host, exit code, profiles and their counts; one line each."""
    import getpass
    import socket
    import time

    from cancelctl.redact import scrub
    from cancelctl.text import one_line

    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001
        user = "?"
    meaning = MEANINGS.get(code, "exit")
    title = f"cancelctl {command} on {host}: exit {code} ({meaning})"
    lines: list[str] = []
    doc = report.as_json() if report is not None else {"results": []}
    for r in doc["results"]:
        counts = [f"{r.get('cancelled_count') or 0} cancelled"]
        for key in ("rejected", "unknown"):
            if r.get(key):
                counts.append(f"{len(r[key])} {key}")
        if r.get("remaining") is not None:
            counts.append(f"{len(r['remaining'])} open" if r["remaining"] else "no open orders")
        if r.get("positions"):
            counts.append(f"{len(r['positions'])} position(s) open")
        status = r.get("status")
        lines.append(f"{r['profile']} ({r['venue']}): {status}: " + ", ".join(counts))
    error = doc.get("error")
    if isinstance(error, dict):
        lines.append(f"error: {error.get('kind')}")
    if detail:
        lines.append(detail)
    if reason:
        lines.append(f"reason: {reason}")
    lines.append(f"{user}@{host}, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    return scrub(one_line(title, 200)), "\n".join(scrub(one_line(line, 300)) for line in lines)


def send(title: str, body: str, current: Settings | None = None) -> bool | None:
    """Send (title, body) to every configured URL within the bound; None when none is configured, else whether
    every URL confirmed. Any failure is one stderr line; never raises."""
    try:
        return _send(title, body, current or settings())
    except Exception as e:  # noqa: BLE001 - notifying must never change the run's outcome
        _warn(f"notification not sent: {type(e).__name__}")
        return False


def _warn(text: str) -> None:
    from cancelctl.redact import scrub

    try:
        sys.stderr.write(scrub(f"cancelctl: warning: {text}") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _send(title: str, body: str, s: Settings) -> bool | None:
    import importlib.util
    import json
    import subprocess
    import time

    if s.problem and not s.urls:
        _warn(f"notifications not sent: {s.problem}")
        return False
    if not s.urls:
        return None
    if importlib.util.find_spec("apprise") is None:
        _warn(f"notifications not sent: apprise is not installed ({INSTALL_HINT})")
        return False
    from cancelctl import signals

    seen = len(signals.RECEIVED)
    payload = json.dumps({"urls": s.urls, "title": title, "body": body, "timeout": s.timeout})
    started = time.monotonic()
    proc = subprocess.Popen(
        # -P: not the working directory first on sys.path (as -m would put it): an apprise.py there is not apprise
        [sys.executable, "-P", "-m", "cancelctl.notify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a Ctrl-C at the terminal is cancelctl's to handle, not the child's
    )
    output = ""
    why = None
    first = True
    while True:
        left = s.timeout - (time.monotonic() - started)
        try:
            out, _ = proc.communicate(input=payload if first else None, timeout=max(0.01, min(0.1, left)))
            output += out or ""
            break
        except subprocess.TimeoutExpired:
            first = False
            if len(signals.RECEIVED) > seen:
                why = "stopped by a signal"
            elif left <= 0:
                why = f"not confirmed within {s.timeout:g} s"
            if why:
                proc.kill()
                out, _ = proc.communicate()
                output += out or ""
                break
    results = []
    for line in output.splitlines():
        try:
            results.append(json.loads(line))
        except ValueError:
            continue
    done = {r.get("i") for r in results if isinstance(r, dict) and r.get("ok") is True}
    failed = [scheme(u) for i, u in enumerate(s.urls) if i not in done]
    if not failed and why is None:
        if s.problem:
            _warn(f"config [notify] ignored: {s.problem}")
        return True
    if any(isinstance(r, dict) and r.get("error") == "apprise" for r in results):
        _warn(f"notifications not sent: apprise could not be loaded ({INSTALL_HINT})")
        return False
    what = f"{len(failed)} of {len(s.urls)} notification(s) not sent ({', '.join(failed)})"
    _warn(what + (f": {why}" if why else ": refused, unreachable or not an apprise URL"))
    return False


def _child() -> int:
    """``python -m cancelctl.notify``: read {urls, title, body, timeout} from stdin, send each URL with apprise,
    print one JSON line per URL: {"i": index, "ok": bool}."""
    import json
    import signal

    job = json.loads(sys.stdin.read())
    if hasattr(signal, "alarm"):
        signal.alarm(int(job.get("timeout", DEFAULT_TIMEOUT_S)) + 2)  # never outlive the parent's bound for long
    try:
        import apprise
    except Exception:  # noqa: BLE001 - not installed, or broken: one answer for the parent
        print(json.dumps({"error": "apprise"}), flush=True)
        return 0
    for i, url in enumerate(job["urls"]):
        ok = False
        try:
            a = apprise.Apprise()
            ok = bool(a.add(url)) and bool(a.notify(body=job["body"], title=job["title"]))
        except Exception:  # noqa: BLE001 - one URL's failure is its own
            ok = False
        print(json.dumps({"i": i, "ok": ok}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
