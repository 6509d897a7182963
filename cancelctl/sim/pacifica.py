"""The Pacifica side of the venue simulator: accounts, agent wallets, books.

It checks what Pacifica checks (Pacifica's API docs, https://docs.pacifica.fi/api-documentation/api:
"Signing", "Cancel order", "Cancel all orders", "Cancel stop order", "Batch
order", "Get open orders", "Error codes"), written independently of
:mod:`cancelctl.signing.pacifica` so that a signing bug on the client side
cannot be mirrored here:

* the server rebuilds the signed message from the body: every key except
  ``account``, ``agent_wallet``, ``signature``, ``timestamp`` and
  ``expiry_window`` is the payload, the operation type is the one the
  endpoint implies; keys sorted, compact JSON; Ed25519 with the signer's
  public key (``agent_wallet`` when present, else ``account``);
* the request's fields are read before its signature is checked: a body
  that is not the operation's shape is a 400 whatever it is signed with;
* expired (``now > timestamp + expiry_window``): 400 "Invalid message";
  no other bound is put on the window or on a timestamp ahead of the
  server's clock (the docs state none: Signing,
  https://docs.pacifica.fi/api-documentation/api/signing); wrong key or
  altered content: 400 "Verification failed"; undecodable key: 400
  "Invalid public key"; undecodable signature: 400 "Invalid signature"; an
  agent wallet not bound to the account: 400 "Unauthorized", or with
  ``unbound_agent_answer = "json"`` the JSON ``{"error": "Agent not
  authorized for account"}`` the venue also sends (all bare strings
  otherwise, as the venue sends them);
* business errors are 422 ``{"success": false, "data": null, "error":
  <message>, "code": <n>}``: an unknown ``order_id`` "Order not found for
  <account>: <id>" (code 6), an unknown ``client_order_id`` "Unused client
  order id: <id>" (code 37) (https://docs.pacifica.fi/api-documentation/api/error-codes);
* a batch takes ``Create``, ``CreateMarket``, ``Cancel`` and
  ``CancelStopOrder`` actions (Batch order,
  https://docs.pacifica.fi/api-documentation/api/rest-api/orders/batch-order,
  and its WebSocket twin); it is verified action by action; one bad
  signature refuses the whole batch; then the actions run in order and the
  answer has one result per action, a failed cancel saying "Failed to
  cancel order";
* TWAP orders are listed by ``GET /orders/twap?account=`` only (not by
  ``GET /orders``) and cancelled by ``POST /orders/twap/cancel``
  (``cancel_twap_order``; SDK ``rest/get_open_twap_order.py``,
  ``rest/cancel_twap_order.py``); ``cancel_all_orders`` leaves them
  running (the docs do not say it stops them);
* ``POST /account/api_keys`` (``list_api_keys``, a signed read: docs "API
  Config Keys", SDK ``rest/api_config_keys.py``) goes through the same checks
  as a cancel and answers the documented envelope around an empty list
  (the docs show no example of its answer);
* ``GET /orders/history?account=&limit=&cursor=`` (docs "Get order
  history", https://docs.pacifica.fi/api-documentation/api/rest-api/orders/get-order-history):
  one summarized entry per order, ``order_status`` "open" or (here)
  "cancelled", ``amount``, ``initial_price``, ``updated_at`` (ms, the
  server's clock), in ``{"success": true, "data": [...], "next_cursor",
  "has_more"}``; ``limit`` defaults to 100. The docs give no order of the
  entries: the simulator lists the most recently updated first, and a
  client must not rely on it;
* a GET with a body never reaches the API: the edge (CloudFront) answers
  403 with an HTML page (API FAQ "403 CloudFront",
  https://docs.pacifica.fi/api-documentation/api/api-faq/403-cloudfront).

Answers are a JSON-able object, ``bytes`` for a bare-string body (the
server sends those as text/plain), or :class:`Html` (text/html).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qs

PREFIX = "/api/v1"
NOT_SIGNED = ("account", "agent_wallet", "signature", "timestamp", "expiry_window")
OPERATIONS = {
    "/orders/create_market": "create_market_order",
    "/orders/cancel": "cancel_order",
    "/orders/stop/cancel": "cancel_stop_order",
    "/orders/cancel_all": "cancel_all_orders",
    "/orders/twap/cancel": "cancel_twap_order",  # SDK rest/cancel_twap_order.py
    "/account/api_keys": "list_api_keys",  # docs "API Config Keys", SDK rest/api_config_keys.py: a signed read
}
BATCH_LIMIT = 10
BATCH_ACTIONS = {"Cancel": "cancel_order", "CancelStopOrder": "cancel_stop_order", "Create": None, "CreateMarket": None}
CODE_UNKNOWN, CODE_ACCOUNT_NOT_FOUND, CODE_ORDER_NOT_FOUND, CODE_UNUSED_CLOID = 0, 1, 6, 37
FAILED_BATCH_CANCEL = "Failed to cancel order"


class Html(bytes):
    """An HTML answer body (the edge's error pages)."""


# CloudFront's page for a refused request (API FAQ "403 CloudFront").
EDGE_403 = Html(
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n'
    b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD>"
    b"<BODY><H1>403 ERROR</H1><H2>The request could not be satisfied.</H2>Bad request.<HR>"
    b"Generated by cloudfront (CloudFront)</BODY></HTML>"
)


def _b58decode(value: object) -> bytes | None:
    import base58

    if not isinstance(value, str) or not value:
        return None
    try:
        return base58.b58decode(value)
    except ValueError:
        return None


def solana_keypair(seed: bytes) -> tuple[str, str]:
    """(base58 64-byte secret key, base58 public key) for a 32-byte seed, as Phantom exports them."""
    import base58
    import nacl.signing

    key = nacl.signing.SigningKey(seed)
    public = bytes(key.verify_key)
    return base58.b58encode(seed + public).decode(), base58.b58encode(public).decode()


def _public_of(key: object) -> str:
    """The base58 public key of a SigningKey, a 32-byte seed, or a 64-byte secret key (bytes or base58)."""
    import base58
    import nacl.signing

    if isinstance(key, nacl.signing.SigningKey):
        return base58.b58encode(bytes(key.verify_key)).decode()
    raw = _b58decode(key) if isinstance(key, str) else bytes(key)  # type: ignore[call-overload]
    if raw is None or len(raw) not in (32, 64):
        raise ValueError("not a 32-byte seed or a 64-byte secret key")
    return base58.b58encode(bytes(nacl.signing.SigningKey(raw[:32]).verify_key)).decode()


@dataclass
class SimOrder:
    order_id: int
    account: str
    symbol: str = "BTC"
    side: str = "bid"
    price: str = "60000"
    amount: str = "0.01"
    reduce_only: bool = False
    stop: bool = False
    client_order_id: str | None = None
    live: bool = True
    refuse: int = 0  # cancel attempts to refuse before giving in
    created_at: int = 0
    updated_at: int = 0  # ms on the server's clock: when it was cancelled (0: as created)

    def history(self) -> dict:
        """This order's entry in ``GET /orders/history`` (docs "Get order history")."""
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "initial_price": self.price,
            "average_filled_price": "0",
            "amount": self.amount,
            "filled_amount": "0",
            "order_status": "open" if self.live else "cancelled",
            "order_type": "stop_limit" if self.stop else "limit",
            "stop_price": self.price if self.stop else None,
            "stop_parent_order_id": None,
            "reduce_only": self.reduce_only,
            "reason": None if self.live else "cancel",
            "created_at": self.created_at,
            "updated_at": self.updated_at or self.created_at,
        }

    def view(self) -> dict:
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "initial_amount": self.amount,
            "filled_amount": "0",
            "cancelled_amount": "0",
            "stop_price": self.price if self.stop else None,
            "order_type": "stop_limit" if self.stop else "limit",
            "stop_parent_order_id": None,
            "reduce_only": self.reduce_only,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class SimTwap:
    """One running TWAP order: market sub-orders over a duration (docs "TWAP", SDK ``rest/create_twap_order.py``)."""

    order_id: int
    account: str
    symbol: str = "BTC"
    side: str = "bid"
    amount: str = "1"
    filled: str = "0"
    reduce_only: bool = False
    client_order_id: str | None = None
    live: bool = True
    created_at: int = 0
    duration_s: int = 180

    def view(self) -> dict:
        """An entry of ``GET /orders/twap`` (https://docs.pacifica.fi/api-documentation/api/rest-api/twap/get-open-twap-orders)."""
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "initial_amount": self.amount,
            "filled_amount": self.filled,
            "reduce_only": self.reduce_only,
            "slippage_percent": "0.5",
            "planned_sub_order_amount": self.amount,
            "planned_sub_order_count": 1,
            "past_sub_order_count": 0,
            "total_filled_value": "0",
            "expiration": self.created_at + (self.duration_s + 30) * 1000,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class SimPosition:
    """One open position as docs.pacifica.fi "Get positions" shows it: ``side`` bid (long) or ask (short),
    ``amount`` > 0."""

    account: str
    symbol: str
    side: str
    amount: Decimal
    entry_price: Decimal = Decimal("60000")
    created_at: int = 0

    def view(self) -> dict:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "amount": str(self.amount),
            "entry_price": str(self.entry_price),
            "margin": "0",
            "funding": "0",
            "isolated": False,
            "liquidation_price": None,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class SimMarket:
    """One market for closing orders: a market order fills up to ``depth`` at ``bid`` (ask side) or ``ask`` (bid side),
    only if that price is within ``slippage_percent`` of ``mark``; ``lot_size`` and ``tick_size`` as "Get market info"
    (https://docs.pacifica.fi/api-documentation/api/rest-api/markets/get-market-info) lists them.
    ``halted`` refuses every order (the venue's wording for that is not documented;
    the simulator's is "Market is halted")."""

    mark: Decimal = Decimal("60000")
    bid: Decimal = Decimal("59995")
    ask: Decimal = Decimal("60005")
    depth: Decimal = Decimal("1000")
    lot_size: Decimal = Decimal("0.001")
    tick_size: Decimal = Decimal("0.01")
    halted: bool = False


def ok(data: object = None) -> tuple[int, dict]:
    return 200, {"success": True, "data": data, "error": None, "code": None}


def fail(status: int, message: str, code: int) -> tuple[int, dict]:
    return status, {"success": False, "data": None, "error": message, "code": code}


def bare(message: str) -> tuple[int, bytes]:
    return 400, message.encode()


class Refused(Exception):
    """A request refused before it is run: (status, answer)."""

    def __init__(self, status: int, answer: object) -> None:
        super().__init__(status)
        self.status, self.answer = status, answer


@dataclass
class PacificaSim:
    """State and request handling of the simulated Pacifica.

    ``clock`` gives the server's time in seconds (tests move it);
    ``cancel_all_includes_stops`` decides whether ``cancel_all_orders``
    also cancels stop orders (the docs do not say; the default is yes).
    """

    accounts: set = field(default_factory=set)
    agents: dict = field(default_factory=dict)  # agent public key -> account public key
    orders: dict = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    cancel_all_includes_stops: bool = True
    positions: dict = field(default_factory=dict)  # (account, symbol) -> SimPosition
    twaps: dict = field(default_factory=dict)  # order_id -> SimTwap
    unbound_agent_answer: str = "bare"
    markets: dict = field(default_factory=lambda: {s: SimMarket() for s in ("BTC", "ETH", "SOL", "kBONK")})
    market_orders: list = field(
        default_factory=list
    )  # every create_market_order that was run: payload and filled amount
    _ids: itertools.count = field(default_factory=lambda: itertools.count(51458))

    # -- set-up helpers (tests, demo) ---------------------------------------

    def add_account(self, private_key_or_signing_key: object) -> str:
        """Register the account of a key (SigningKey, seed, or secret key); its base58 public key."""
        account = _public_of(private_key_or_signing_key)
        self.accounts.add(account)
        return account

    def bind_agent(self, account_pubkey: str, agent_pubkey: str) -> None:
        """Let ``agent_pubkey`` sign for ``account_pubkey`` (Pacifica "API agent keys")."""
        self.accounts.add(account_pubkey)
        self.agents[agent_pubkey] = account_pubkey

    def add_twap(
        self,
        account: str,
        symbol: str = "BTC",
        *,
        side: str = "bid",
        amount: str = "1",
        reduce_only: bool = False,
        client_order_id: str | None = None,
    ) -> int:
        """Start a TWAP order on ``account``; its ``order_id``. ``cancel_all_orders`` leaves it running."""
        self.accounts.add(account)
        twap = SimTwap(
            next(self._ids),
            account,
            symbol,
            side,
            amount,
            reduce_only=reduce_only,
            client_order_id=client_order_id,
            created_at=int(self.clock() * 1000),
        )
        self.twaps[twap.order_id] = twap
        return twap.order_id

    def open_twaps(self, account: str | None = None) -> list[SimTwap]:
        return [t for t in self.twaps.values() if t.live and (account is None or t.account == account)]

    def add_order(
        self,
        account: str,
        symbol: str = "BTC",
        *,
        side: str = "bid",
        price: str = "60000",
        amount: str = "0.01",
        reduce_only: bool = False,
        stop: bool = False,
        client_order_id: str | None = None,
        refuse: int = 0,
        order_id: int | None = None,
    ) -> int:
        """Rest an order on ``account``'s book; its ``order_id`` (the next free one unless given)."""
        self.accounts.add(account)
        order = SimOrder(
            next(self._ids) if order_id is None else order_id,
            account,
            symbol,
            side,
            price,
            amount,
            reduce_only,
            stop,
            client_order_id,
            refuse=refuse,
            created_at=int(self.clock() * 1000),
        )
        self.orders[order.order_id] = order
        return order.order_id

    def add_position(
        self, account: str, symbol: str, side: str, amount: str, entry_price: str = "60000"
    ) -> SimPosition:
        """Open (or replace) a position: ``side`` "bid" (long) or "ask" (short)."""
        self.accounts.add(account)
        position = SimPosition(account, symbol, side, Decimal(amount), Decimal(entry_price), int(self.clock() * 1000))
        self.positions[(account, symbol)] = position
        return position

    def open_positions(self, account: str | None = None) -> list[SimPosition]:
        return [p for p in self.positions.values() if p.amount > 0 and (account is None or p.account == account)]

    def open_orders(self, account: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.live and (account is None or o.account == account)]

    # -- request handling -------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        """(HTTP status, answer) for one request under ``/api/v1``."""
        route = path[len(PREFIX) :] if path.startswith(PREFIX) else path
        if method == "GET" and body:
            return 403, EDGE_403
        if method == "GET" and route == "/orders":
            account = (parse_qs(query).get("account") or [""])[0]
            if (raw := _b58decode(account)) is None or len(raw) != 32:
                return bare("Invalid public key")
            return ok([o.view() for o in self.open_orders(account)])
        if method == "GET" and route == "/orders/history":
            q = parse_qs(query)
            account = (q.get("account") or [""])[0]
            if (raw := _b58decode(account)) is None or len(raw) != 32:
                return bare("Invalid public key")
            try:
                limit = int((q.get("limit") or ["100"])[0])
                start = int((q.get("cursor") or ["0"])[0])
            except ValueError:
                return fail(400, "Invalid request parameters", 400)
            mine = sorted(
                (o for o in self.orders.values() if o.account == account),
                key=lambda o: (o.updated_at or o.created_at, o.order_id),
                reverse=True,
            )
            page = mine[start : start + max(1, limit)]
            more = start + len(page) < len(mine)
            return 200, {
                "success": True,
                "data": [o.history() for o in page],
                "next_cursor": str(start + len(page)) if more else None,
                "has_more": more,
            }
        if method == "GET" and route == "/orders/twap":
            account = (parse_qs(query).get("account") or [""])[0]
            if (raw := _b58decode(account)) is None or len(raw) != 32:
                return bare("Invalid public key")
            return ok([t.view() for t in self.open_twaps(account)])
        if method == "GET" and route == "/info":
            return ok(
                [
                    {
                        "symbol": sym,
                        "tick_size": str(m.tick_size),
                        "lot_size": str(m.lot_size),
                        "min_order_size": str(m.lot_size),
                        "max_leverage": 20,
                    }
                    for sym, m in self.markets.items()
                ]
            )
        if method == "GET" and route == "/positions":
            if body:
                return fail(400, "GET requests must not have a body", 400)
            account = (parse_qs(query).get("account") or [""])[0]
            if (raw := _b58decode(account)) is None or len(raw) != 32:
                return bare("Invalid public key")
            return ok([p.view() for p in self.open_positions(account)])
        if method != "POST" or (route not in OPERATIONS and route != "/orders/batch"):
            return 404, {"success": False, "data": None, "error": f"Not found: {method} {path}", "code": 404}
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return fail(400, "Invalid JSON body", 400)
        if not isinstance(data, dict):
            return fail(400, "Invalid JSON body", 400)
        try:
            if route == "/orders/batch":
                return self._batch(data)
            op = OPERATIONS[route]
            self.check_fields(data, op)
            account = self.verify(data, op)
        except Refused as r:
            return r.status, r.answer
        handler = {
            "cancel_order": self._cancel,
            "cancel_stop_order": self._cancel_stop,
            "cancel_all_orders": self._cancel_all,
            "cancel_twap_order": self._cancel_twap,
            "create_market_order": self._create_market,
            "list_api_keys": self._list_api_keys,
        }
        return handler[op](account, data)

    @staticmethod
    def check_fields(data: dict, op_type: str) -> None:
        """Refused (400) when the body is not the operation's shape; runs before the signature is checked."""
        if op_type in ("create_market_order", "list_api_keys"):
            return  # create: checked by _create_market, field by field; list_api_keys has no fields
        if op_type == "cancel_all_orders":
            every, exclude, symbol = data.get("all_symbols"), data.get("exclude_reduce_only"), data.get("symbol")
            if (
                not isinstance(every, bool)
                or not isinstance(exclude, bool)
                or (not every and not isinstance(symbol, str))
            ):
                raise Refused(
                    *fail(
                        400,
                        "Invalid cancel_all parameters: all_symbols and exclude_reduce_only are required, symbol "
                        "when all_symbols is false",
                        400,
                    )
                )
            return
        symbol, order_id, cloid = data.get("symbol"), data.get("order_id"), data.get("client_order_id")
        if not isinstance(symbol, str) or (order_id is None) == (cloid is None):
            raise Refused(*fail(400, "Invalid cancel parameters: symbol and one of order_id or client_order_id", 400))
        if order_id is not None and (not isinstance(order_id, int) or isinstance(order_id, bool)):
            raise Refused(*fail(400, "Invalid order_id", 400))

    def verify(self, data: dict, op_type: str) -> str:
        """The account a signed body acts for; raises Refused as the venue would."""
        account, agent = data.get("account"), data.get("agent_wallet")
        timestamp, window = data.get("timestamp"), data.get("expiry_window", 30_000)
        for value in (account, agent) if agent is not None else (account,):
            raw = _b58decode(value)
            if raw is None or len(raw) != 32:
                raise Refused(*bare("Invalid public key"))
        signature = _b58decode(data.get("signature"))
        if signature is None or len(signature) != 64:
            raise Refused(*bare("Invalid signature"))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (timestamp, window)) or window <= 0:
            raise Refused(*bare("Invalid message"))
        now = int(self.clock() * 1000)
        if now > timestamp + window:
            raise Refused(*bare("Invalid message"))
        payload = {k: v for k, v in data.items() if k not in NOT_SIGNED}
        message = json.dumps(
            {"timestamp": timestamp, "expiry_window": window, "type": op_type, "data": payload},
            sort_keys=True,
            separators=(",", ":"),
        )
        import nacl.exceptions
        import nacl.signing

        signer = agent if agent is not None else account
        try:
            nacl.signing.VerifyKey(_b58decode(signer)).verify(message.encode("utf-8"), signature)  # type: ignore[arg-type]
        except nacl.exceptions.BadSignatureError:
            raise Refused(*bare("Verification failed")) from None
        if agent is not None and self.agents.get(agent) != account:
            if self.unbound_agent_answer == "json":
                raise Refused(400, {"error": "Agent not authorized for account"})
            raise Refused(*bare("Unauthorized"))
        if account not in self.accounts:
            raise Refused(*fail(422, f"Account not found: {account}", CODE_ACCOUNT_NOT_FOUND))
        return str(account)

    # -- operations ---------------------------------------------------------

    def _list_api_keys(self, account: str, data: dict) -> tuple[int, dict]:
        """The account's API config keys: none are made here. The docs show the answer to ``create`` only, so
        the list is the documented envelope around an empty list; a signed read, answered only after
        :meth:`verify` accepted the signer and found the account."""
        return ok([])

    def _cancel_twap(self, account: str, data: dict) -> tuple[int, dict]:
        symbol, order_id, cloid = data.get("symbol"), data.get("order_id"), data.get("client_order_id")
        for t in self.twaps.values():
            if (
                t.live
                and t.account == account
                and t.symbol == symbol
                and (t.order_id == order_id if order_id is not None else t.client_order_id == cloid)
            ):
                t.live = False
                return ok()
        if order_id is None:
            return fail(422, f"Unused client order id: {cloid}", CODE_UNUSED_CLOID)
        return fail(422, f"Order not found for {account}: {order_id}", CODE_ORDER_NOT_FOUND)

    def _find(self, account: str, data: dict, *, stop: bool) -> SimOrder | tuple[int, dict]:
        symbol, order_id, cloid = data.get("symbol"), data.get("order_id"), data.get("client_order_id")
        for o in self.orders.values():
            if (
                o.live
                and o.account == account
                and o.symbol == symbol
                and o.stop == stop
                and (o.order_id == order_id if order_id is not None else o.client_order_id == cloid)
            ):
                return o
        if order_id is None:
            return fail(422, f"Unused client order id: {cloid}", CODE_UNUSED_CLOID)
        return fail(422, f"Order not found for {account}: {order_id}", CODE_ORDER_NOT_FOUND)

    def _cancel_one(self, account: str, data: dict, *, stop: bool) -> tuple[int, dict]:
        found = self._find(account, data, stop=stop)
        if not isinstance(found, SimOrder):
            return found
        if found.refuse > 0:
            found.refuse -= 1
            return fail(422, f"Cancel rejected for {account}: {found.order_id}", CODE_UNKNOWN)
        found.live = False
        found.updated_at = int(self.clock() * 1000)
        return ok()

    def _cancel(self, account: str, data: dict) -> tuple[int, dict]:
        return self._cancel_one(account, data, stop=False)

    def _cancel_stop(self, account: str, data: dict) -> tuple[int, dict]:
        return self._cancel_one(account, data, stop=True)

    def _cancel_all(self, account: str, data: dict) -> tuple[int, dict]:
        every, exclude, symbol = data.get("all_symbols"), data.get("exclude_reduce_only"), data.get("symbol")
        count = 0
        for o in self.orders.values():
            if not o.live or o.account != account or (not every and o.symbol != symbol):
                continue
            if (exclude and o.reduce_only) or (o.stop and not self.cancel_all_includes_stops):
                continue
            if o.refuse > 0:
                o.refuse -= 1
                continue
            o.live = False
            o.updated_at = int(self.clock() * 1000)
            count += 1
        return ok({"cancelled_count": count})

    def _create_market(self, account: str, data: dict) -> tuple[int, dict]:
        """``create_market_order`` (SDK ``rest/create_market_order.py``).

        It fills at once against the market's price and depth.

        A reduce-only order that would grow the position or flip it (larger
        than the position) is refused, as Pacifica refuses reduce-only
        orders that do not reduce. The venue's 200 ms delay is not simulated.
        """
        symbol, side, reduce_only = data.get("symbol"), data.get("side"), data.get("reduce_only")
        market = self.markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            return fail(422, f"Market not found: {symbol}", 400)
        try:
            amount, slippage = Decimal(str(data.get("amount"))), Decimal(str(data.get("slippage_percent")))
            if (
                not (amount.is_finite() and slippage.is_finite())
                or amount <= 0
                or slippage < 0
                or not isinstance(data.get("amount"), str)
            ):
                raise ArithmeticError
        except ArithmeticError:
            return fail(400, "Invalid order parameters: amount and slippage_percent are decimal strings", 400)
        if side not in ("bid", "ask") or not isinstance(reduce_only, bool):
            return fail(400, "Invalid order parameters: side bid/ask and reduce_only are required", 400)
        if market.halted:
            return fail(422, f"Market is halted: {symbol}", 400)
        if amount % market.lot_size:
            return fail(422, f"Amount {amount} is not a multiple of lot size {market.lot_size}", 400)
        position = self.positions.get((account, symbol))
        if reduce_only and (
            position is None or position.amount <= 0 or position.side == side or amount > position.amount
        ):
            return fail(422, "Reduce only order would increase position", 400)
        price = market.bid if side == "ask" else market.ask
        bound = market.mark * (1 - slippage / 100) if side == "ask" else market.mark * (1 + slippage / 100)
        within = price >= bound if side == "ask" else price <= bound
        filled = min(amount, market.depth) if within else Decimal(0)
        if filled:
            if position is None:
                position = self.add_position(account, str(symbol), side, "0", str(price))
            if position.side == side or position.amount == 0:
                position.side, position.amount = side, position.amount + filled
            elif filled <= position.amount:
                position.amount -= filled
            else:  # only without reduce_only
                position.side, position.amount = side, filled - position.amount
        order_id = next(self._ids)
        self.market_orders.append(
            {**{k: v for k, v in data.items() if k not in NOT_SIGNED}, "filled": str(filled), "order_id": order_id}
        )
        return ok({"order_id": order_id})

    def _batch(self, data: dict) -> tuple[int, dict]:
        actions = data.get("actions")
        if not isinstance(actions, list) or not 1 <= len(actions) <= BATCH_LIMIT:
            return fail(400, "Invalid batch operation parameters", 400)
        checked: list[tuple[str | None, str | None, dict]] = []
        for action in actions:
            if (
                not isinstance(action, dict)
                or action.get("type") not in BATCH_ACTIONS
                or not isinstance(action.get("data"), dict)
            ):
                return fail(400, "Invalid batch operation parameters", 400)
            op = BATCH_ACTIONS[action["type"]]
            if op is None:  # Create, CreateMarket: accepted, not simulated
                checked.append((None, None, action["data"]))
                continue
            self.check_fields(action["data"], op)  # Refused -> whole batch
            checked.append((op, self.verify(action["data"], op), action["data"]))  # Refused -> whole batch
        results = []
        for op, account, body in checked:
            if op is None:
                results.append({"success": False, "order_id": None, "error": "Create is not simulated"})
                continue
            status, answer = self._cancel_one(account, body, stop=op == "cancel_stop_order")  # type: ignore[arg-type]
            if status == 200:
                results.append({"success": True, "order_id": body.get("order_id"), "error": None})
            else:
                results.append(
                    {
                        "success": False,
                        "order_id": body.get("order_id"),
                        "error": FAILED_BATCH_CANCEL,
                        "code": answer["code"],
                    }
                )
        return ok({"results": results})

    def state(self) -> dict:
        return {
            "open_orders": {
                str(o.order_id): {
                    "account": o.account,
                    "symbol": o.symbol,
                    "reduce_only": o.reduce_only,
                    "stop": o.stop,
                    "client_order_id": o.client_order_id,
                }
                for o in self.open_orders()
            },
            "positions": [{"account": p.account, **p.view()} for p in self.open_positions()],
            "twaps": {str(t.order_id): {"account": t.account, "symbol": t.symbol} for t in self.open_twaps()},
            "accounts": sorted(self.accounts),
            "agents": dict(self.agents),
        }
