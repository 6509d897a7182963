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
from decimal import Decimal, localcontext
from typing import Any

from cancelctl import positions as pos
from cancelctl.errors import AuthError, CancelctlError, ConfigError, OutcomeUnknown
from cancelctl.results import ProfileResult

RETRIES = 2  # further closing orders for a position still open after the first one
SETTLE_S = {"pacifica": 0.3, "gemini": 0.0}  # Pacifica delays market orders about 200 ms
READ_BACK_S = 1.0  # s kept for reading the positions back after each round of closing orders (at most)
READ_BACK_SHARE = 0.2  # ... and at most this share of --timeout, so a short --timeout still closes
REPORT_READ_S = 2.0  # s: the most panic's read of the positions (without --close-positions) may take


def report(client: Any, result: ProfileResult) -> None:
    """Read the positions into ``result`` (``panic`` without ``--close-positions``); never raises, never sends an order.

    The read gets at most ``REPORT_READ_S`` seconds (retries included): a
    failing positions endpoint never holds the panic after verification.
    A read that fails is kept in ``positions_error`` (said on stderr and in
    the JSON document); it does not change the exit code. In a dry run
    nothing is read (nothing is sent at all).
    """
    if client.dry_run:
        return
    try:
        with client.deadline.capped(REPORT_READ_S):
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


def _settle(
    rows: list[dict[str, Any]], before: dict[str, dict[str, Any]], after: list[dict[str, Any]], slippage: Decimal
) -> None:
    """Give each row sent this round a known fate from the fresh read (``after``), worded from what it showed.

    A Pacifica market order's answer names no fill, and a lost answer names
    nothing: the change of the position decides (:func:`cancelctl.positions.observed`).
    Gemini's IOC answer gives the executed amount, which stands; a read
    that contradicts it (a flip, a larger position) is added to its reason.
    """
    now = {p["symbol"]: p for p in after}
    for row in rows:
        old, new = before[row["symbol"]], now.get(row["symbol"])
        if row["status"] == "sent" or row.get("lost"):
            status, reason = pos.observed(old, new, f"within --max-slippage {pos.text(slippage)}%")
            if row.get("lost"):
                why = f" ({row['reason']})" if row["reason"] else ""
                reason = f"the answer was lost{why}; read back: {reason or 'the position closed'}"
            row["status"], row["reason"] = status, reason
        elif row["status"] in ("filled", "partial") and new is not None:
            flipped, grew = new["side"] != old["side"], Decimal(new["size"]) > Decimal(old["size"])
            if flipped or grew:
                row["reason"] = "; ".join(
                    x for x in (row["reason"], f"the read back shows {new['side']} {new['size']}") if x
                )


def _reserve(client: Any) -> float:
    """Seconds each round of closing orders leaves for reading the positions back."""
    return float(min(READ_BACK_S, READ_BACK_SHARE * client.deadline.seconds) + SETTLE_S.get(client.venue, 0.0))


def close(client: Any, result: ProfileResult, slippage: Decimal) -> None:
    """Close every open position of the profile (see the module docstring); never raises.

    ``slippage`` is the ``--max-slippage`` percent (Decimal). Fills
    ``result.closed`` (one row per closing order, recorded before its
    request may go out, so an interrupted run keeps it) and
    ``result.positions`` (what the last read showed). Every round of
    closing orders leaves time to read the positions back (``_reserve``).
    In a dry run the positions are read, the closing orders are signed and
    kept in ``result.requests`` with rows of status ``dry-run``, and nothing
    is sent. All arithmetic is exact (:data:`cancelctl.positions.EXACT`).
    """
    result.closing = True
    result.closed = []
    with localcontext(pos.EXACT):
        try:
            _close(client, result, slippage)
        except ArithmeticError:  # a venue number beyond what a close computes with: nothing more is sent
            result.positions_error = result.positions_error or OutcomeUnknown(
                "a size or price from the venue is beyond what cancelctl computes with; not closed"
            )
        for row in result.closed:  # whatever happened, no row is left before its final status
            if row["status"] == "pending":
                row.update(status="rejected", reason=row["reason"] or "not sent")
            elif row["status"] in ("sending", "sent"):
                row.update(status="unknown", reason=row["reason"] or "sent; the positions could not be read back")


def _close(client: Any, result: ProfileResult, slippage: Decimal) -> None:
    assert result.closed is not None
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
            todo.append(p if size == Decimal(p["size"]) else dict(p, size=pos.text(size)))
        reserve = 0.0 if client.dry_run else _reserve(client)
        if not todo or client.deadline.remaining() <= reserve + 0.1:
            return
        rows = []
        with client.deadline.capped(client.deadline.remaining() - reserve):
            for p in todo:
                row = pos.close_row(p)
                result.closed.append(row)  # before its request may go out: an interrupted run keeps the row
                rows.append(row)
                try:
                    client.close_position(p, slippage, row)
                except CancelctlError as e:  # defensive: the venue method records its own failures
                    if row["status"] in ("sending", "sent"):
                        row.update(status="unknown", reason=e.message, lost=True)
                    else:
                        row.update(status="rejected", reason=e.message, error=e)
                if row["status"] == "pending":  # the venue method sent nothing (market closed, step, ...)
                    row["status"] = "rejected"
                error = row.pop("error", None)
                if isinstance(error, (AuthError, ConfigError)) and result.close_error is None:
                    result.close_error = error
                if row.pop("give_up", False):
                    given_up.add(p["symbol"])
        if client.dry_run:
            return
        time.sleep(min(SETTLE_S.get(client.venue, 0.0), max(0.0, client.deadline.remaining() - 0.1)))
        before = {p["symbol"]: p for p in positions}
        positions = _read(client, result)
        after = {p["symbol"]: p for p in positions or ()}
        if positions is None:
            for row in rows:
                row.pop("lost", None)
                if row["status"] == "sent":
                    row["status"], row["reason"] = "unknown", "sent; the positions could not be read back"
            return
        _settle(rows, before, positions, slippage)
        for row in rows:
            symbol = row["symbol"]
            lost = row.pop("lost", False)
            filled = row.pop("executed", None)
            if row["status"] == "rejected" or symbol not in budget:  # a lost answer the read shows did nothing
                continue
            try:
                if filled is not None and not lost:  # the venue said how much filled
                    budget[symbol] -= filled
                elif row["status"] == "unknown":  # a flip, a grown position, no read: it may all have filled
                    budget[symbol] -= Decimal(str(row["size"]))
                else:  # a reduce-only order (Pacifica): what the read shows closed
                    old, new = before[symbol], after.get(symbol)
                    left = Decimal(new["size"]) if new is not None and new["side"] == old["side"] else Decimal(0)
                    budget[symbol] -= max(Decimal(0), Decimal(old["size"]) - left)
            except (ArithmeticError, ValueError, KeyError):  # a size that is no number: send nothing more for it
                budget[symbol] = Decimal(0)
