"""The Pacifica side of the venue simulator: accounts, agent wallets, books.

It checks what Pacifica checks (``shared/spec/pacifica.md``; docs.pacifica.fi
"Signing", "Cancel order", "Cancel all orders", "Cancel stop order", "Batch
order", "Get open orders", "Error codes"), written independently of
:mod:`cancelctl.signing.pacifica` so that a signing bug on the client side
cannot be mirrored here:

* the server rebuilds the signed message from the body: every key except
  ``account``, ``agent_wallet``, ``signature``, ``timestamp`` and
  ``expiry_window`` is the payload, the operation type is the one the
  endpoint implies; keys sorted, compact JSON; Ed25519 with the signer's
  public key (``agent_wallet`` when present, else ``account``);
* expired (``now > timestamp + expiry_window``) or too far in the future:
  400 "Invalid message"; wrong key or altered content: 400 "Verification
  failed"; undecodable key: 400 "Invalid public key"; undecodable
  signature: 400 "Invalid signature"; an agent wallet not bound to the
  account: 400 "Unauthorized" (all bare strings, as the venue sends them);
* business errors are 422 ``{"success": false, "data": null, "error":
  <message>, "code": <n>}``;
* a batch is verified action by action; one bad signature refuses the
  whole batch; then the actions run in order and the answer has one result
  per action.

Answers are a JSON-able object, or ``bytes`` for a bare-string body (the
server sends those as text/plain).
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
    "/orders/cancel": "cancel_order",
    "/orders/stop/cancel": "cancel_stop_order",
    "/orders/cancel_all": "cancel_all_orders",
}
BATCH_LIMIT = 10
FUTURE_TOLERANCE_MS = 10_000
MAX_EXPIRY_WINDOW_MS = 60_000
CODE_UNKNOWN, CODE_ACCOUNT_NOT_FOUND, CODE_ORDER_NOT_FOUND = 0, 1, 6


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
    raw = _b58decode(key) if isinstance(key, str) else bytes(key)
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
class SimPosition:
    """One open position as docs.pacifica.fi "Get positions" shows it: ``side`` bid (long) or ask (short), ``amount`` > 0."""

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
            next(self._ids) if order_id is None else order_id, account, symbol, side, price, amount, reduce_only, stop, client_order_id,
            refuse=refuse, created_at=int(self.clock() * 1000),
        )
        self.orders[order.order_id] = order
        return order.order_id

    def add_position(self, account: str, symbol: str, side: str, amount: str, entry_price: str = "60000") -> SimPosition:
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
        route = path[len(PREFIX):] if path.startswith(PREFIX) else path
        if method == "GET" and route == "/orders":
            if body:
                return fail(400, "GET requests must not have a body", 400)
            account = (parse_qs(query).get("account") or [""])[0]
            if _b58decode(account) is None or len(_b58decode(account)) != 32:
                return bare("Invalid public key")
            return ok([o.view() for o in self.open_orders(account)])
        if method == "GET" and route == "/positions":
            if body:
                return fail(400, "GET requests must not have a body", 400)
            account = (parse_qs(query).get("account") or [""])[0]
            if _b58decode(account) is None or len(_b58decode(account)) != 32:
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
            account = self.verify(data, op)
        except Refused as r:
            return r.status, r.answer
        return {"cancel_order": self._cancel, "cancel_stop_order": self._cancel_stop, "cancel_all_orders": self._cancel_all}[op](account, data)

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
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (timestamp, window)) or not 0 < window <= MAX_EXPIRY_WINDOW_MS:
            raise Refused(*bare("Invalid message"))
        now = int(self.clock() * 1000)
        if now > timestamp + window or timestamp > now + FUTURE_TOLERANCE_MS:
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
            nacl.signing.VerifyKey(_b58decode(signer)).verify(message.encode("utf-8"), signature)
        except nacl.exceptions.BadSignatureError:
            raise Refused(*bare("Verification failed")) from None
        if agent is not None and self.agents.get(agent) != account:
            raise Refused(*bare("Unauthorized"))
        if account not in self.accounts:
            raise Refused(*fail(422, f"Account not found: {account}", CODE_ACCOUNT_NOT_FOUND))
        return account

    # -- operations ---------------------------------------------------------

    def _find(self, account: str, data: dict, *, stop: bool) -> SimOrder | tuple[int, dict]:
        symbol, order_id, cloid = data.get("symbol"), data.get("order_id"), data.get("client_order_id")
        if not isinstance(symbol, str) or (order_id is None) == (cloid is None):
            return fail(400, "Invalid cancel parameters: symbol and one of order_id or client_order_id", 400)
        if order_id is not None and (not isinstance(order_id, int) or isinstance(order_id, bool)):
            return fail(400, "Invalid order_id", 400)
        for o in self.orders.values():
            if (
                o.live
                and o.account == account
                and o.symbol == symbol
                and o.stop == stop
                and (o.order_id == order_id if order_id is not None else o.client_order_id == cloid)
            ):
                return o
        return fail(422, f"Order not found for {account}: {order_id if order_id is not None else cloid}", CODE_ORDER_NOT_FOUND)

    def _cancel_one(self, account: str, data: dict, *, stop: bool) -> tuple[int, dict]:
        found = self._find(account, data, stop=stop)
        if not isinstance(found, SimOrder):
            return found
        if found.refuse > 0:
            found.refuse -= 1
            return fail(422, f"Cancel rejected for {account}: {found.order_id}", CODE_UNKNOWN)
        found.live = False
        return ok()

    def _cancel(self, account: str, data: dict) -> tuple[int, dict]:
        return self._cancel_one(account, data, stop=False)

    def _cancel_stop(self, account: str, data: dict) -> tuple[int, dict]:
        return self._cancel_one(account, data, stop=True)

    def _cancel_all(self, account: str, data: dict) -> tuple[int, dict]:
        every, exclude, symbol = data.get("all_symbols"), data.get("exclude_reduce_only"), data.get("symbol")
        if not isinstance(every, bool) or not isinstance(exclude, bool) or (not every and not isinstance(symbol, str)):
            return fail(400, "Invalid cancel_all parameters: all_symbols and exclude_reduce_only are required, symbol when all_symbols is false", 400)
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
            count += 1
        return ok({"cancelled_count": count})

    def _batch(self, data: dict) -> tuple[int, dict]:
        actions = data.get("actions")
        if not isinstance(actions, list) or not 1 <= len(actions) <= BATCH_LIMIT:
            return fail(400, "Invalid batch operation parameters", 400)
        checked = []
        for action in actions:
            if not isinstance(action, dict) or action.get("type") not in ("Cancel", "Create") or not isinstance(action.get("data"), dict):
                return fail(400, "Invalid batch operation parameters", 400)
            if action["type"] == "Create":
                checked.append((None, action["data"]))
                continue
            checked.append((self.verify(action["data"], "cancel_order"), action["data"]))  # Refused -> whole batch
        results = []
        for account, body in checked:
            if account is None:
                results.append({"success": False, "order_id": None, "error": "Create is not simulated"})
                continue
            status, answer = self._cancel(account, body)
            if status == 200:
                results.append({"success": True, "order_id": body.get("order_id"), "error": None})
            else:
                results.append({"success": False, "order_id": body.get("order_id"), "error": answer["error"], "code": answer["code"]})
        return ok({"results": results})

    def state(self) -> dict:
        return {
            "open_orders": {
                str(o.order_id): {"account": o.account, "symbol": o.symbol, "reduce_only": o.reduce_only, "stop": o.stop, "client_order_id": o.client_order_id}
                for o in self.open_orders()
            },
            "positions": [{"account": p.account, **p.view()} for p in self.open_positions()],
            "accounts": sorted(self.accounts),
            "agents": dict(self.agents),
        }
