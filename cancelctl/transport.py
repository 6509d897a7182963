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


class Deadline:
    """The run's overall deadline (``--timeout``, seconds), on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.end = self.start + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 1)


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


def new_client():
    """An httpx client for one profile (keep-alive across that profile's requests)."""
    import httpx

    return httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False)


def send(client, request: PreparedRequest, deadline: Deadline) -> Answer:
    """Send ``request`` with the deadline's remaining time as every timeout.

    Raises NotSent, OutcomeUnknown or ConfigError (a URL httpx cannot use).
    """
    import httpx

    remaining = deadline.remaining()
    if remaining <= 0.0:
        raise NotSent("the deadline passed before the request could be sent", hint="raise --timeout")
    try:
        r = client.request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.content or None,
            timeout=httpx.Timeout(remaining),
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        raise NotSent(f"cannot reach {_host(request.url)}: {_why(e)}") from None
    except httpx.PoolTimeout:
        raise NotSent(f"cannot reach {_host(request.url)}: no connection before the deadline") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise ConfigError(f"unusable URL {request.url}: {_why(e)}", hint="check the profile's base_url") from None
    except httpx.TimeoutException:
        raise OutcomeUnknown(f"no answer from {_host(request.url)} before the deadline") from None
    except httpx.TransportError as e:
        raise OutcomeUnknown(f"connection to {_host(request.url)} failed mid-request: {_why(e)}") from None
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
    """
    import tenacity

    maybe_processed: list[OutcomeUnknown] = []

    def tracked() -> T:
        try:
            return attempt()
        except OutcomeUnknown as e:
            maybe_processed.append(e)
            raise

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = getattr(exc, "retry_after", None)
        if delay is None:
            delay = min(0.1 * 2 ** (state.attempt_number - 1), 2.0)
        return min(delay, deadline.remaining())

    def stop(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        delay = getattr(exc, "retry_after", None) or 0.0
        return deadline.remaining() <= max(0.05, delay)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((NotSent, OutcomeUnknown)),
        wait=wait,
        stop=stop,
        reraise=True,
    )
    try:
        return retrying(tracked)
    except NotSent as e:
        if maybe_processed:
            last = maybe_processed[-1]
            raise OutcomeUnknown(f"{last.message}; retries then failed: {e.message}", venue_reason=last.venue_reason) from None
        raise
