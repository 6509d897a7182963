"""Pacing the requests of one API key: a token bucket shared by every process that uses the key.

Gemini (https://docs.gemini.com/rate-limit): private endpoints allow 600
requests a minute, "recommend that you not exceed 5 requests per second",
and past the rate "a burst rate of five additional requests" is queued
before 429s begin. cancelctl keeps each key to ``rate`` requests a second
with a burst of ``burst``: the first ``burst`` requests of a quiet key go at
once, later ones one every ``1 / rate`` s, so any second holds at most
``burst + rate`` of them (10 with the defaults: within the venue's 600 a
minute, 10 a second).

The bucket lives in a small file next to the key's nonce counter and is
read and written while the caller holds the key's lock
(:meth:`cancelctl.nonce.NonceSequence.turn`), so concurrent cancelctl
processes on one key share it. When the file cannot be used (an unwritable
state dir) the bucket is kept in this process only: pacing never stops a
cancel from going out.
"""

from __future__ import annotations

import time
from pathlib import Path

from cancelctl.errors import ConfigError
from cancelctl.files import STATE_FILE_LIMIT, overwrite, read_regular
from cancelctl.transport import DeadlinePassed

_local: dict[str, tuple[float, float]] = {}  # path -> (tokens, monotonic time), when the file is unusable


def _read(path: Path) -> tuple[float, float] | None:
    """(tokens, monotonic time) stored at ``path``; this process's own bucket when the file is missing,
    unreadable or not a small regular file (a FIFO there must not block a cancel)."""
    try:
        tokens, at = read_regular(path, str(path), limit=STATE_FILE_LIMIT).split()
        return float(tokens), float(at)
    except (OSError, ValueError, ConfigError):
        return _local.get(str(path))


def _write(path: Path, tokens: float, at: float) -> None:
    _local[str(path)] = (tokens, at)
    try:
        overwrite(path, f"{tokens:.6f} {at:.6f}")
    except OSError:
        pass


def take(path: Path, *, rate: float, burst: int, remaining: float) -> float:
    """Wait (seconds, returned) until the bucket at ``path`` has a token, and take it.

    ``rate``: tokens a second; ``burst``: the bucket's size; ``remaining``:
    seconds left before the run's deadline. Raises DeadlinePassed (nothing
    sent, exit 75) when the wait would not end before the deadline. Call
    with the key's lock held. Times are ``time.monotonic()`` (one clock for
    every process on the machine); a stored time from the future (another
    boot) counts as a full bucket.
    """
    now = time.monotonic()
    state = _read(path)
    if state is None or not 0.0 <= now - state[1] < 3600:
        tokens = float(burst)
    else:
        tokens = min(float(burst), state[0] + (now - state[1]) * rate)
    waited = 0.0
    if tokens < 1.0:
        waited = (1.0 - tokens) / rate
        if waited > remaining:
            raise DeadlinePassed(
                f"the deadline comes before the venue's rate allows another request on this key ({rate:g} a second)",
                hint="raise --timeout",
            )
        time.sleep(waited)
        now, tokens = time.monotonic(), 1.0
    _write(path, tokens - 1.0, now)
    return waited
