"""Verification: list the open orders in scope, cancel what is still there by ID, repeat.

Contract (``shared/spec/cli.md``, "Verification"): flat is exit 0; IDs still
open are exit 3 and listed in ``remaining``; a book that could not be read
is exit 5. It runs only after the first cancel has been sent, so no look-up
delays it. Rounds stop when the book is flat, after ``MAX_ROUNDS``, or when
the deadline has passed.
"""

from __future__ import annotations

from collections.abc import Callable

from cancelctl.errors import CancelctlError
from cancelctl.results import ProfileResult

MAX_ROUNDS = 5
Scope = Callable[[dict], bool]


def everything(order: dict) -> bool:
    return True


def ids_scope(ids: list[str], *, client_order_id: bool = False) -> Scope:
    wanted = set(ids)
    key = "client_order_id" if client_order_id else "order_id"
    return lambda o: str(o.get(key)) in wanted


def _cancel_open(client, orders: list[dict]) -> ProfileResult:
    """Cancel ``orders`` by ID, grouped by (symbol, stop order) for venues that need them."""
    groups: dict[tuple, list[str]] = {}
    for o in orders:
        groups.setdefault((o.get("symbol"), bool(o.get("stop"))), []).append(o["order_id"])
    merged: ProfileResult | None = None
    for (symbol, stop), ids in groups.items():
        r = client.cancel_orders(ids, symbol=symbol, stop=stop)
        if merged is None:
            merged = r
        else:
            merged.cancelled += r.cancelled
            merged.rejected += r.rejected
            merged.unknown += r.unknown
            merged.error = merged.error or r.error
    assert merged is not None
    return merged


def verify(client, result: ProfileResult, scope: Scope) -> ProfileResult:
    """Make ``result`` say what remains open in ``scope``; cancel stragglers by ID. Never raises."""
    deadline = client.deadline
    for _ in range(MAX_ROUNDS):
        try:
            still = [o for o in client.open_orders() if scope(o)]
        except CancelctlError as e:
            result.verify_error = e
            return result
        open_ids = [o["order_id"] for o in still]
        result.remaining = open_ids
        if not still or deadline.remaining() <= 0.05:
            _settle(result, set(open_ids))
            return result
        again = _cancel_open(client, still)
        for order_id in again.cancelled:
            if order_id not in result.cancelled:
                result.cancelled.append(order_id)
    try:
        result.remaining = [o["order_id"] for o in client.open_orders() if scope(o)]
    except CancelctlError as e:
        result.verify_error = e
        return result
    _settle(result, set(result.remaining))
    return result


def _settle(result: ProfileResult, still_open: set[str]) -> None:
    """Drop rejections of IDs a later round cancelled; IDs of unknown fate seen closed get a known fate."""
    cancelled = set(result.cancelled)
    result.rejected = [r for r in result.rejected if r["id"] not in cancelled]
    for order_id in [i for i in result.unknown if i not in still_open]:
        result.unknown.remove(order_id)
        if order_id not in cancelled:
            result.reject(order_id, "not open at verification: cancelled or filled")
