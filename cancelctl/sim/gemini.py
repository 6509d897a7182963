"""The Gemini side of the venue simulator: keys, sessions, sub-accounts, books.

It checks what Gemini checks (Gemini's REST API docs, https://docs.gemini.com/rest-api/:
"Private API invocation", "Master API keys", "Require Heartbeat", "Error
Codes"), written independently of :mod:`cancelctl.signing.gemini` so that a
signing bug on the client side cannot be mirrored here:

* the HMAC-SHA384 of the base64 payload, keyed with the key's secret;
* ``request`` equal to the path posted to (``EndpointMismatch``);
* nonces strictly increasing per key; whole numbers on counter
  (millisecond) keys; time-based keys within ±30 s, fractions allowed;
* master keys must name ``account``; account keys must not;
* cancels need the Trader role, ``/v1/orders`` Trader or Auditor;
* a "Require Heartbeat" key's session orders are cancelled after
  ``heartbeat_timeout`` s (30) without an authenticated call;
* a key with an IP allow-list (``SimKey.allowed_ips``) refuses other
  addresses with 403 ``ApiKeyIpFilteringFailure`` (the OpenAPI spec's
  ``components.responses.ApiKeyIpFilteringFailure`` in
  https://github.com/gemini/developer-platform ``specs/openapi/rest.yaml``);
  a group allow-list (``GeminiSim.group_allowed_ips``) with 403
  ``RemoteAddressForbidden`` (https://docs.gemini.com/error-codes);
* an unknown private path is 404 ``EndpointNotFound`` "API entry point not
  found" (``rest.yaml`` ``components.responses.NotFound``);
* rate limits (https://docs.gemini.com/rate-limit): ``rate_per_s``
  requests a second per key (default 10: the 600 a minute of private
  endpoints) plus a burst of ``burst`` (5); past that, 429 ``RateLimit``
  with ``Retry-After`` (the conformance fixture
  ``rate-limited-429-retry-after.json``). The venue queues the burst and
  answers it late; the simulator answers it at once. Set ``rate_per_s`` to
  5 (the recommended rate) to check a client keeps to it; None turns the
  limit off;
* ``MissingRole`` comes in either envelope (``role_envelope``: "result"
  or "error"; conformance fixtures ``missing-role-403-*-envelope.json``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

UI = "UI"


@dataclass
class SimKey:
    api_key: str
    secret: str
    account: str = "primary"  # the account an account key belongs to
    roles: frozenset = frozenset({"trader"})
    time_based: bool = False
    heartbeat: bool = False
    allowed_ips: frozenset | None = None  # the key's IP allow-list; None: any address
    last_nonce: Decimal | None = None
    last_seen: float | None = None

    @property
    def master(self) -> bool:
        return self.api_key.startswith("master-")


@dataclass
class SimOrder:
    order_id: int
    account: str
    session: str  # api key that placed it, or "UI"
    symbol: str = "btcusd"
    side: str = "buy"
    price: str = "50000.00"
    amount: str = "0.01"
    client_order_id: str | None = None
    live: bool = True
    refuse: int = 0  # cancel attempts to refuse before giving in

    def status(self) -> dict:
        ms = int(time.time() * 1000)
        return {
            "order_id": str(self.order_id),
            "id": str(self.order_id),
            "symbol": self.symbol,
            "exchange": "gemini",
            "avg_execution_price": "0.00",
            "side": self.side,
            "type": "exchange limit",
            "timestamp": str(ms // 1000),
            "timestampms": ms,
            "is_live": self.live,
            "is_cancelled": not self.live,
            "is_hidden": False,
            "was_forced": False,
            "executed_amount": "0",
            "remaining_amount": self.amount,
            "original_amount": self.amount,
            "price": self.price,
            "client_order_id": self.client_order_id,
            **({} if self.live else {"reason": "Requested"}),
        }


@dataclass
class SimPosition:
    """One open perpetual position; ``quantity`` is signed (negative: short), as Gemini's ``OpenPosition``."""

    account: str
    symbol: str
    quantity: Decimal
    average_cost: Decimal = Decimal("60000")
    mark_price: Decimal = Decimal("60000")

    def view(self) -> dict:
        """The OpenPosition object (https://github.com/gemini/developer-platform specs/openapi/rest.yaml)."""
        pnl = (self.mark_price - self.average_cost) * self.quantity
        return {
            "symbol": self.symbol,
            "instrument_type": "perp",
            "quantity": str(self.quantity),
            "notional_value": str(self.quantity * self.mark_price),
            "realised_pnl": "0",
            "unrealised_pnl": str(pnl),
            "average_cost": str(self.average_cost),
            "mark_price": str(self.mark_price),
        }


class WithHeaders(dict):
    """A JSON answer that also carries HTTP headers (``headers``)."""

    def __init__(self, body: dict, headers: dict[str, str]) -> None:
        super().__init__(body)
        self.headers = headers


@dataclass
class SimBook:
    """A symbol's top of book for closing orders.

    An IOC order fills up to ``depth`` at ``bid`` (sell) or ``ask`` (buy) when its limit crosses.

    ``status`` is the symbol's book status (``open``, ``closed``,
    ``cancel_only``, ...); ``price_tick`` is ``quote_increment`` and
    ``amount_step`` is ``tick_size`` of "Get Symbol Details"
    (https://github.com/gemini/developer-platform specs/openapi/rest.yaml,
    schema ``SymbolDetails``).
    """

    bid: Decimal = Decimal("60000")
    ask: Decimal = Decimal("60010")
    depth: Decimal = Decimal("1000")
    status: str = "open"
    price_tick: Decimal = Decimal("0.01")
    amount_step: Decimal = Decimal("0.0001")


def error(status: int, reason: str, message: str) -> tuple[int, dict]:
    return status, {"result": "error", "reason": reason, "message": message}


@dataclass
class GeminiSim:
    """State and request handling of the simulated Gemini."""

    accounts: set = field(default_factory=lambda: {"primary"})
    keys: dict = field(default_factory=dict)
    orders: dict = field(default_factory=dict)
    heartbeat_timeout: float = 30.0
    positions: dict = field(default_factory=dict)  # (account, symbol) -> SimPosition
    positions_envelope: bool = True  # {"openPositions": [...]} as the spec's schema; False: a bare array as its example
    group_allowed_ips: frozenset | None = None  # the account group's IP allow-list; None: any address
    role_envelope: str = "result"  # MissingRole as {"result": "error", "reason"} or {"error": reason}
    rate_per_s: float | None = 10.0  # requests a second per key (600 a minute); None: no limit
    burst: int = 5
    rate_limited: int = 0  # how many requests got a 429
    _arrivals: dict = field(default_factory=dict)  # api key -> monotonic arrival times within the last second
    books: dict = field(default_factory=dict)  # symbol -> SimBook (a default book for any other symbol)
    new_orders: list = field(
        default_factory=list
    )  # every /v1/order/new that reached the book: payload and executed amount
    clock: Callable[[], float] = time.time  # the server's time, s (the time-based nonce window)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(330429000))

    def add_key(self, api_key: str, secret: str, **kw) -> SimKey:
        key = SimKey(api_key, secret, **kw)
        self.keys[api_key] = key
        self.accounts.add(key.account)
        return key

    def add_order(self, account: str = "primary", session: str = UI, **kw) -> int:
        self.accounts.add(account)
        order = SimOrder(next(self._ids), account, session, **kw)
        self.orders[order.order_id] = order
        return order.order_id

    def add_position(self, account: str, symbol: str, quantity: str, **kw) -> SimPosition:
        """Open (or replace) a perpetual position; ``quantity`` signed, negative for a short."""
        self.accounts.add(account)
        position = SimPosition(account, symbol, Decimal(quantity), **{k: Decimal(str(v)) for k, v in kw.items()})
        self.positions[(account, symbol)] = position
        return position

    def book(self, symbol: str) -> SimBook:
        return self.books.setdefault(symbol.lower(), SimBook())

    def public(self, path: str) -> tuple[int, object]:
        """Unauthenticated GETs: ``/v1/pubticker/{symbol}`` (``Ticker``), ``/v1/symbols/details/{symbol}``."""
        for prefix, view in (("/v1/pubticker/", self._ticker), ("/v1/symbols/details/", self._details)):
            if path.startswith(prefix) and len(path) > len(prefix):
                return 200, view(path[len(prefix) :])
        return 404, None

    def _ticker(self, symbol: str) -> dict:
        b = self.book(symbol)
        return {
            "bid": str(b.bid),
            "ask": str(b.ask),
            "last": str(b.bid),
            "volume": {"timestamp": int(self.clock() * 1000)},
        }

    def _details(self, symbol: str) -> dict:
        b = self.book(symbol)
        perp = symbol.lower().endswith("perp")
        return {
            "symbol": symbol.upper(),
            "base_currency": symbol[:3].upper(),
            "quote_currency": "GUSD" if perp else "USD",
            "tick_size": float(b.amount_step),  # a JSON number, as in the spec's examples
            "quote_increment": float(b.price_tick),
            "min_order_size": str(b.amount_step),
            "status": b.status,
            "wrap_enabled": False,
            "product_type": "swap" if perp else "spot",
            "contract_type": "linear" if perp else "vanilla",
            "contract_price_currency": "GUSD" if perp else "USD",
        }

    def open_positions(self, account: str | None = None) -> list[SimPosition]:
        return [p for p in self.positions.values() if p.quantity != 0 and (account is None or p.account == account)]

    def open_orders(self, account: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.live and (account is None or o.account == account)]

    def expire_heartbeats(self, now: float | None = None) -> None:
        """Cancel the session orders of heartbeat keys silent for longer than the timeout."""
        now = time.monotonic() if now is None else now
        for key in self.keys.values():
            if key.heartbeat and key.last_seen is not None and now - key.last_seen > self.heartbeat_timeout:
                for o in self.orders.values():
                    if o.live and o.session == key.api_key:
                        o.live = False

    # -- request handling -------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], client_ip: str = "127.0.0.1") -> tuple[int, object]:
        """(HTTP status, JSON body) for a POST to ``path`` with ``headers`` (lower-case names) from ``client_ip``."""
        self.expire_heartbeats()
        api_key = headers.get("x-gemini-apikey")
        b64 = headers.get("x-gemini-payload")
        sig = headers.get("x-gemini-signature")
        if not api_key:
            return error(400, "MissingApikeyHeader", "Missing API key header")
        if not b64:
            return error(400, "MissingPayloadHeader", "Missing payload header")
        if not sig:
            return error(400, "MissingSignatureHeader", "Missing signature header")
        key = self.keys.get(api_key)
        if key is None:
            return error(400, "InvalidSignature", "InvalidSignature")
        limited = self._rate_limit(api_key)
        if limited is not None:
            return limited
        expected = hmac.new(key.secret.encode(), b64.encode(), hashlib.sha384).hexdigest()
        if not hmac.compare_digest(expected, sig):
            return error(400, "InvalidSignature", "InvalidSignature")
        try:
            payload = json.loads(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError):
            return error(400, "InvalidJson", "Could not parse payload")
        if not isinstance(payload, dict):
            return error(400, "InvalidJson", "Payload is not a JSON object")
        if payload.get("request") != path:
            text = f"EndpointMismatch: payload request {payload.get('request')!r} != {path!r}"
            return error(400, "EndpointMismatch", text)
        try:
            nonce = Decimal(str(payload.get("nonce")))
            if not nonce.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            return error(400, "InvalidNonce", "Nonce is not a number")
        if not key.time_based and nonce != nonce.to_integral_value():
            # Only keys made with "Uses a time based nonce" take fractions (seconds with a
            # fraction: Gemini docs, Private API invocation); a counter key's nonce is a whole number.
            return error(400, "InvalidNonce", f"Nonce '{nonce}' is not an integer")
        if key.time_based and abs(nonce - Decimal(repr(self.clock()))) > 30:
            return error(400, "InvalidNonce", f"Nonce '{nonce}' is not within 30 seconds of server time")
        if key.last_nonce is not None and nonce <= key.last_nonce:
            return error(
                400, "InvalidNonce", f"Nonce '{nonce}' has not increased since your last call to the Gemini API."
            )
        if key.allowed_ips is not None and client_ip not in key.allowed_ips:
            return error(403, "ApiKeyIpFilteringFailure", "ApiKey fails IP Filtering Check for some accounts")
        if self.group_allowed_ips is not None and client_ip not in self.group_allowed_ips:
            return error(
                403,
                "RemoteAddressForbidden",
                "Request received from an IP address that is not whitelisted under the group.",
            )
        key.last_nonce = nonce
        key.last_seen = time.monotonic()
        if key.master:
            account = payload.get("account")
            if not account:
                return error(400, "MissingAccounts", "Master API keys must specify an account")
            if account not in self.accounts:
                return error(400, "InvalidAccountName", f"Account {account} does not exist")
        else:
            if "account" in payload:
                return error(400, "AccountsOnGroupOnlyApi", "The account parameter is only for master API keys")
            account = key.account
        route = {
            "/v1/order/cancel": self._cancel,
            "/v1/order/cancel/all": self._cancel_all,
            "/v1/order/cancel/session": self._cancel_session,
            "/v1/orders": self._orders,
            "/v1/heartbeat": self._heartbeat,
            "/v1/positions": self._positions,
            "/v1/order/new": self._new_order,
        }.get(path)
        if route is None:
            return error(404, "EndpointNotFound", "API entry point not found")
        needs = {
            "/v1/orders": {"trader", "auditor"},
            "/v1/positions": {"trader", "auditor"},
            "/v1/heartbeat": None,
        }.get(path, {"trader"})
        if needs and not (key.roles & needs):
            roles = ", ".join(sorted(needs))
            message = (
                "To access this endpoint, you need to log in to the website and go to the settings page "
                f"to assign one of these roles [{roles}] to API key {api_key}"
            )
            if self.role_envelope == "error":
                return 403, {"error": "MissingRole", "message": message}
            return error(403, "MissingRole", message)
        return route(key, account, payload)

    def _rate_limit(self, api_key: str) -> tuple[int, dict] | None:
        """429 when this request would be more than ``rate_per_s + burst`` in the last second on the key."""
        if self.rate_per_s is None:
            return None
        now = time.monotonic()
        seen = [t for t in self._arrivals.get(api_key, []) if now - t < 1.0]
        if len(seen) + 1 > self.rate_per_s + self.burst:
            self._arrivals[api_key] = seen
            self.rate_limited += 1
            wait = max(1, int(seen[0] + 1.0 - now + 0.999))
            return 429, WithHeaders(
                {"result": "error", "reason": "RateLimit", "message": "Rate limit exceeded"}, {"Retry-After": str(wait)}
            )
        self._arrivals[api_key] = [*seen, now]
        return None

    def _cancel_where(self, match) -> tuple[int, dict]:
        cancelled, rejects = [], []
        for o in self.orders.values():
            if o.live and match(o):
                if o.refuse > 0:
                    o.refuse -= 1
                    rejects.append(o.order_id)
                else:
                    o.live = False
                    cancelled.append(o.order_id)
        return 200, {"result": "ok", "details": {"cancelledOrders": cancelled, "cancelRejects": rejects}}

    def _cancel_all(self, key: SimKey, account: str, payload: dict):
        return self._cancel_where(lambda o: o.account == account)

    def _cancel_session(self, key: SimKey, account: str, payload: dict):
        return self._cancel_where(lambda o: o.account == account and o.session == key.api_key)

    def _cancel(self, key: SimKey, account: str, payload: dict):
        try:
            order_id = int(payload.get("order_id"))  # type: ignore[arg-type]  # None: TypeError, answered below
        except (TypeError, ValueError):
            return error(400, "InvalidOrderID", "order_id must be an integer")
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            return error(404, "OrderNotFound", f"Order {order_id} not found")
        if order.live and order.refuse > 0:
            order.refuse -= 1
            return error(400, "CancelRejected", f"Order {order_id} could not be cancelled now")
        order.live = False
        return 200, order.status()

    def _orders(self, key: SimKey, account: str, payload: dict):
        return 200, [o.status() for o in self.open_orders(account)]

    def _positions(self, key: SimKey, account: str, payload: dict):
        views = [p.view() for p in self.open_positions(account)]
        return 200, ({"openPositions": views} if self.positions_envelope else views)

    def _new_order(self, key: SimKey, account: str, payload: dict):
        """An ``exchange limit`` order with ``options: ["immediate-or-cancel"]``.

        It fills what crosses now and cancels the rest.

        REST has no market order and no reduce-only flag (spec
        ``/v1/order/new``): the simulator fills whatever is asked, so a
        closing order that is too large WOULD flip the position here, as it
        would on the venue. A book whose status is not open/limit_only
        cancels the order with reason ``MarketClosed``.
        """
        symbol, side, kind, options = (
            payload.get("symbol"),
            payload.get("side"),
            payload.get("type"),
            payload.get("options", []),
        )
        try:
            amount, price = Decimal(str(payload.get("amount"))), Decimal(str(payload.get("price")))
            if not (amount.is_finite() and price.is_finite()) or amount <= 0 or price <= 0:
                raise InvalidOperation
        except InvalidOperation:
            return error(400, "InvalidQuantity", "amount and price must be positive decimals")
        if not isinstance(symbol, str) or side not in ("buy", "sell") or kind != "exchange limit":
            return error(400, "InvalidOrderType", "symbol, side buy/sell and type 'exchange limit' are required")
        if (
            not isinstance(options, list)
            or len(options) > 1
            or any(o not in ("immediate-or-cancel", "maker-or-cancel", "fill-or-kill") for o in options)
        ):
            return error(400, "InvalidOrderType", "options must hold at most one supported option")
        book = self.book(symbol)
        if amount % book.amount_step or price % book.price_tick:
            return error(
                400,
                "InvalidPrice" if price % book.price_tick else "InvalidQuantity",
                f"price must be a multiple of {book.price_tick} and amount of {book.amount_step}",
            )
        executed = Decimal(0)
        reason = None
        if book.status not in ("open", "limit_only"):
            reason = "MarketClosed"
        elif (side == "sell" and price <= book.bid) or (side == "buy" and price >= book.ask):
            executed = min(amount, book.depth)
        ioc = "immediate-or-cancel" in options
        if executed < amount and reason is None:
            reason = "ImmediateOrCancelWouldPost" if ioc else None
        fill_price = book.bid if side == "sell" else book.ask
        if executed:
            position = self.positions.get((account, symbol)) or self.add_position(account, symbol, "0")
            position.quantity += executed if side == "buy" else -executed
        order = SimOrder(
            next(self._ids),
            account,
            key.api_key,
            symbol,
            side,
            str(price),
            str(amount - executed),
            payload.get("client_order_id"),
            live=not ioc and reason is None and executed < amount,
        )
        self.orders[order.order_id] = order
        self.new_orders.append(
            {
                **{k: v for k, v in payload.items() if k not in ("request", "nonce")},
                "executed": str(executed),
                "order_id": order.order_id,
            }
        )
        status = order.status()
        status.update(
            type="exchange limit",
            options=options,
            original_amount=str(amount),
            executed_amount=str(executed),
            remaining_amount=str(amount - executed),
            avg_execution_price=str(fill_price if executed else Decimal(0)),
            is_cancelled=reason is not None,
        )
        if reason is not None:
            status["reason"] = reason
        else:
            status.pop("reason", None)
        return 200, status

    def _heartbeat(self, key: SimKey, account: str, payload: dict):
        return 200, {"result": "ok"}

    def state(self) -> dict:
        return {
            "open_orders": {
                str(o.order_id): {"account": o.account, "session": o.session, "symbol": o.symbol}
                for o in self.open_orders()
            },
            "positions": [{"account": p.account, **p.view()} for p in self.open_positions()],
        }
