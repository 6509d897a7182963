"""What every venue client shares: the protocol, its HTTP client's lifetime, an empty result for an action,
its progress.

Progress is what lets the runner stop waiting for a profile (deadline,
Ctrl-C) without losing an order: the first action's result as it is being
built (``partial``), the order IDs it was asked to cancel (``todo``) and
those of the request on the wire (``in_flight``). The runner reads them
from another thread after closing the profile's deadline gate (see
:meth:`cancelctl.transport.Deadline.close`), so an ID is marked in flight
before its request may go out and unmarked only after its row is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from cancelctl.errors import AuthError, CancelctlError, ConfigError, NotSent, OutcomeUnknown, VenueRefused
from cancelctl.results import OpenOrder, ProfileResult
from cancelctl.venues.info import VENUES

if TYPE_CHECKING:
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.signing import PreparedRequest
    from cancelctl.transport import Answer, Deadline, HTTPClient

#: An exchange order_id: a positive 64-bit integer, as both venues number their orders.
ORDER_ID = re.compile(r"^[1-9][0-9]{0,18}$")


def bad_order_ids(ids: list[str]) -> list[str]:
    """The IDs that are not positive 64-bit integers (see :data:`ORDER_ID`)."""
    return [i for i in ids if not ORDER_ID.fullmatch(i) or int(i) >= 2**63]


@dataclass(frozen=True)
class Reason:
    """How one venue error (Gemini ``reason``, Pacifica message) maps onto the contract: error class, fix, kind.

    ``hint`` may name ``{profile}``, ``{fix}`` (the ``keys set`` command) and
    what else the venue fills in; ``kind`` overrides the error's own.
    """

    error: type[CancelctlError]
    hint: str | None = None
    kind: str | None = None


def status_error(
    answer: Answer,
    title: str,
    *,
    message: str | None = None,
    plain: str = "",
    rate_limit_wait: Callable[[Answer], float | None] | None = None,
) -> CancelctlError | None:
    """The error for a status that says "try again" or "no answer", whatever the body: 429, 503, other 5xx; else None.

    429 and 503: NotSent (75, with the answer's Retry-After; a 429's wait
    is ``rate_limit_wait(answer)`` when the venue says it another way); any
    other 5xx: OutcomeUnknown (5). ``message`` is the venue's error text
    when it sent one; ``plain`` is added to a 5xx line without it.
    """
    tail = f": {message}" if message else ""
    if answer.status == 429:
        wait = answer.retry_after() if rate_limit_wait is None else rate_limit_wait(answer)
        return NotSent(f"{title} rate limit (HTTP 429){tail}", retry_after=wait, venue_reason=message)
    if answer.status == 503:
        return NotSent(f"{title} unavailable (HTTP 503){tail}", retry_after=answer.retry_after(), venue_reason=message)
    if answer.status >= 500:
        return OutcomeUnknown(f"HTTP {answer.status} from {title}{tail or plain}", venue_reason=message)
    return None


def refusal(
    answer: Answer,
    title: str,
    profile: Profile,
    *,
    message: str | None = None,
    check: str = "base_url",
    wrong_url: bool = True,
) -> CancelctlError:
    """The error for a 4xx (or 3xx) answer the venue's error table did not explain.

    404 (when ``wrong_url``: the body is not the venue's): ConfigError (78, a
    wrong URL: ``check`` names what to fix); 401/403: AuthError (4);
    anything else: VenueRefused (1).
    """
    from cancelctl.credentials import set_command

    tail = f": {message}" if message else ""
    if answer.status == 404 and wrong_url:
        return ConfigError(
            f"HTTP 404 from {profile.base_url}: not a {title} API",
            hint=f"check {check} and environment of profile {profile.name!r}",
        )
    if answer.status in (401, 403):
        return AuthError(
            f"HTTP {answer.status} from {title}{tail}",
            venue_reason=message,
            hint=f"check the key: {set_command(profile.name)}",
        )
    return VenueRefused(f"HTTP {answer.status} from {title}{tail}", venue_reason=message)


def fail_rows(result: ProfileResult, e: CancelctlError, these: list[str], rest: list[str]) -> bool:
    """Record a failed request for ``these`` IDs; True when the run must stop (``rest`` is then rejected "not sent").

    OutcomeUnknown: ``unknown`` rows; NotSent: rejected "not sent: ..."; a
    refusal of these orders (order not found...): rejected with the venue's
    reason; anything else (credentials, configuration) is the same for
    every ID: the run stops.
    """
    if isinstance(e, OutcomeUnknown):
        result.unknown.extend(these)
        result.error = e
        return False
    if isinstance(e, NotSent):
        for i in these:
            result.reject(i, f"not sent: {e.message}")
        result.error = e
        return False
    if isinstance(e, VenueRefused):  # these orders only (order not found, ...)
        for i in these:
            result.reject(i, e.venue_reason or e.message)
        return False
    result.error = e  # credentials or configuration: the same for every ID
    for i in these + rest:
        result.reject(i, f"not sent: {e.message}")
    return True


def parse_json(raw: bytes) -> object:
    """A JSON object or array from an answer body; None when it is anything else or cannot be parsed.

    A pathologically deep document (``[[[[...`` 100,000 levels) raises
    RecursionError inside :mod:`json`; it is an unreadable answer like any other.
    """
    if raw[:1] not in (b"{", b"["):
        return None
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def as_id(value: object) -> str | None:
    """An order ID as a string when ``value`` is one (a positive integer, or a string of one); else None.

    Gemini documents IDs as integers in ``cancelledOrders`` and strings in
    order status objects (https://docs.gemini.com/rest/orders); Pacifica's
    ``order_id`` is an integer (https://docs.pacifica.fi/api-documentation/api/rest-api/orders/get-open-orders).
    A bool, float, zero, negative number, null or other text is not an ID.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 < value < 2**63 else None
    if isinstance(value, str) and ORDER_ID.fullmatch(value) and int(value) < 2**63:
        return value
    return None


def id_list(value: object) -> list[str] | None:
    """The IDs of a list of order IDs, or None when it is not a list of IDs throughout."""
    if not isinstance(value, list):
        return None
    ids = [as_id(v) for v in value]
    return None if any(i is None for i in ids) else ids  # type: ignore[return-value]


T = TypeVar("T")


class _Sent(Exception):
    """Carries an OutcomeUnknown past the retry loop: a request that may have been processed is not sent again."""

    def __init__(self, error: OutcomeUnknown) -> None:
        super().__init__(error.message)
        self.error = error


def once_sent(attempt: Callable[..., T], retry: Callable[[Callable[..., T]], object]) -> T:
    """Run ``attempt`` under ``retry`` (e.g. :func:`cancelctl.transport.with_retries`) retrying only what was not sent.

    An order is not idempotent the way a cancel is: after a lost answer
    (OutcomeUnknown) it is never resent blindly; the caller reads the
    positions again and sizes any further order from that fresh read.
    """

    def guarded(*args: Any) -> T:
        try:
            return attempt(*args)
        except OutcomeUnknown as e:
            raise _Sent(e) from None

    try:
        return retry(guarded)  # type: ignore[return-value]
    except _Sent as s:
        raise s.error from None


class VenueClient(Protocol):
    """What the runner, verification and the commands may ask of any venue's client.

    Every method records its failures in the result it returns (one row per
    order ID) and raises only for a listing it could not read
    (:meth:`open_orders`). ``partial``, ``todo`` and ``in_flight`` are the
    progress the runner reads when it stops waiting (see :class:`ClientBase`);
    ``prepared``: the signed, redacted requests of a dry run.
    """

    venue: str
    profile: Profile
    deadline: Deadline
    dry_run: bool
    prepared: list[dict[str, Any]]
    partial: ProfileResult | None
    todo: tuple[str, ...]
    in_flight: tuple[str, ...]

    def cancel_all(self) -> ProfileResult: ...

    def cancel_orders(
        self, order_ids: list[str], *, symbol: str | None = None, client_order_id: bool = False, stop: bool = False,
        twap: bool = False,
    ) -> ProfileResult: ...

    def open_orders(self) -> list[OpenOrder]: ...

    def prove_key(self) -> str: ...

    def positions(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def venue_module(venue: str) -> Any:
    """The module of ``venue``'s client (its ``validate_cancel``...); ConfigError (78) for a venue that is not in
    VENUES."""
    info = VENUES.get(venue)
    if info is None:
        raise ConfigError(f"unknown venue {venue!r}: one of {', '.join(VENUES)}")
    return import_module(info.client.partition(":")[0])


def open_client(
    profile: Profile, creds: Credentials, *, state_dir: Path, deadline: Deadline, dry_run: bool = False
) -> VenueClient:
    """The venue client for ``profile`` (:attr:`VenueInfo.client <cancelctl.venues.info.VenueInfo.client>`).

    Raises ConfigError (78) for unusable credentials, and for a venue that
    is not in :data:`cancelctl.venues.info.VENUES` (never another venue's client).
    """
    cls = getattr(venue_module(profile.venue), VENUES[profile.venue].client.partition(":")[2])
    client: VenueClient = cls(profile, creds, state_dir=state_dir, deadline=deadline, dry_run=dry_run)
    return client


class Ahead(Generic[T]):
    """A read that runs in a thread of its own while the profile's thread goes on (requests that do not depend on
    each other's answers go out together instead of one round trip after another); :meth:`result` waits for it.

    The read must not touch what the profile's thread changes meanwhile (a cancel's ``unanswered``, the
    deadline's end: give it :meth:`cancelctl.transport.Deadline.part`); it goes through the profile's gate,
    so nothing of it goes out once the run stopped waiting for the profile. A read whose result is not asked
    for is dropped, answer and error alike (a daemon thread, bounded by the deadline).
    """

    def __init__(self, read: Callable[[], T]) -> None:
        import _thread

        self._read = read
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        # _thread, not threading.Thread: Thread.start() waits until the new thread has been scheduled, which on a
        # loaded machine held the profile's thread (between writing a cancel and reading its answer) for tens of
        # ms. The thread dies with the process, as a daemon thread does.
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self._value = self._read()
        except BaseException as e:  # noqa: BLE001 - handed to the thread that asks for the result
            self._error = e
        finally:
            self._done.release()

    def result(self) -> T:
        """The read's result, once it is there; raises what the read raised, as if it had run in this thread."""
        with self._done:
            pass
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class ClientBase:
    """Base of :class:`~cancelctl.venues.gemini.Gemini` and :class:`~cancelctl.venues.pacifica.Pacifica`."""

    venue = ""
    profile: Profile
    deadline: Deadline
    prepared: list[dict[str, Any]]
    dry_run = False
    _client: HTTPClient | None = None
    partial: ProfileResult | None = None  # the first action's result, while it is being built
    todo: tuple[str, ...] = ()  # the order IDs that action was asked to cancel
    in_flight: tuple[str, ...] = ()  # the order IDs of the request being sent

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _dry(self, request: PreparedRequest) -> None:
        """Dry run: keep the signed request, redacted, instead of sending it."""
        self.prepared.append(request.redacted())

    def _retrying(self, attempt: Callable[[HTTPClient], object], deadline: Deadline | None = None) -> object:
        """Run ``attempt(http_client)`` under the deadline (``deadline``, default the profile's), retrying what is
        safe to resend.

        (:func:`cancelctl.transport.with_retries`)

        The HTTP client is made on first use, so a dry run or a failure
        before sending never builds one.
        """
        from cancelctl.transport import new_client, with_retries

        if self._client is None:
            self._client = new_client(self.profile.name)
        client = self._client
        if not self.retries:
            return attempt(client)
        return with_retries(lambda: attempt(client), deadline or self.deadline)

    def _result(self, action: str, ids: list[str] | None = None) -> ProfileResult:
        """A new result for ``action``; the first one becomes ``partial`` (with ``ids`` as ``todo``)."""
        result = ProfileResult(profile=self.profile.name, venue=self.venue, action=action, dry_run=self.dry_run)
        if self.partial is None:
            self.partial, self.todo = result, tuple(str(i) for i in ids or ())
        return result

    def _in_chunks(
        self,
        result: ProfileResult,
        ids: list[str],
        size: int,
        send: Callable[[list[str]], object],
        record: Callable[[list[str], object], CancelctlError | None],
        *,
        handled: Callable[[list[str], CancelctlError], bool] | None = None,
        after: list[str] | None = None,
    ) -> bool:
        """One request per ``size`` IDs, in order: ``send(chunk)`` (None in a dry run), then ``record(chunk, body)``.

        Each chunk is marked in flight while it is sent and recorded. A
        failed request gets its rows from :func:`fail_rows`, unless
        ``handled(chunk, error)`` returns True (the venue settles those IDs
        itself); a credential or configuration failure stops the run, the
        IDs not sent (and ``after``, the IDs the caller would send next)
        rejected "not sent". ``record`` returns the error that stops the
        run the same way when an answer says nothing more may be sent
        (None: go on). True when the run stopped.
        """
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            rest = ids[start + len(chunk) :] + (after or [])
            with self.sending(chunk):
                try:
                    body = send(chunk)
                except CancelctlError as e:
                    if handled is not None and handled(chunk, e):
                        continue
                    if fail_rows(result, e, chunk, rest):
                        return True
                    continue
                if body is None:  # a dry run
                    continue
                stop = record(chunk, body)
                if stop is not None:
                    for i in rest:
                        result.reject(i, f"not sent: {stop.message}")
                    return True
        return False

    retries = True  # False inside :meth:`once`

    @contextmanager
    def once(self) -> Iterator[None]:
        """One attempt per request inside the block, no retry: a look that is not worth the run's deadline (a dry
        run's read of the book)."""
        was, self.retries = self.retries, False
        try:
            yield
        finally:
            self.retries = was

    @contextmanager
    def live(self) -> Iterator[None]:
        """Send for real inside the block even in a dry run.

        ``--dry-run --close-positions`` reads the positions it sizes from.
        """
        was, self.dry_run = self.dry_run, False
        try:
            yield
        finally:
            self.dry_run = was

    @contextmanager
    def sending(self, ids: list[str]) -> Iterator[None]:
        """Mark ``ids`` in flight for the block, which sends their request and records their rows."""
        self.in_flight = tuple(str(i) for i in ids)
        try:
            yield
        finally:
            self.in_flight = ()
