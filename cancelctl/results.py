"""What a run did, per profile, and the exit code that follows from it.

Shapes follow the contract's JSON document (``docs/json.md``): order IDs are strings;
``rejected`` items are ``{"id", "reason"}``;
``remaining`` is None without verification. ``unknown`` (IDs whose fate is
not known) is an addition the contract allows. ``positions`` is None when
not read, else ``[{"symbol", "side": "long"|"short", "size", "entry_price",
"mark_price", "unrealized_pnl"}]`` with decimal strings (never floats);
``closed`` rows are ``{"symbol", "side", "size", "order_id",
"client_order_id", "status": "filled"|"partial"|"rejected"|"unknown",
"reason"}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from cancelctl.errors import CancelctlError, ExitCode, combine

SCHEMA = "cancelctl/1"
WIDE_ACTIONS = {"cancel_all", "cancel_session", "cancel_all_orders"}
# Wide actions whose verification reads their whole scope. ``cancel_session``
# is not one: the book does not say which orders were the session's, so its
# verification covers only the IDs the venue's answer named, and an empty
# check after an unreadable answer confirms nothing.
BOOK_VERIFIED_ACTIONS = {"cancel_all", "cancel_all_orders"}
CLOSE_SETTLED = {"filled", "partial", "rejected", "dry-run"}  # closing rows whose fate is known


class Rejection(TypedDict):
    """One ``rejected`` row: the order ID and the venue's (or cancelctl's) reason."""

    id: str
    reason: str


class OpenOrder(TypedDict):
    """One open order as every venue client lists it (``orders``, verification).

    Amounts and prices are the venue's decimal strings (or numbers) as it
    sent them; ``amount`` is what is left open. Pacifica adds
    ``reduce_only``, ``stop`` and ``order_type``.
    """

    order_id: str
    symbol: str | None
    side: str | None
    price: object
    amount: object
    client_order_id: str | None
    reduce_only: NotRequired[bool]
    twap: NotRequired[bool]
    stop: NotRequired[bool]
    order_type: NotRequired[str | None]


@dataclass
class ProfileResult:
    """One profile's outcome for one action (``cancel_all``, ``cancel_order``, ...)."""

    profile: str
    venue: str
    action: str
    cancelled: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    cancelled_count: int | None = None
    remaining: list[str] | None = None
    error: CancelctlError | None = None
    verify_error: CancelctlError | None = None  # the book could not be read after cancelling
    orders: list[OpenOrder] | None = None  # `orders` command: the open orders
    twap: list[str] = field(
        default_factory=list
    )  # IDs in this result that are TWAP orders (Pacifica; cancel_twap_order)
    positions: list[dict[str, Any]] | None = None  # the open positions after the run; None: not read
    positions_error: CancelctlError | None = None  # the positions could not be read (said, not hidden)
    closed: list[dict[str, Any]] | None = None  # --close-positions: one row per closing order
    close_error: CancelctlError | None = None  # a closing order refused for the credentials or the configuration
    closing: bool = False  # closing was asked for: positions left open count in the exit code
    elapsed_ms: float = 0.0
    dry_run: bool = False
    requests: list[dict[str, Any]] | None = None
    looked_up: list[dict[str, Any]] | None = None  # Pacifica cancel order without --symbol: {"id", "symbol", "stop"}
    would_cancel: list[OpenOrder] | None = None  # --dry-run: the open orders the real run would cancel (book read)
    preview_error: CancelctlError | None = None  # --dry-run: the book could not be read (the requests still shown)
    details: dict[str, OpenOrder] = field(default_factory=dict)  # order_id -> what cancelctl saw of the order
    cancelled_orders: list[OpenOrder] | None = None  # Pacifica cancel_all: the counted orders, named by the history
    #: a doubt no read of the book can clear (a symbol that could not be checked against the venue's markets and
    #: that the cancel-all found nothing under): verification seeing none open in scope does not make it done
    unsettled: CancelctlError | None = None
    rounds: Any = None  # verification's state between reads (cancelctl.verify.Rounds), for a run cut short
    scoped: bool = False  # verification covered part of the book only (asked IDs, symbols, TWAP orders left out)

    def reject(self, order_id: str, reason: str) -> None:
        """Record ``order_id`` as rejected; the reason (often the venue's text) is made one bounded, printable line."""
        from cancelctl.text import one_line

        self.rejected.append({"id": str(order_id), "reason": one_line(reason)})

    @property
    def exit_code(self) -> int:
        """This profile's exit code (contract, "Exit codes").

        With ``--close-positions`` (``closing``): 0 only when the book was
        seen with no open order (or the action cancels none:
        ``close-positions``) and the read back showed no position; a
        closing order or a read refused for the credentials or the
        configuration is 4 or 78, as on the cancel path; a read that
        failed, or a closing order of unknown fate, is 5; a position left
        is 3. A dry run is 0 only when it could read what it would close.
        """
        if self.error is not None and self.error.exit_code in (ExitCode.USAGE, ExitCode.CONFIG, ExitCode.INTERNAL):
            return self.error.exit_code
        if self.dry_run:
            return self._refused() or (ExitCode.UNKNOWN if self.closing and self.positions_error else ExitCode.OK)
        code = self._orders_code()
        if not self.closing or code not in (ExitCode.OK, ExitCode.PARTIAL):
            return code
        # --close-positions: 0 only with no open order and no position left, both seen
        refused = self._refused()
        if refused:
            return refused
        if self.positions_error is not None or any(c.get("status") not in CLOSE_SETTLED for c in self.closed or ()):
            return ExitCode.UNKNOWN
        if self.positions:
            return ExitCode.PARTIAL
        if self.action != "close_positions" and self.remaining is None:
            return ExitCode.UNKNOWN  # the book was not read: no open order is not seen
        return code

    def _refused(self) -> int:
        """4 or 78 when closing was refused for the credentials or the configuration (a closing order or a read)."""
        for e in (self.close_error, self.positions_error):
            if e is not None and e.exit_code in (ExitCode.AUTH, ExitCode.CONFIG):
                return e.exit_code
        return 0

    def _orders_code(self) -> int:
        done = bool(self.cancelled) or bool(self.cancelled_count)
        if self.verify_error is not None:
            return ExitCode.UNKNOWN
        if self.remaining == [] and self.action in BOOK_VERIFIED_ACTIONS and self.unsettled is None:
            return ExitCode.OK  # verified: no open orders in the whole scope
        if self.unknown:
            return ExitCode.UNKNOWN
        if self.remaining:
            return ExitCode.PARTIAL
        if self.error is not None:
            return ExitCode.PARTIAL if done else self.error.exit_code
        if self.rejected:
            return ExitCode.PARTIAL if done or self.action in WIDE_ACTIONS else ExitCode.FAILED
        return ExitCode.OK

    @property
    def status(self) -> str:
        if self.dry_run and self.exit_code == ExitCode.OK:
            return "skipped"
        names: dict[int, str] = {ExitCode.OK: "ok", ExitCode.PARTIAL: "partial", ExitCode.UNKNOWN: "unknown"}
        return names.get(self.exit_code, "failed")

    def as_json(self) -> dict[str, Any]:
        count = self.cancelled_count if self.cancelled_count is not None else len(self.cancelled)
        doc = {
            "profile": self.profile,
            "venue": self.venue,
            "action": self.action,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "cancelled": list(self.cancelled),
            "rejected": list(self.rejected),
            "unknown": list(self.unknown),
            "cancelled_count": count,
            "remaining": self.remaining,
            "error": self.error.as_json() if self.error else None,
            "elapsed_ms": self.elapsed_ms,
        }
        if self.verify_error is not None:
            doc["verify_error"] = self.verify_error.as_json()
        if self.orders is not None:
            doc["orders"] = self.orders
        if self.twap:
            doc["twap"] = list(dict.fromkeys(self.twap))
        doc["positions"] = self.positions
        if self.positions_error is not None:
            doc["positions_error"] = self.positions_error.as_json()
        if self.close_error is not None:
            doc["close_error"] = self.close_error.as_json()
        if self.closed is not None:
            from cancelctl.positions import shown

            doc["closed"] = [shown(c) for c in self.closed]
        if self.requests is not None:
            doc["requests"] = self.requests
        if self.looked_up is not None:
            doc["looked_up"] = self.looked_up
        if self.cancelled_orders is not None:
            doc["cancelled_orders"] = self.cancelled_orders
        if self.would_cancel is not None:
            doc["would_cancel"] = self.would_cancel
        if self.preview_error is not None:
            doc["preview_error"] = self.preview_error.as_json()
        return doc


@dataclass
class Report:
    """A whole run: every profile's results, in the order the profiles were given."""

    results: list[ProfileResult]
    dry_run: bool = False
    error: CancelctlError | None = None  # a failure before any profile ran

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        return combine([r.exit_code for r in self.results])

    def as_json(self) -> dict[str, Any]:
        code = int(self.exit_code)
        doc = {
            "schema": SCHEMA,
            "ok": code == 0,
            "exit_code": code,
            "dry_run": self.dry_run,
            "results": [r.as_json() for r in self.results],
        }
        if self.error is not None:
            doc["error"] = self.error.as_json()
        return doc
