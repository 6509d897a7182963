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

import re
from collections.abc import Callable
from decimal import (
    ROUND_DOWN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Underflow,
    localcontext,
)
from typing import Any

from cancelctl.errors import CancelctlError, NotSent, OutcomeUnknown, UsageProblem

MAX_EXPONENT = 30  # decimal exponent bound of any venue number a close may compute with
MAX_DIGITS = 60  # significant digits of any venue number a close may compute with
# Every computation of a close runs in this context: with numbers bounded by MAX_EXPONENT and MAX_DIGITS,
# sums, differences, products and integer quotients are exact at this precision, and Inexact is trapped, so
# no size is ever silently rounded (the default context's 28 digits rounded 0.999...9 (29 nines) up to 1).
EXACT = Context(
    prec=400, rounding=ROUND_DOWN, traps=[InvalidOperation, DivisionByZero, Overflow, Underflow, Inexact]
)
# A symbol as the venues spell them (Gemini "btcgusdperp", Pacifica "BTC", "kBONK"): a letter or digit, then
# printable ASCII without white space, at most 64 characters. Anything else (an empty string, a control
# character, "..", which a URL path would read as its parent) is an undocumented shape.
SYMBOL = re.compile(r"[A-Za-z0-9][!-~]{0,63}")
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
    digits = d.as_tuple().digits
    while len(digits) > 1 and digits[-1] == 0:  # trailing zeros carry no digit of the value
        digits = digits[:-1]
    if len(digits) > MAX_DIGITS:
        raise OutcomeUnknown(f"unreadable {what} in the venue's position list: {str(value)[:40]!r}")
    return d


def check_symbol(value: object) -> str:
    """A venue's symbol when it has a documented shape (:data:`SYMBOL`); OutcomeUnknown otherwise.

    A position without a usable symbol cannot be shown, closed or matched
    with the next read: the whole list is a list not read.
    """
    if not isinstance(value, str) or not SYMBOL.fullmatch(value):
        raise OutcomeUnknown("the venue's position list has an entry without a usable symbol")
    return value


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
    """One position row (see the module docstring); OutcomeUnknown for a symbol or number outside the shape."""
    return {
        "symbol": check_symbol(symbol),
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
    if not d.is_finite() or d <= 0 or d > MAX_SLIPPAGE_LIMIT or d != d.quantize(Decimal("1e-10"), ROUND_DOWN):
        raise UsageProblem(
            f"--max-slippage must be a percentage above 0 and at most {MAX_SLIPPAGE_LIMIT} "
            f"(at most 10 decimal places), not {value}",
            hint="e.g. --max-slippage 0.5",
        )
    return d


CLOSED_KEYS = ("symbol", "side", "size", "order_id", "client_order_id", "price", "status", "reason")
FINAL = {"filled", "partial", "rejected", "unknown", "dry-run"}  # the ``status`` values a row may be shown with
# A row's life before it is final (never shown): "pending" (nothing sent yet), "sending" (the request may be on
# its way), "sent" (answered; its fill is settled by the next read of the positions, Pacifica).


def close_row(position: dict[str, Any]) -> dict[str, Any]:
    """A ``closed`` row for ``position`` before anything is sent: status ``pending``, no order, no reason yet.

    Shape (docs/json.md, "closed"): ``{"symbol", "side", "size", "order_id",
    "client_order_id", "price", "status", "reason"}``; each venue fills in
    what it sent and what the venue answered. A row also carries keys for
    the closing step only (``executed``, ``give_up``, ``lost``,
    ``error``): :func:`shown` leaves them out of every document.
    """
    return {
        "symbol": position["symbol"],
        "side": position["side"],
        "size": position["size"],
        "order_id": None,
        "client_order_id": None,
        "price": None,
        "status": "pending",
        "reason": None,
    }


def send_close(row: dict[str, Any], send: Callable[[], Any]) -> tuple[bool, Any]:
    """Send one closing order with ``send()``: ``(True, answer)`` when the venue answered.

    The row is ``sending`` while the request may be on its way (an
    interrupted run reports it ``unknown``). Otherwise ``(False, None)``
    and ``row`` says why: ``unknown`` when the answer was lost
    (OutcomeUnknown; never resent, the caller reads the positions again),
    ``not sent: ...`` (NotSent), or the venue's refusal (any other
    CancelctlError), marked ``give_up``: the same order would be refused
    again. The error is kept in ``row["error"]`` (credentials and
    configuration refusals decide the exit code).
    """
    row["status"] = "sending"
    try:
        return True, send()
    except OutcomeUnknown as e:
        row.update(status="unknown", reason=e.message, lost=True)
    except NotSent as e:
        row.update(status="rejected", reason=f"not sent: {e.message}", error=e)
    except CancelctlError as e:
        row.update(status="rejected", reason=e.venue_reason or e.message, give_up=True, error=e)
    return False, None


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as documents show it: the documented keys only, and a status that is final.

    A row caught before it was final (a run that stopped waiting for it)
    is ``unknown`` when its order may have gone out, ``rejected`` when not;
    :func:`unsettled` words that case better, this is the last guard.
    """
    out = {k: row.get(k) for k in CLOSED_KEYS}
    if out["status"] not in FINAL:
        pending = out["status"] == "pending"
        out["status"] = "rejected" if pending else "unknown"
        out["reason"] = out["reason"] or ("not sent" if pending else "no answer seen: read the positions")
    return out


def unsettled(rows: list[dict[str, Any]], word: str) -> list[dict[str, Any]]:
    """Copies of ``rows`` made final for a run that stopped waiting (``word``: interrupted, terminated, or the
    deadline): pending -> rejected "not sent: ..."; sending -> unknown; sent -> unknown (answered, not read back)."""
    out = []
    for row in list(rows):
        r = dict(row)
        status = r.get("status")
        if status == "pending":
            r.update(status="rejected", reason=f"not sent: {word}")
        elif status == "sending":
            r.update(status="unknown", reason=f"{word} before the venue answered: read the positions")
        elif status == "sent":
            r.update(status="unknown", reason=f"sent; {word} before the positions were read back")
        out.append(shown(r))
    return out


def observed(before: dict[str, Any], after: dict[str, Any] | None, bound: str = "") -> tuple[str, str | None]:
    """(status, reason) of a closing order from what the positions showed before it and after it (``after``: None
    when the position is gone); the reason says what was seen, never more.

    Gone: ``filled``. Smaller on the same side: ``partial`` (what is left).
    Unchanged: ``rejected`` (no fill seen; ``bound`` names the price
    bound the order had, e.g. "within --max-slippage 0.5%"). Larger, or on the other side (a
    flip): ``unknown``: something else traded, this order's own fill is not
    known.
    """
    with localcontext(EXACT):
        was = f"{before['side']} {before['size']}"
        if after is None:
            return "filled", None
        now = f"{after['side']} {after['size']}"
        if after["side"] != before["side"]:
            return "unknown", f"the position flipped to {now} (was {was}): this order's own fill is not known"
        old, new = Decimal(before["size"]), Decimal(after["size"])
        if new == old:
            return "rejected", f"no fill seen{' ' + bound if bound else ''}: the position is still {now}"
        if new > old:
            return "unknown", f"the position grew from {was} to {after['size']}: this order's own fill is not known"
        return "partial", f"{now} left (was {before['size']})"


def closing_side(side: str) -> str:
    """The order side that reduces a ``long`` (sell) or ``short`` (buy) position."""
    return "sell" if side == "long" else "buy"


def round_size(size: Decimal, step: Decimal | None) -> Decimal:
    """``size`` rounded DOWN to a multiple of ``step``: a closing order is never larger than the position.

    Exact (:data:`EXACT`): an integer quotient, never a rounded division.
    Raises decimal.Inexact or InvalidOperation (ArithmeticError) for numbers
    outside :func:`decimal`'s bounds rather than round.
    """
    if not step or step <= 0:
        return size
    with localcontext(EXACT):
        return (size // step) * step


def limit_price(reference: Decimal, side: str, slippage_pct: Decimal, tick: Decimal | None) -> Decimal:
    """The IOC limit price ``slippage_pct`` percent through ``reference``, on the tick, within the bound.

    A sell is priced below the reference, a buy above it; the tick rounding
    goes towards the reference (sell: up, buy: down) so the price never
    lies further than ``slippage_pct`` from it.
    """
    with localcontext(EXACT):
        factor = slippage_pct.scaleb(-2)  # percent: exact, unlike a division by 100 in a rounding context
        raw = reference * (1 - factor) if side == "sell" else reference * (1 + factor)
        if not tick or tick <= 0:
            return raw
        whole, rest = divmod(raw, tick)
        if rest and side == "sell":  # towards the reference: a sell's price up, a buy's down
            whole += 1
        return whole * tick
