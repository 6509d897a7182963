"""The live status line while a run waits: one line per profile on stderr, only on a terminal.

``sending`` → ``sent, waiting for gemini`` → ``Gemini unavailable (HTTP 503),
retry 2 in 0.4 s`` → ``verifying`` → ``done``, with the seconds since the
run began, redrawn every ``INTERVAL_S`` by a daemon thread and erased
before the report is printed. Never in a pipe, never with ``-q`` or
``--json`` (see :func:`wanted`).

It costs nothing before the first cancel: the runner starts it after the
profiles' threads, the first frame is drawn ``INTERVAL_S`` later, it
imports nothing but the standard library (no rich: plain ANSI cursor
movement), and the events it shows come from a callback that is a class
attribute left at None when nobody listens
(:attr:`cancelctl.transport.Deadline.listener`). Drawing never raises: a
failure to draw stops the line, never the run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

# The runner's Options and Progress (cancelctl.runner imports this module: named, not imported, to keep the graph
# free of cycles).
Options = Any
Progress = Any

INTERVAL_S = 0.1  # seconds between two frames (and before the first)
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: What a profile is doing, by the runner's stage (:class:`cancelctl.runner.Progress`).
STAGES = {
    "credentials": "reading credentials",
    "verify": "verifying: reading the book",
    "details": "reading the order history (which orders the cancel-all counted)",
    "positions": "reading positions",
    "done": "done",
}
#: The first request's words, by action (stage ``action``).
ACTIONS = {
    "cancel_all": "sending cancel-all",
    "cancel_session": "sending cancel-session",
    "cancel_order": "sending the cancels",
    "cancel_stop_order": "sending the cancels",
    "cancel_twap_order": "sending the cancels",
    "cancel_all_orders": "sending cancel_all_orders",
    "list_orders": "reading the open orders",
    "positions": "reading positions",
    "close_positions": "closing positions",
}


def wanted(opts: Options, stream: TextIO | None = None) -> bool:
    """Whether to show the line: ``stream`` (stderr) is a terminal that moves its cursor; no ``--json``, no ``-q``."""
    if opts.json or opts.quiet or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool((stream or sys.stderr).isatty())
    except (AttributeError, ValueError, OSError):
        return False


def describe(p: Progress, now: float) -> str:
    """One profile's line: ``⠙ main (gemini): sent, waiting for gemini · 1.2 s``."""
    stage = p.stage
    if stage == "action":
        action = p.action or ""
        text = ACTIONS.get(action, f"sending {action}".strip())
        if p.deadline.wrote and text.startswith("sending"):
            text = f"sent, waiting for {p.profile.venue}"
    else:
        text = STAGES.get(stage, stage)
    note = p.note
    if note is not None and note[0] == stage and stage != "done":
        text = note[1]
    mark = "✓" if stage == "done" else SPINNER[int(now / INTERVAL_S) % len(SPINNER)]
    elapsed = max(0.0, now - p.deadline.start)
    return f"{mark} {p.profile.name} ({p.profile.venue}): {text} · {elapsed:.1f} s"


class StatusLine:
    """The status lines of ``runs`` on ``stream``, redrawn by a daemon thread until :meth:`stop`."""

    def __init__(self, runs: list[Progress], stream: TextIO | None = None, interval: float = INTERVAL_S) -> None:
        self.runs = runs
        self.stream = stream or sys.stderr
        self.interval = interval
        self.drawn = 0  # lines on screen
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> StatusLine:
        self._thread = threading.Thread(target=self._loop, name="status-line", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.draw():
                return

    def _width(self) -> int:
        try:
            return max(20, os.get_terminal_size(self.stream.fileno()).columns)
        except (AttributeError, ValueError, OSError):
            return 80

    def draw(self) -> bool:
        """One frame; False when the stream cannot be written (the line gives up)."""
        try:
            now = time.monotonic()
            width = self._width() - 1  # never the last column: a full line would wrap on some terminals
            lines = [describe(p, now)[:width] for p in self.runs]
            with self._lock:
                if self._stop.is_set():
                    return False
                frame = self._home() + "\n".join("\x1b[2K" + line for line in lines)
                self.stream.write(frame)
                self.stream.flush()
                self.drawn = len(lines)
            return True
        except Exception:  # noqa: BLE001 - the status line is a courtesy: it stops, the run goes on
            return False

    def _home(self) -> str:
        """Back to the start of the first line drawn."""
        return "\r" + (f"\x1b[{self.drawn - 1}A" if self.drawn > 1 else "")

    def stop(self) -> None:
        """Stop drawing and erase the lines (the report is printed where they were). Never raises."""
        self._stop.set()
        try:
            with self._lock:
                if self.drawn:
                    self.stream.write(self._home() + "\x1b[J")
                    self.stream.flush()
                    self.drawn = 0
        except Exception:  # noqa: BLE001 - the report must follow whatever happened to the line
            pass


def start(runs: list[Progress], opts: Options, **kw: Any) -> StatusLine | None:
    """The status line for ``runs`` when :func:`wanted`, started; else None. Never raises."""
    try:
        if not wanted(opts):
            return None
        line = StatusLine(runs, **kw)
        for p in runs:
            p.deadline.listener = p.notify
        return line.start()
    except Exception:  # noqa: BLE001 - no line, same run
        return None
