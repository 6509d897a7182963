"""Strictly increasing Gemini nonces across every process that uses a key.

Source: Gemini's REST API docs, "Private API invocation" (nonces) and
"Sessions" (https://docs.gemini.com/rest-api/#private-api-invocation):

* ordinary keys: each nonce must be greater than the last the key used;
  milliseconds since the epoch is the convention (never go down in scale);
* keys made with "Uses a time based nonce": seconds since the epoch within
  ±30 s of server time; fractional seconds are accepted;
* two requests in flight on one key can arrive out of order, and the lower
  nonce is then refused, so requests on one key go one at a time.

One small state file per key under ``$CANCELCTL_STATE_DIR/nonces/``, named
by a hash of the API key (never the key itself), holds the last nonce in
milliseconds. :meth:`NonceSequence.turn` takes the key's lock for one
request (sign -> answer) and no longer: never across the waits between
retries. Within one process the profiles on one key (sub-accounts of one
master key) queue first-come first-served (:class:`FairLock`); across
processes an ``fcntl.flock`` on the key's lock file serialises them.

When the state directory cannot be written (read-only file system, full
disk, a path under a regular file, owned by root after ``sudo``), the
cancel still goes out: the nonce comes from the clock, never below the last
one this process used (nor the stored one, when it can still be read), and
the problem is recorded for one stderr line at the end of the run
(:mod:`cancelctl.state`).
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cancelctl.errors import ConfigError, NotSent
from cancelctl.files import STATE_FILE_LIMIT, overwrite, read_regular
from cancelctl.locks import exclusive

_registry_lock = threading.Lock()
_last_used: dict[str, int] = {}  # key id -> the last nonce (ms) this process used
_queues: dict[str, FairLock] = {}


def _format(ms: int, time_based: bool) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}" if time_based else str(ms)


class FairLock:
    """A lock handed to waiters in arrival order (threads of one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Event] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        """Wait at most ``timeout`` s for the lock, behind everyone who asked before; True when held."""
        with self._lock:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(max(timeout, 0.0)):
            return True
        with self._lock:
            if turn.is_set():  # handed over just as the wait ended
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes straight to the next in line
            else:
                self._held = False


class NonceSequence:
    """The nonce counter of one API key, shared through the state dir (or held in memory when it cannot be written)."""

    def __init__(self, state_dir: Path, api_key: str, *, time_based: bool = False) -> None:
        self.key_id = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:24]
        self.dir = Path(state_dir) / "nonces"
        self.path = self.dir / f"{self.key_id}.last"
        self.lock_path = self.dir / f"{self.key_id}.lock"
        self.time_based = time_based
        self.in_memory = False  # the state dir could not be written: nonces from the clock, this process only
        with _registry_lock:
            self.queue = _queues.setdefault(self.key_id, FairLock())

    def _last(self) -> int:
        """The last nonce recorded for the key; 0 when there is none or the file is not a small regular file
        (a FIFO put there would otherwise block the cancel, with the key's lock held, for ever)."""
        try:
            return int(read_regular(self.path, str(self.path), limit=STATE_FILE_LIMIT).strip() or 0)
        except (OSError, ValueError, ConfigError):
            return 0

    def _candidate(self) -> int:
        with _registry_lock:
            mine = _last_used.get(self.key_id, 0)
        return max(time.time_ns() // 1_000_000, self._last() + 1, mine + 1)

    def peek(self) -> str:
        """The nonce the next request would use, without taking it (for --dry-run)."""
        return _format(self._candidate(), self.time_based)

    def _degrade(self, error: OSError) -> None:
        from cancelctl import state

        self.in_memory = True
        state.problem("Gemini nonce counters", self.dir, error)

    def _file_lock(self, timeout: float) -> Callable[[], None] | None:
        """The key's inter-process lock, or None when the state dir cannot hold it (then in memory)."""
        from cancelctl.config import private_dir

        try:
            private_dir(self.dir)
            release = exclusive(self.lock_path, max(timeout, 0.0))
        except OSError as e:
            self._degrade(e)
            return None
        if release is None:
            raise NotSent(
                "another cancelctl process kept this API key busy until the deadline",
                hint="raise --timeout, or give each bot its own API key",
            )
        return release

    @contextmanager
    def turn(self, timeout: float) -> Iterator[Callable[[], str]]:
        """Hold the key's lock for one request; yield ``take()`` which returns a fresh nonce text each call.

        ``timeout`` (s) bounds the wait for the other requests on the same
        key (this process's, in arrival order, then other processes'); past
        it, NotSent (exit 75) because nothing was sent.
        """
        start = time.monotonic()
        if not self.queue.acquire(timeout):
            raise NotSent(
                "the other profiles on this API key kept it busy until the deadline",
                hint="raise --timeout",
            )
        release = None
        try:
            if not self.in_memory:
                release = self._file_lock(timeout - (time.monotonic() - start))

            def take() -> str:
                ms = self._candidate()
                with _registry_lock:
                    _last_used[self.key_id] = ms
                if not self.in_memory:
                    try:
                        overwrite(self.path, str(ms))
                    except OSError as e:  # full disk, read-only, another owner: the nonce still goes out
                        self._degrade(e)
                return _format(ms, self.time_based)

            yield take
        finally:
            if release is not None:
                release()
            self.queue.release()
