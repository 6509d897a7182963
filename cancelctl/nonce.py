"""Strictly increasing Gemini nonces across every process that uses a key.

Source: Gemini API docs, "Private API invocation" (nonces) and "Sessions";
summarised in ``shared/spec/gemini.md``, "Nonces":

* ordinary keys: each nonce must be greater than the last the key used;
  milliseconds since the epoch is the convention (never go down in scale);
* keys made with "Uses a time based nonce": seconds since the epoch within
  ±30 s of server time; fractional seconds are accepted;
* two requests in flight on one key can arrive out of order, and the lower
  nonce is then refused, so requests on one key go one at a time.

One small state file per key under ``$CANCELCTL_STATE_DIR/nonces/``, named
by a hash of the API key (never the key itself), holds the last nonce in
milliseconds. :meth:`NonceSequence.turn` takes the key's file lock
(``fcntl.flock``) and keeps it until the request's answer is in, so concurrent
cancelctl processes on one key queue instead of racing.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path

from cancelctl.errors import NotSent
from cancelctl.locks import exclusive


def _format(ms: int, time_based: bool) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}" if time_based else str(ms)


class NonceSequence:
    """The nonce counter of one API key, shared through the state dir."""

    def __init__(self, state_dir: Path, api_key: str, *, time_based: bool = False) -> None:
        key_id = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:24]
        self.dir = Path(state_dir) / "nonces"
        self.path = self.dir / f"{key_id}.last"
        self.lock_path = self.dir / f"{key_id}.lock"
        self.time_based = time_based

    def _last(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _candidate(self) -> int:
        return max(time.time_ns() // 1_000_000, self._last() + 1)

    def peek(self) -> str:
        """The nonce the next request would use, without taking it (for --dry-run)."""
        return _format(self._candidate(), self.time_based)

    @contextmanager
    def turn(self, timeout: float):
        """Hold the key's lock; yield ``take()`` which returns a fresh nonce text each call.

        ``timeout`` (s) bounds the wait for another process's request on the
        same key; past it, NotSent (exit 75) because nothing was sent.
        """
        # mode applies to the last component only: make the state dir itself 0700 first
        self.dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir.mkdir(exist_ok=True, mode=0o700)
        release = exclusive(self.lock_path, max(timeout, 0.0))
        if release is None:
            raise NotSent(
                "another cancelctl process kept this API key busy until the deadline",
                hint="raise --timeout, or give each bot its own API key",
            )
        try:

            def take() -> str:
                ms = self._candidate()
                tmp = self.path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(str(ms))
                os.replace(tmp, self.path)
                return _format(ms, self.time_based)

            yield take
        finally:
            release()

