"""HTTP transport: send a prepared request under the run's deadline, and retry safely.

Every failure is classified by what it means for the order, not by the
exception's type:

* :class:`~cancelctl.errors.NotSent` (exit 75): nothing reached the venue
  (connection refused, DNS failure, connect timeout), or the venue refused
  to act before doing anything (429, 503 maintenance). Safe to retry.
* :class:`~cancelctl.errors.OutcomeUnknown` (exit 5): the request may have
  been processed and no answer says so (read timeout, connection reset
  mid-answer, unreadable body, 500/502/504).

Cancels are idempotent (cancelling a cancelled order answers the same), so
both are retried, re-signed with a fresh nonce or timestamp each time, with
exponential backoff or ``Retry-After``, never past the deadline. If any
attempt may have been processed and none gave an answer, the result is
OutcomeUnknown even when the last attempt was not sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cancelctl import __version__
from cancelctl.errors import ConfigError, NotSent, OutcomeUnknown
from cancelctl.signing import PreparedRequest

T = TypeVar("T")
USER_AGENT = f"cancelctl/{__version__}"


YOUNG_PROCESS_S = 1.0  # a process younger than this spent its life starting this run


def run_start() -> float:
    """When the run began, on the monotonic clock (seconds).

    For a process younger than ``YOUNG_PROCESS_S`` that is the moment the
    process started (Linux: ``/proc/self/stat``, 10 ms resolution), so the
    interpreter's start-up counts against ``--timeout`` as the user's clock
    sees it; otherwise (a dead-man's switch firing, a test calling
    ``main.run`` in-process, no ``/proc``) it is now.
    """
    now = time.monotonic()
    try:
        import os

        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0.0 <= age < YOUNG_PROCESS_S else now


class Stopped(Exception):
    """Raised inside httpx when a request would start going out after :meth:`Deadline.close`."""


class DeadlinePassed(NotSent):
    """No time was left to send: says nothing about the venue, so a retry loop reports the failure before it."""


class Deadline:
    """The run's overall deadline (``--timeout``, seconds), on the monotonic clock, and its gate.

    ``start`` defaults to now. :meth:`close` shuts the gate: no request
    begins to go out afterwards (see :func:`send`), so a run that stops
    waiting for a profile knows for sure whether that profile sent anything
    (``wrote``). :meth:`fork` gives each profile its own gate on the same clock.
    """

    def __init__(self, seconds: float, *, start: float | None = None) -> None:
        import threading

        self.seconds = seconds
        self.start = time.monotonic() if start is None else start
        self.end = self.start + seconds
        self.closed = False
        self.wrote = False  # some request began to go out (its bytes may have reached the venue)
        self._gate = threading.Lock()

    def fork(self) -> "Deadline":
        """A deadline with the same start and end and a gate of its own."""
        return Deadline(self.seconds, start=self.start)

    def remaining(self) -> float:
        """Seconds left (0.0 once passed or closed)."""
        if self.closed:
            return 0.0
        return max(0.0, self.end - time.monotonic())

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 1)

    def close(self) -> bool:
        """Shut the gate; True when some request had already begun to go out."""
        with self._gate:
            self.closed = True
            return self.wrote

    def writing(self) -> None:
        """Called as a request's first byte is about to go out; raises Stopped once closed."""
        with self._gate:
            if self.closed:
                raise Stopped
            self.wrote = True


@dataclass
class Answer:
    """A venue's HTTP answer: status, headers (lower-case names) and raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """The body parsed as JSON; OutcomeUnknown when it is not JSON."""
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            raise OutcomeUnknown(f"unreadable answer (HTTP {self.status}, not JSON)") from None

    def retry_after(self) -> float | None:
        """``Retry-After`` in seconds when it is a number, else None."""
        value = self.headers.get("retry-after")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


_tls: dict[str, object] = {}
TLS_EXIT_WAIT_S = 2.0  # the longest an exit waits for the TLS thread (s)


def warm_tls() -> None:
    """Start building the TLS context in a background thread; :func:`new_client` waits for it.

    Loading the CA certificates (``load_verify_locations``, about 30 ms)
    runs in C without the GIL, so done here it overlaps with importing httpx
    instead of following it. The trust store is httpx's default, in httpx's
    order (``httpx._config.create_ssl_context`` with ``verify=True``):
    ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle.
    """
    import threading

    def build() -> None:
        import os
        import ssl

        try:
            if os.environ.get("SSL_CERT_FILE"):
                _tls["context"] = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                _tls["context"] = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                _tls["context"] = ssl.create_default_context(cafile=certifi.where())
        except Exception:  # noqa: BLE001 - new_client lets httpx build it and report the error
            pass

    if "thread" not in _tls:
        import atexit

        _tls["thread"] = thread = threading.Thread(target=build, name="cancelctl-tls", daemon=True)
        thread.start()
        # A run that ends before any client is made (a config error, Ctrl-C) must not let the
        # interpreter finalize under OpenSSL still loading certificates: that crashes (SIGSEGV).
        # Daemon, so a stuck CA file cannot hold the exit for more than TLS_EXIT_WAIT_S.
        atexit.register(thread.join, TLS_EXIT_WAIT_S)


def new_client():
    """An httpx client for one profile (keep-alive across that profile's requests).

    Certificates are verified (the context from :func:`warm_tls` when it was
    started, else httpx's default); redirects are never followed.
    """
    import httpx

    thread = _tls.get("thread")
    if thread is not None:
        thread.join()
    verify = _tls.get("context", True)
    return httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False, verify=verify)


def send(client, request: PreparedRequest, deadline: Deadline) -> Answer:
    """Send ``request`` with the deadline's remaining time (s) as every timeout.

    Whether anything went out is decided by httpcore's ``trace`` events,
    not by the exception's type: a failure before the request's first byte
    (DNS, connect, a closed gate) is NotSent, one after it OutcomeUnknown.
    Raises NotSent, OutcomeUnknown or ConfigError (a URL httpx cannot use).
    """
    import httpx

    if deadline.closed:
        raise NotSent("the run was stopped before the request was sent")
    remaining = deadline.remaining()
    if remaining <= 0.0:
        raise DeadlinePassed("the deadline passed before the request could be sent", hint="raise --timeout")
    wrote = False

    def trace(event: str, info: dict) -> None:
        nonlocal wrote
        if event == "http11.send_request_headers.started":
            deadline.writing()  # Stopped when the run has stopped waiting: the request never goes out
            wrote = True

    host = _host(request.url)
    try:
        r = client.request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.content or None,
            timeout=httpx.Timeout(remaining),
            extensions={"trace": trace},
        )
    except Stopped:
        raise NotSent("the run was stopped before the request was sent") from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        raise NotSent(f"cannot reach {host}: {_why(e)}") from None
    except httpx.PoolTimeout:
        raise NotSent(f"cannot reach {host}: no connection before the deadline") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise ConfigError(f"unusable URL {request.url}: {_why(e)}", hint="check the profile's base_url") from None
    except httpx.TimeoutException:
        if not wrote:
            raise NotSent(f"cannot reach {host}: no connection before the deadline") from None
        raise OutcomeUnknown(f"no answer from {host} before the deadline") from None
    except httpx.TransportError as e:
        if not wrote:
            raise NotSent(f"cannot reach {host}: {_why(e)}") from None
        raise OutcomeUnknown(f"connection to {host} failed mid-request: {_why(e)}") from None
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


def _host(url: str) -> str:
    return url.split("/")[2] if "//" in url else url


def _why(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


def with_retries(attempt: Callable[[], T], deadline: Deadline) -> T:
    """Call ``attempt`` until it returns, retrying NotSent and OutcomeUnknown.

    ``attempt`` must re-sign on every call. Backoff: ``retry_after`` of the
    error when set (Retry-After), else 0.1 s doubling to 2 s; no attempt
    starts after the deadline. Any other exception propagates at once.

    The first attempt runs before tenacity is imported (about 10 ms of
    start-up): in an emergency nothing the first cancel does not need runs
    before it. tenacity drives every attempt after a retryable failure.
    """
    maybe_processed: list[OutcomeUnknown] = []
    not_sent: list[NotSent] = []  # what kept earlier attempts from going out (the reason to report)

    def tracked() -> T:
        try:
            return attempt()
        except OutcomeUnknown as e:
            maybe_processed.append(e)
            raise
        except DeadlinePassed:
            raise
        except NotSent as e:
            not_sent.append(e)
            raise

    def delay(exc: BaseException | None, failures: int) -> float:
        wanted = getattr(exc, "retry_after", None)
        if wanted is None:
            wanted = min(0.1 * 2 ** (failures - 1), 2.0)
        return min(wanted, deadline.remaining())

    def out_of_time(exc: BaseException | None) -> bool:
        return deadline.remaining() <= max(0.05, getattr(exc, "retry_after", None) or 0.0)

    try:
        try:
            return tracked()
        except (NotSent, OutcomeUnknown) as first:
            if out_of_time(first):
                raise
            time.sleep(delay(first, 1))

        import tenacity

        def failure(state: tenacity.RetryCallState) -> BaseException | None:
            return state.outcome.exception() if state.outcome else None

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((NotSent, OutcomeUnknown)),
            wait=lambda state: delay(failure(state), state.attempt_number + 1),
            stop=lambda state: out_of_time(failure(state)),
            reraise=True,
        )
        return retrying(tracked)
    except NotSent as e:
        if isinstance(e, DeadlinePassed) and (maybe_processed or not_sent):
            if not maybe_processed:
                raise not_sent[-1] from None
            last = maybe_processed[-1]
            raise OutcomeUnknown(last.message, venue_reason=last.venue_reason) from None
        if maybe_processed:
            last = maybe_processed[-1]
            raise OutcomeUnknown(f"{last.message}; retries then failed: {e.message}", venue_reason=last.venue_reason) from None
        raise
