"""Verification: list the open orders in scope, cancel what is still there by ID, repeat.

Contract (``docs/panic.md``, "Verification"): no open orders in scope is exit 0; IDs still
open are exit 3 and listed in ``remaining``; a book that could not be read
is exit 5. It runs only after the first cancel has been sent, so no look-up
delays it. Rounds are paced over the deadline and stop when no open order
remains in scope or the deadline leaves no time for another round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cancelctl.errors import CancelctlError, OutcomeUnknown
from cancelctl.results import OpenOrder, ProfileResult

if TYPE_CHECKING:
    from cancelctl.venues.base import VenueClient

FIRST_PAUSE_S = 0.1  # pause before the second read of the book; doubles each round
MAX_PAUSE_S = 1.0  # the longest pause between two reads (s)
PREVIEW_MAX_S = 2.0  # the longest a dry run's read of the book may take (s); one attempt, no retry
READ_RESERVE_S = 0.3  # time kept back at the end of the deadline for the last read of the book (s)
#: Which open orders an action answers for, given its result: (result, order) -> in scope.
Scope = Callable[[ProfileResult, OpenOrder], bool]


def everything(result: ProfileResult, order: OpenOrder) -> bool:
    """Every open order (``cancel all``, ``panic``)."""
    return True


class IdsScope:
    """The orders with these IDs (client order IDs with ``client_order_id``, compared without regard to case).

    :meth:`row_id` names a listed order by the ID that was asked for: with
    client order IDs that is its ``client_order_id`` in the spelling given,
    never its ``order_id`` (a row per asked ID, never one for an ID nobody
    asked about).
    """

    def __init__(self, ids: Sequence[str], *, client_order_id: bool = False) -> None:
        self.client_order_id = client_order_id
        self.key = "client_order_id" if client_order_id else "order_id"
        self.wanted = {(i.lower() if client_order_id else i): i for i in ids}

    def _value(self, o: OpenOrder) -> str | None:
        value = o.get(self.key)
        if not isinstance(value, str):
            return None
        return value.lower() if self.client_order_id else value

    def __call__(self, result: ProfileResult, o: OpenOrder) -> bool:
        return self._value(o) in self.wanted

    def row_id(self, o: OpenOrder) -> str:
        """The asked ID a listed order in scope answers for."""
        value = self._value(o)
        return self.wanted[value] if value in self.wanted else o["order_id"]


def ids_scope(ids: Sequence[str], *, client_order_id: bool = False) -> IdsScope:
    """The orders with these IDs (client order IDs with ``client_order_id``, compared without regard to case)."""
    return IdsScope(ids, client_order_id=client_order_id)


def answered(result: ProfileResult, order: OpenOrder) -> bool:
    """The orders the venue's answer named, cancelled or rejected (``cancel session``)."""
    return ids_scope(result.cancelled + [x["id"] for x in result.rejected])(result, order)


def symbols_scope(symbols: Sequence[str], *, exclude_reduce_only: bool = False) -> Scope:
    """The orders of these symbols (all with none), reduce-only orders left out with ``exclude_reduce_only``.

    Symbols compare without regard to case: the request went out in the venue's spelling (BTC for btc).
    TWAP orders are out of scope: ``cancel pacifica`` is the venue's cancel-all alone.
    """
    wanted = {s.lower() for s in symbols}
    return lambda result, o: (
        not o.get("twap")
        and (not wanted or str(o.get("symbol")).lower() in wanted)
        and not (exclude_reduce_only and o.get("reduce_only"))
    )


def _cancel_open(client: VenueClient, orders: list[OpenOrder]) -> ProfileResult:
    """Cancel ``orders`` by ID, grouped by (symbol, stop order, TWAP order) for venues that need them."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for o in orders:
        groups.setdefault((o.get("symbol"), bool(o.get("stop")), bool(o.get("twap"))), []).append(o["order_id"])
    merged: ProfileResult | None = None
    for (symbol, stop, twap), ids in groups.items():
        # Pacifica TWAP orders have their own cancel (cancel_twap_order); only they get the keyword
        r = (
            client.cancel_orders(ids, symbol=symbol, stop=stop, twap=True)
            if twap
            else client.cancel_orders(ids, symbol=symbol, stop=stop)
        )
        if merged is None:
            merged = r
        else:
            merged.cancelled += r.cancelled
            merged.rejected += r.rejected
            merged.unknown += r.unknown
            merged.twap += r.twap
            merged.error = merged.error or r.error
    assert merged is not None
    return merged


def preview(client: VenueClient, result: ProfileResult, scope: Scope) -> ProfileResult:
    """``--dry-run``: read the book (read-only, even in a dry run) and keep in ``result.would_cancel`` the open orders
    in ``scope`` (which the real run would cancel); never raises.

    One attempt per request, ``PREVIEW_MAX_S`` at most: a dry run against a
    venue that cannot be reached says so at once rather than retrying to
    the deadline. A book that cannot be read sets ``result.preview_error``
    (said on stderr; the dry run's requests are still shown and it still
    exits 0).
    Pacifica's TWAP orders are listed by ``open_orders`` as verification
    reads them; the scope decides (``cancel pacifica`` leaves them).
    """
    try:
        with client.live(), client.once(), client.deadline.capped(PREVIEW_MAX_S):  # type: ignore[attr-defined]
            orders = client.open_orders()
        result.would_cancel = [o for o in orders if scope(result, o)]
        result.details.update({o["order_id"]: o for o in result.would_cancel})
    except CancelctlError as e:
        result.preview_error = e
    except Exception as e:  # noqa: BLE001 - whatever a venue sent, the dry run still shows its requests
        result.preview_error = OutcomeUnknown(f"the book could not be read ({type(e).__name__})")
    return result


@dataclass
class Rounds:
    """What verification knows between reads of the book (kept on the result, so a cut run can settle its rows).

    ``contradicted``: IDs the venue answered "cancelled" and a later read
    still listed (its word about them is worth nothing); ``since_read``:
    IDs a re-cancel answered "cancelled" after the last read.
    """

    contradicted: set[str] = field(default_factory=set)
    since_read: set[str] = field(default_factory=set)


def verify(
    client: VenueClient,
    result: ProfileResult,
    scope: Callable[[OpenOrder], bool],
    row_id: Callable[[OpenOrder], str] | None = None,
) -> ProfileResult:
    """Make ``result`` say what remains open in ``scope`` (an order predicate); cancel stragglers by ID. Never raises.

    Rounds are paced over the deadline: read the book; if orders in scope
    remain, cancel them by ID, pause (0.1 s doubling to 1 s) and read again,
    until none remain or the deadline leaves no time for another round
    (``READ_RESERVE_S`` is kept for the last read). So an order the
    matching engine releases a second after the cancel is still caught.
    A book that cannot be read whole sets ``verify_error`` (exit 5); the
    rows already known are kept, one per ID, settled on the last read
    (:func:`settle_cut`). ``row_id`` names a listed order by the ID its row
    has (the asked client order ID; default its ``order_id``).
    """
    rounds = result.rounds = Rounds()
    try:
        return _verify(client, result, scope, row_id or _order_id, rounds)
    except CancelctlError as e:
        result.verify_error = e
    except Exception as e:  # noqa: BLE001 - whatever a venue sent, the rows known so far stay and the book counts as unread
        result.verify_error = OutcomeUnknown(
            f"the book could not be checked ({type(e).__name__})", hint="see what is still open: cancelctl orders"
        )
    settle_cut(result)
    return result


def _order_id(o: OpenOrder) -> str:
    return o["order_id"]


def _verify(
    client: VenueClient,
    result: ProfileResult,
    scope: Callable[[OpenOrder], bool],
    row_id: Callable[[OpenOrder], str],
    rounds: Rounds,
) -> ProfileResult:
    from cancelctl.transport import DeadlinePassed

    deadline = client.deadline
    pause = FIRST_PAUSE_S
    while True:
        answered_before = set(result.cancelled)
        try:
            still = [o for o in client.open_orders() if scope(o)]
        except CancelctlError as e:
            # Only a read that never went out (the deadline, or the key's pacing, came first) says nothing
            # about the book: the last read plus the answers since is all that is known. A read that failed
            # on the wire is a book not read (exit 5). Either way each ID keeps one row, settled on the last read.
            if not isinstance(e, DeadlinePassed) or result.remaining is None:
                result.verify_error = e
            settle_cut(result)
            return result
        rounds.since_read = set()
        open_ids = list(dict.fromkeys(row_id(o) for o in still))  # an order listed twice is one order
        rounds.contradicted |= answered_before & set(open_ids)
        result.remaining = open_ids
        result.twap += [i for i in dict.fromkeys(row_id(o) for o in still if o.get("twap")) if i not in result.twap]
        if not still or deadline.remaining() <= READ_RESERVE_S:
            _settle(result, set(open_ids))
            return result
        if getattr(deadline, "listener", None) is not None:
            deadline.event(f"verifying: {len(open_ids)} still open, cancelling by ID")
        result.details.update({row_id(o): o for o in still})
        again = set(_cancel_open(client, still).cancelled)
        rows: dict[str, set[str]] = {}  # row ID -> the listed order_ids it stands for
        for o in still:
            rows.setdefault(row_id(o), set()).add(o["order_id"])
        # a row is confirmed when the venue answered "cancelled" for every order listed under it
        confirmed = [i for i, ids in rows.items() if ids <= again]
        rounds.since_read = set(confirmed)
        for order_id in confirmed:
            if order_id not in result.cancelled:
                result.cancelled.append(order_id)
        wait = min(pause, deadline.remaining() - READ_RESERVE_S)
        if wait > 0:
            time.sleep(wait)
        pause = min(pause * 2, MAX_PAUSE_S)


def settle_cut(result: ProfileResult) -> None:
    """Rows after verification stopped short of a last read (no time for it, a read that failed, a run cut):
    settle on the book read last, less the IDs a re-cancel answered "cancelled" after that read.

    An answer given before the last read is not a confirmation: that read
    listed the order after it. The IDs the venue already answered
    "cancelled" and then still listed stay open whatever it answers later.
    Nothing to settle when no read came back (``remaining`` is None).
    Whether the book counts as read is the caller's (``verify_error``).
    """
    rounds = result.rounds
    if result.remaining is None or rounds is None:
        return
    confirmed = rounds.since_read - rounds.contradicted
    result.remaining = [i for i in result.remaining if i not in confirmed]
    _settle(result, set(result.remaining) | set(result.unknown))


def _settle(result: ProfileResult, still_open: set[str]) -> None:
    """One fate per ID after the last read of the book.

    Rejections of IDs a later round cancelled are dropped; IDs of unknown
    fate seen closed get a known fate. An ID the last read still lists is
    open (``remaining``), whatever an earlier answer said: it leaves
    ``cancelled`` and ``unknown`` (a venue that answered "cancelled" about an
    order it still lists has not cancelled it). A rejected ID still open
    keeps its rejection (the venue's reason says why it is open).
    """
    cancelled = set(result.cancelled)
    result.rejected = [r for r in result.rejected if r["id"] not in cancelled]
    for order_id in [i for i in result.unknown if i not in still_open]:
        result.unknown.remove(order_id)
        if order_id not in cancelled:
            result.reject(order_id, "not open at verification: cancelled or filled")
    listed = set(result.remaining or ())
    result.cancelled = [i for i in result.cancelled if i not in listed]
    result.unknown = [i for i in result.unknown if i not in listed]
