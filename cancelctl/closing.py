"""After the orders: read the positions (``panic``), and close them when asked (``--close-positions``).

Runs as the runner's ``after`` step, in the profile's thread, once the
cancels went out and the book was verified: nothing here can delay a cancel.

Closing, per profile (contract, "Positions"):

1. read the positions (a fresh read: every size comes from it);
2. send one closing order per position, on the opposite side, never larger
   than the position (sizes are rounded down to the venue's step);
3. read again; a position left (a partial fill, no fill within the
   slippage bound, a lost answer that did not happen) gets a new order from
   that fresh read, at most ``RETRIES`` more times, within the deadline;
4. a refusal by the venue (a halted or closed market, a reduce-only
   refusal) is reported once and not retried in a loop.

A lost answer is never resent blindly: the next read shows whether the
order happened, and the next order (a new client order ID) is sized from
that read, so a retry cannot close twice. Every closing order carries a
client order ID so it can be traced on the venue.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from cancelctl.errors import CancelctlError, OutcomeUnknown
from cancelctl.results import ProfileResult

RETRIES = 2  # further closing orders for a position still open after the first one
SETTLE_S = {"pacifica": 0.3, "gemini": 0.0}  # Pacifica delays market orders about 200 ms


def report(client: Any, result: ProfileResult) -> None:
    """Read the positions into ``result`` (``panic`` without ``--close-positions``); never raises, never sends an order.

    A read that fails is kept in ``positions_error`` (said on stderr and in
    the JSON document); it does not change the exit code. In a dry run
    nothing is read (nothing is sent at all).
    """
    if client.dry_run:
        return
    try:
        result.positions = client.positions()
    except CancelctlError as e:
        result.positions_error = e


def _read(client: Any, result: ProfileResult) -> list[dict[str, Any]] | None:
    try:
        with client.live():
            positions: list[dict[str, Any]] = client.positions()
    except CancelctlError as e:
        result.positions_error = e
        return None
    result.positions_error = None
    result.positions = positions
    return positions


def _settle(rows: list[dict[str, Any]], before: dict[str, dict[str, Any]], after: list[dict[str, Any]]) -> None:
    """Give each row sent this round a known fate from the fresh read (``after``).

    A Pacifica market order's answer names no fill, and a lost answer names
    nothing: the change of the position decides. Gemini's IOC answer gives
    the executed amount, which stands (its rows are already final).
    """
    from decimal import Decimal

    now = {p["symbol"]: p for p in after}
    for row in rows:
        slippage = row.pop("slippage", None)
        if row["status"] not in ("sent", "unknown"):
            continue
        old, new = before[row["symbol"]], now.get(row["symbol"])
        left = Decimal(new["size"]) if new is not None and new["side"] == old["side"] else Decimal(0)
        done = Decimal(old["size"]) - left
        lost = "the answer was lost; the fresh read shows " if row["status"] == "unknown" else ""
        if done <= 0:
            row["status"] = "rejected"
            row["reason"] = f"{lost}the position unchanged" if lost else f"not filled within --max-slippage {slippage}%"
        elif left <= 0:
            row["status"], row["reason"] = "filled", (f"{lost}the position closed" if lost else None)
        else:
            row["status"], row["reason"] = "partial", f"{lost}{_text(left)} left"


def _text(d: Decimal) -> str:
    from cancelctl.positions import text

    return text(d) or "0"


def close(client: Any, result: ProfileResult, slippage: Decimal) -> None:
    """Close every open position of the profile (see the module docstring); never raises.

    ``slippage`` is the ``--max-slippage`` percent (Decimal). Fills
    ``result.closed`` (one row per closing order) and ``result.positions``
    (what the last read showed). In a dry run the positions are read, the
    closing orders are signed and kept in ``result.requests`` with rows of
    status ``dry-run``, and nothing is sent.
    """
    from decimal import Decimal

    result.closing = True
    result.closed = []
    given_up: set[str] = set()
    positions = _read(client, result)
    # symbol -> the most that may still be sent to close it: the first read's size less the size of every
    # earlier order that filled, partly filled or whose fate is unknown. A read that lags behind fills (or a
    # venue whose answer and read disagree) can then never make the closes add up to more than the position.
    # A symbol listed twice (a venue that repeats itself) counts once, at its larger size.
    budget: dict[str, Decimal] = {}
    for p in positions or ():
        budget[p["symbol"]] = max(budget.get(p["symbol"], Decimal(0)), Decimal(p["size"]))
    for _round in range(1 + RETRIES):
        if not positions:
            return
        todo = []
        planned: dict[str, Decimal] = {}
        for p in positions:
            symbol = p["symbol"]
            left = budget.get(symbol, Decimal(0)) - planned.get(symbol, Decimal(0))
            if symbol in given_up or left <= 0:
                continue
            size = min(Decimal(p["size"]), left)
            planned[symbol] = planned.get(symbol, Decimal(0)) + size
            todo.append(p if size == Decimal(p["size"]) else dict(p, size=_text(size)))
        if not todo or client.deadline.remaining() <= 0.1:
            return
        rows = []
        executed: dict[int, Decimal | None] = {}  # the amount the venue's answer says filled (Gemini IOC)
        for p in todo:
            try:
                row = client.close_position(p, slippage)
            except CancelctlError as e:  # defensive: the venue method records its own failures
                row = {
                    "symbol": p["symbol"],
                    "side": p["side"],
                    "size": p["size"],
                    "order_id": None,
                    "client_order_id": None,
                    "price": None,
                    "status": "unknown" if isinstance(e, OutcomeUnknown) else "rejected",
                    "reason": e.message,
                }
            if row.pop("give_up", False):
                given_up.add(p["symbol"])
            executed[id(row)] = row.pop("executed", None)
            rows.append(row)
            result.closed.append(row)
        if client.dry_run:
            return
        time.sleep(min(SETTLE_S.get(client.venue, 0.0), max(0.0, client.deadline.remaining() - 0.1)))
        before = {p["symbol"]: p for p in positions}
        positions = _read(client, result)
        after = {p["symbol"]: p for p in positions or ()}
        if positions is None:
            for row in rows:
                row.pop("slippage", None)
                if row["status"] == "sent":
                    row["status"], row["reason"] = "unknown", "sent; the positions could not be read back"
            return
        _settle(rows, before, positions)
        for row in rows:
            symbol = row["symbol"]
            if row["status"] == "rejected" or symbol not in budget:
                continue
            filled = executed.get(id(row))
            try:
                if filled is not None:  # the venue said how much filled
                    budget[symbol] -= filled
                elif row["status"] == "unknown":  # a lost answer: it may all have filled
                    budget[symbol] -= Decimal(str(row["size"]))
                else:  # a reduce-only order (Pacifica): what the read shows closed
                    old, new = before[symbol], after.get(symbol)
                    left = Decimal(new["size"]) if new is not None and new["side"] == old["side"] else Decimal(0)
                    budget[symbol] -= max(Decimal(0), Decimal(old["size"]) - left)
            except (ArithmeticError, ValueError, KeyError):  # a size that is no number: send nothing more for it
                budget[symbol] = Decimal(0)
