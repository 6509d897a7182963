"""Open positions: the venue-neutral row, decimal handling, and the closing order's size and price.

A position row is ``{"symbol", "side": "long"|"short", "size",
"entry_price", "mark_price", "unrealized_pnl"}``; every number is a decimal
string (never a float), ``size`` is positive, the last three may be None.
"Flat" means no position; an account with no open order is "no open orders".

Pure functions only (no I/O): the venue modules read the positions and send
the closing orders; this module decides sizes and prices so both venues
round the same way and tests can check the rules as properties.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from cancelctl.errors import CancelctlError, NotSent, OutcomeUnknown, UsageProblem

MAX_EXPONENT = 30  # decimal exponent bound of any venue number a close may compute with
DEFAULT_MAX_SLIPPAGE = Decimal("0.5")  # percent (contract, "Positions")
MAX_SLIPPAGE_LIMIT = Decimal("50")  # percent; more is a typo, not a price bound
PACIFICA_SETTLE_S = 0.3  # Pacifica delays market orders about 200 ms (docs "Create market order"): read back after this


def decimal(value: object, what: str) -> Decimal:
    """``value`` (a JSON string or number from the venue) as a finite Decimal; OutcomeUnknown otherwise.

    A position list with an entry that cannot be read is a list not read:
    the caller reports the read as failed rather than a shorter list.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OutcomeUnknown(f"unreadable {what} in the venue's position list: {str(value)[:40]!r}")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise OutcomeUnknown(f"unreadable {what} in the venue's position list: {str(value)[:40]!r}") from None
    # No real size, price, tick or lot is beyond 1e30 or finer than 1e-30; past that the arithmetic of a
    # close (rounding to a tick, pricing through the slippage) overflows, so such a value is unreadable.
    if not d.is_finite() or (d != 0 and not -MAX_EXPONENT <= d.adjusted() <= MAX_EXPONENT):
        raise OutcomeUnknown(f"unreadable {what} in the venue's position list: {str(value)[:40]!r}")
    return d


def text(d: Decimal | None) -> str | None:
    """A Decimal as a plain decimal string (no exponent), None as None."""
    if d is None:
        return None
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def optional(value: object, what: str) -> str | None:
    return None if value is None or value == "" else text(decimal(value, what))


def row(
    symbol: str, side: str, size: Decimal, entry: object = None, mark: object = None, pnl: object = None
) -> dict[str, Any]:
    """One position row (see the module docstring)."""
    return {
        "symbol": symbol,
        "side": side,
        "size": text(size),
        "entry_price": optional(entry, "entry price"),
        "mark_price": optional(mark, "mark price"),
        "unrealized_pnl": optional(pnl, "unrealized PnL"),
    }


def parse_slippage(value: str | float | None) -> Decimal:
    """``--max-slippage`` (percent) as a Decimal in (0, 50]; UsageProblem (exit 2) otherwise."""
    if value is None:
        return DEFAULT_MAX_SLIPPAGE
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        d = Decimal("NaN")
    if not d.is_finite() or d <= 0 or d > MAX_SLIPPAGE_LIMIT:
        raise UsageProblem(
            f"--max-slippage must be a percentage above 0 and at most {MAX_SLIPPAGE_LIMIT}, not {value}",
            hint="e.g. --max-slippage 0.5",
        )
    return d


def close_row(position: dict[str, Any]) -> dict[str, Any]:
    """A ``closed`` row for ``position`` before anything is sent: ``rejected`` with no order and no reason yet.

    Shape (docs/json.md, "closed"): ``{"symbol", "side", "size", "order_id",
    "client_order_id", "price", "status", "reason"}``; each venue fills in
    what it sent and what the venue answered.
    """
    return {
        "symbol": position["symbol"],
        "side": position["side"],
        "size": position["size"],
        "order_id": None,
        "client_order_id": None,
        "price": None,
        "status": "rejected",
        "reason": None,
    }


def send_close(row: dict[str, Any], send: Callable[[], Any]) -> tuple[bool, Any]:
    """Send one closing order with ``send()``: ``(True, answer)`` when the venue answered.

    Otherwise ``(False, None)`` and ``row`` says why: ``unknown`` when the
    answer was lost (OutcomeUnknown; never resent, the caller reads the
    positions again), ``not sent: ...`` (NotSent), or the venue's refusal
    (any other CancelctlError), marked ``give_up``: the same order would be
    refused again.
    """
    try:
        return True, send()
    except OutcomeUnknown as e:
        row.update(status="unknown", reason=e.message)
    except NotSent as e:
        row["reason"] = f"not sent: {e.message}"
    except CancelctlError as e:
        row.update(reason=e.venue_reason or e.message, give_up=True)
    return False, None


def closing_side(side: str) -> str:
    """The order side that reduces a ``long`` (sell) or ``short`` (buy) position."""
    return "sell" if side == "long" else "buy"


def round_size(size: Decimal, step: Decimal | None) -> Decimal:
    """``size`` rounded DOWN to a multiple of ``step``: a closing order is never larger than the position."""
    if not step or step <= 0:
        return size
    return (size / step).to_integral_value(rounding=ROUND_DOWN) * step


def limit_price(reference: Decimal, side: str, slippage_pct: Decimal, tick: Decimal | None) -> Decimal:
    """The IOC limit price ``slippage_pct`` percent through ``reference``, on the tick, within the bound.

    A sell is priced below the reference, a buy above it; the tick rounding
    goes towards the reference (sell: up, buy: down) so the price never
    lies further than ``slippage_pct`` from it.
    """
    factor = slippage_pct / Decimal(100)
    if side == "sell":
        raw = reference * (1 - factor)
        rounding = ROUND_CEILING
    else:
        raw = reference * (1 + factor)
        rounding = ROUND_FLOOR
    if not tick or tick <= 0:
        return raw
    return (raw / tick).to_integral_value(rounding=rounding) * tick
