"""What every venue client shares: the protocol, its HTTP client's lifetime, an empty result for an action, its progress.

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
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cancelctl.errors import ConfigError
from cancelctl.results import OpenOrder, ProfileResult
from cancelctl.venues.info import VENUES

if TYPE_CHECKING:
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.transport import Deadline

ORDER_ID = re.compile(r"^[1-9][0-9]{0,18}$")  # both venues: positive 64-bit integers


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
        self,
        order_ids: list[str],
        *,
        symbol: str | None = None,
        client_order_id: bool = False,
        stop: bool = False,
        twap: bool = False,
    ) -> ProfileResult: ...

    def open_orders(self) -> list[OpenOrder]: ...

    def close(self) -> None: ...


def venue_module(venue: str) -> Any:
    """The module of ``venue``'s client (its ``validate_cancel``...); ConfigError (78) for a venue that is not in VENUES."""
    info = VENUES.get(venue)
    if info is None:
        raise ConfigError(f"unknown venue {venue!r}: one of {', '.join(VENUES)}")
    return import_module(info.client.partition(":")[0])


def open_client(profile: Profile, creds: Credentials, *, state_dir: Path, deadline: Deadline, dry_run: bool = False) -> VenueClient:
    """The venue client for ``profile`` (:attr:`VenueInfo.client <cancelctl.venues.info.VenueInfo.client>`).

    Raises ConfigError (78) for unusable credentials, and for a venue that
    is not in :data:`cancelctl.venues.info.VENUES` (never another venue's client).
    """
    cls = getattr(venue_module(profile.venue), VENUES[profile.venue].client.partition(":")[2])
    client: VenueClient = cls(profile, creds, state_dir=state_dir, deadline=deadline, dry_run=dry_run)
    return client


class ClientBase:
    """Base of :class:`~cancelctl.venues.gemini.Gemini` and :class:`~cancelctl.venues.pacifica.Pacifica`."""

    venue = ""
    profile = None
    dry_run = False
    _client = None
    partial: ProfileResult | None = None  # the first action's result, while it is being built
    todo: tuple[str, ...] = ()  # the order IDs that action was asked to cancel
    in_flight: tuple[str, ...] = ()  # the order IDs of the request being sent

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _result(self, action: str, ids: list[str] | None = None) -> ProfileResult:
        """A new result for ``action``; the first one becomes ``partial`` (with ``ids`` as ``todo``)."""
        result = ProfileResult(profile=self.profile.name, venue=self.venue, action=action, dry_run=self.dry_run)
        if self.partial is None:
            self.partial, self.todo = result, tuple(str(i) for i in ids or ())
        return result

    @contextmanager
    def sending(self, ids: list[str]):
        """Mark ``ids`` in flight for the block, which sends their request and records their rows."""
        self.in_flight = tuple(str(i) for i in ids)
        try:
            yield
        finally:
            self.in_flight = ()
