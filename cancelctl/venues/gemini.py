"""Gemini: cancel one order, cancel all, cancel session, list orders, heartbeat.

Protocol facts (Gemini's REST API docs, https://docs.gemini.com/rest-api/: "Cancel
Order", "Cancel All Active Orders", "Cancel All Session Orders", "Get
Active Orders", "Heartbeat", "Master API keys", "Error Codes"):

* every endpoint is a signed POST (:mod:`cancelctl.signing.gemini`);
* master keys (``master-...``) must send ``account``; account keys must not;
* ``/v1/order/cancel/all`` and ``/cancel/session`` answer
  ``{"result":"ok","details":{"cancelledOrders":[ids],"cancelRejects":[ids]}}``;
* ``/v1/order/cancel`` answers the order status object, also for an order
  already cancelled; an unknown id is 404 ``OrderNotFound``;
* errors are ``{"result":"error","reason","message"}``, and some 403s use a
  second envelope ``{"error": "<Reason>", "message"}`` (conformance
  fixtures ``conformance/http/errors/missing-role-403-*.json`` in
  https://github.com/gemini/developer-platform): decide by the reason;
* the IP allow-list refusals ``ApiKeyIpFilteringFailure`` (OpenAPI
  ``specs/openapi/rest.yaml``, ``components.responses``) and
  ``RemoteAddressForbidden`` (https://docs.gemini.com/error-codes) mean
  no request with that key can pass from this address: the key is not
  used again in this process;
* ``EndpointNotFound`` ("API entry point not found", ``rest.yaml``
  ``components.responses.NotFound``) is a wrong URL, like a bare 404;
* private endpoints: 600 requests a minute, at most 5 a second
  recommended; past a burst of 5 the venue answers 429
  (https://docs.gemini.com/rate-limit): requests on one key, from every
  process, keep to ``RATE_PER_S`` a second after a burst of ``BURST``
  (:mod:`cancelctl.pacing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cancelctl import pacing
from cancelctl.config import Profile
from cancelctl.credentials import Credentials, set_command
from cancelctl.errors import AuthError, CancelctlError, ConfigError, NotSent, OutcomeUnknown, UsageProblem, VenueRefused
from cancelctl.nonce import NonceSequence
from cancelctl.results import OpenOrder, ProfileResult
from cancelctl.signing import PreparedRequest
from cancelctl.signing import gemini as signing
from cancelctl.transport import Answer, Deadline, send
from cancelctl.venues.base import (
    ClientBase,
    Reason,
    as_id,
    bad_order_ids,
    id_list,
    once_sent,
    parse_json,
    refusal,
    status_error,
)
from cancelctl.venues.info import GEMINI

if TYPE_CHECKING:
    from decimal import Decimal

    from cancelctl.transport import HTTPClient

CANCEL = "/v1/order/cancel"
CANCEL_ALL = "/v1/order/cancel/all"
CANCEL_SESSION = "/v1/order/cancel/session"
ORDERS = "/v1/orders"
HEARTBEAT = "/v1/heartbeat"
POSITIONS = "/v1/positions"
NEW_ORDER = "/v1/order/new"
TICKER = "/v1/pubticker/"
SYMBOL_DETAILS = "/v1/symbols/details/"
TRADING_STATUSES = {"open", "limit_only"}  # SymbolDetails.status values that take an IOC limit order
CLOSED_REASONS = {"MarketClosed", "TradingClosed"}  # Cancel Order, "All Cancellation Reasons": do not retry
INVALID_NONCE_RETRIES = 5
INVALID_NONCE_WAIT_S = 0.05  # first wait before resending after InvalidNonce; doubles each time
RATE_PER_S = 5  # https://docs.gemini.com/rate-limit: "recommend that you not exceed 5 requests per second"
BURST = 5  # the same page: "a burst rate of five additional requests"
# So N order IDs on a quiet key take about max(0, N - BURST) / RATE_PER_S seconds plus N round trips.

# The role each endpoint needs (https://docs.gemini.com/roles, "Endpoint summary"), named in MissingRole's hint.
ROLES = {
    CANCEL: "Trader",
    CANCEL_ALL: "Trader",
    CANCEL_SESSION: "Trader",
    ORDERS: "Trader or Auditor",
    HEARTBEAT: "Trader",
}


# Gemini "Error Codes" page: reason -> meaning for cancelctl. {profile} is
# filled in. Reasons not listed fall back to the HTTP status (see _interpret).
REASONS: dict[str, Reason] = {
    "InvalidSignature": Reason(AuthError, "check the key and secret: {fix}"),
    "InvalidApiKey": Reason(AuthError, "check the key: {fix}"),
    "MissingApikeyHeader": Reason(AuthError),
    "MissingRole": Reason(
        AuthError, "the API key lacks the {role} role this request needs: assign it to the key in Gemini's API settings"
    ),
    "ApiKeyIpFilteringFailure": Reason(
        AuthError,
        "the key's IP allow-list does not include this machine's address: add it to the key's allowed IPs in "
        "Gemini's API settings, or run from an allowed address",
    ),
    "RemoteAddressForbidden": Reason(
        AuthError,
        "this machine's address is not on the account's IP allow-list: add it in Gemini's API settings, or run "
        "from an allowed address",
    ),
    "EndpointNotFound": Reason(
        ConfigError, "not a Gemini API URL: check base_url and environment of profile {profile}"
    ),
    "MissingAccounts": Reason(ConfigError, 'a master key needs account = "<sub-account>" in profile {profile}'),
    "AccountsOnGroupOnlyApi": Reason(
        ConfigError, "an account key must not name an account: remove account from profile {profile}"
    ),
    "InvalidAccountName": Reason(ConfigError, "check account in profile {profile}"),
    "AccountNotFound": Reason(ConfigError, "check account in profile {profile}"),
    "Maintenance": Reason(NotSent, "the exchange is down for maintenance"),
    "RateLimited": Reason(NotSent),
    "RateLimit": Reason(NotSent),
    "System": Reason(OutcomeUnknown),
    "EndpointMismatch": Reason(VenueRefused),
    "InvalidJson": Reason(VenueRefused),
}


def validate_order_ids(ids: list[str]) -> list[str]:
    """Gemini order IDs are positive 64-bit integers; UsageProblem (exit 2) otherwise."""
    bad = bad_order_ids(ids)
    if bad:
        raise UsageProblem(f"not a Gemini order_id (a positive integer): {', '.join(map(repr, bad[:5]))}")
    if not ids:
        raise UsageProblem("give at least one order_id")
    return ids


def validate_cancel(
    ids: list[str], *, symbol: str | None = None, client_order_id: bool = False, stop: bool = False, twap: bool = False
) -> None:
    """``cancel order``'s arguments for Gemini, before anything is sent; UsageProblem (exit 2) otherwise."""
    if symbol or client_order_id or stop or twap:
        raise UsageProblem(
            "--symbol, --client-order-id, --stop and --twap are for Pacifica; Gemini cancels by order_id alone"
        )
    validate_order_ids(ids)


def key_kind(api_key: str) -> str | None:
    """``master`` or ``account`` from the API key's prefix (:attr:`GEMINI.key_prefixes
    <cancelctl.venues.info.VenueInfo.key_prefixes>`), else None."""
    for prefix, kind in GEMINI.key_prefixes.items():
        if api_key.startswith(prefix):
            return kind
    return None


def check_key_pair(api_key: str, api_secret: str, profile: str, *, fix: str) -> None:
    """ConfigError (78) when the API key and secret look swapped: the secret starts ``account-``/``master-`` and the
    key does not (https://docs.gemini.com/rest-api/#master-api names the prefixes).

    Checked before a key is stored and before any request is signed, so a secret pasted as the key is never sent
    as the ``X-GEMINI-APIKEY`` header. The message never quotes either value; ``fix`` says how to put them right.
    """
    if key_kind(api_key) is None and key_kind(api_secret) is not None:
        raise ConfigError(
            f"profile {profile!r}: the api_key and api_secret look swapped (the value given as api_secret starts "
            "account- or master-, as a Gemini API key does)",
            hint=fix,
        )


def check_secrets(values: dict[str, str], profile: Profile) -> None:
    """``keys set``: an API key and secret that look swapped are refused before they are stored (ConfigError, 78;
    see :func:`check_key_pair`)."""
    again = (
        f"cancelctl keys set {profile.name} and give the API key (account-... or master-...) first, then the secret"
    )
    check_key_pair(values["api_key"], values["api_secret"], profile.name, fix=f"nothing was stored; run again: {again}")


class InvalidNonce(NotSent):
    kind = "invalid_nonce"
    retry_after_floor = False  # our own wait for the clock (INVALID_NONCE_WAIT_S doubling), not the venue's


# Reasons after which no request with the same key can pass (from this address): the
# key is not used again in this run, by any of its profiles (every later request gets the same error unsent).
# Per run, not per process: a guard runs many commands, and the trader may have fixed the allow-list meanwhile.
KEY_BLOCKING = {"ApiKeyIpFilteringFailure", "RemoteAddressForbidden"}
_blocked: dict[tuple[str, float], CancelctlError] = {}  # (api key, the run's start) -> the error that blocked it


class Gemini(ClientBase):
    """One Gemini profile's client: signs, sends one request at a time per key, parses.

    ``state_dir`` holds the shared nonce counter. ``dry_run=True`` builds
    and signs requests and returns them in the result without sending.
    """

    venue = "gemini"

    def __init__(
        self, profile: Profile, creds: Credentials, *, state_dir: Path, deadline: Deadline, dry_run: bool = False
    ) -> None:
        self.profile = profile
        self.api_key = creds["api_key"]
        self._secret = creds["api_secret"]
        if key_kind(self.api_key) is None:
            from cancelctl.credentials import set_command

            src = [creds.sources.get(f, "keyring") for f in ("api_key", "api_secret")]
            fix = f"run: {set_command(profile.name)}" if "keyring" in src else f"swap ${src[0]} and ${src[1]}"
            check_key_pair(self.api_key, self._secret, profile.name, fix=f"the key goes in api_key: {fix}")
        self.deadline = deadline
        self._block_key = (self.api_key, deadline.start)  # every profile of one run shares its deadline's start
        self.dry_run = dry_run
        self.master = key_kind(self.api_key) == "master"
        if self.master and not profile.account:
            raise ConfigError(
                f"profile {profile.name!r} uses a master key but names no sub-account",
                hint=f'add account = "<sub-account>" to [profiles.{profile.name}] or run: '
                f"cancelctl profiles add {profile.name} --venue gemini --account NAME",
            )
        self.nonces = NonceSequence(state_dir, self.api_key, time_based=profile.nonce == "time-based")
        self._client = None
        self.prepared: list[dict[str, Any]] = []

    # -- plumbing ---------------------------------------------------------

    def _fields(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        fields = dict(extra or {})
        if self.master:
            fields["account"] = self.profile.account
        return fields

    def _sign(self, path: str, fields: dict[str, Any], nonce: str) -> PreparedRequest:
        return signing.sign(
            api_key=self.api_key,
            api_secret=self._secret,
            base_url=self.profile.base_url,
            path=path,
            nonce=nonce,
            fields=fields,
        )

    def _post(self, path: str, extra: dict[str, Any] | None = None, *, resend: bool = True) -> object:
        """Sign and send one request, retrying safely; the parsed success body.

        ``resend=False`` (an order): a request that may have been processed
        is never sent again; only one that surely did not go out is retried.
        """
        fields = self._fields(extra)
        if self.dry_run:
            self._dry(self._sign(path, fields, self.nonces.peek()))
            return None
        blocked = _blocked.get(self._block_key)
        if blocked is not None:
            raise blocked
        invalid_nonces = 0

        def attempt(client: HTTPClient) -> object:
            nonlocal invalid_nonces
            # The key's lock is held for this one request (sign -> answer), never
            # across the waits between retries: other profiles on the key get their turn.
            with self.nonces.turn(self.deadline.remaining()) as take:
                if (
                    self._block_key in _blocked
                ):  # refused for this address earlier in the run: nothing more goes out on the key
                    raise _blocked[self._block_key]
                pacing.take(
                    self.nonces.path.with_suffix(".pace"),
                    rate=RATE_PER_S,
                    burst=BURST,
                    remaining=self.deadline.remaining(),
                )
                answer = send(client, self._sign(path, fields, take()), self.deadline)
                self._note_blocking(answer, path)  # before the lock goes to another profile on this key
            try:
                return self._interpret(answer, path)
            except InvalidNonce as e:
                invalid_nonces += 1
                # Our counter is behind the key's (it was used elsewhere with
                # later nonces): resending at once gives nonces a few ms
                # larger, so wait for the clock, 0.05 s doubling (1.55 s in all).
                e.retry_after = INVALID_NONCE_WAIT_S * 2 ** (invalid_nonces - 1)
                if invalid_nonces > INVALID_NONCE_RETRIES:
                    hint = (
                        "time-based nonces must be within 30 s of Gemini's clock: sync this machine's clock "
                        f"(cancelctl doctor -p {self.profile.name} shows the skew)"
                        if self.profile.nonce == "time-based"
                        else 'the key may have used larger nonces elsewhere; for a time-based-nonce key set nonce = '
                        '"time-based"'
                    )
                    raise VenueRefused(
                        "Gemini kept refusing the nonce", venue_reason="InvalidNonce", hint=hint
                    ) from None
                raise

        if not resend:
            return once_sent(attempt, self._retrying)
        return self._retrying(attempt)

    def _note_blocking(self, answer: Answer, path: str) -> None:
        """Remember a refusal that holds for every request on this key from here (the IP allow-lists)."""
        if answer.status < 400:
            return
        try:
            self._interpret(answer, path)
        except AuthError as e:
            if e.venue_reason in KEY_BLOCKING:
                _blocked[self._block_key] = e
        except Exception:  # noqa: BLE001 - the answer is interpreted (and its errors raised) by the caller
            pass

    def _interpret(self, answer: Answer, path: str = "") -> object:
        """The success body, or the contract's error for Gemini's answer to a request on ``path``.

        Both error envelopes are read: ``{"result": "error", "reason",
        "message"}`` and ``{"error": "<Reason>", "message"}``.
        """
        body = parse_json(answer.body)
        if 200 <= answer.status < 300:
            if body is None:
                raise OutcomeUnknown(f"unreadable answer from Gemini (HTTP {answer.status})")
            return body
        reason = None
        if isinstance(body, dict) and body.get("result") == "error" and isinstance(body.get("reason"), str):
            reason = body["reason"]
        elif isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip():
            reason = body["error"].strip()
        if reason is not None and isinstance(body, dict):
            message = str(body.get("message") or reason)[:300]
            if reason == "InvalidNonce":
                raise InvalidNonce(f"Gemini: {message}", venue_reason=reason, retry_after=0.0)
            if reason == "OrderNotFound":
                raise VenueRefused(f"Gemini: {message}", venue_reason=reason, kind="order_not_found")
            entry = REASONS.get(reason)
            if entry is None and answer.status == 429:
                entry = Reason(NotSent)
            if entry is not None:
                role = ROLES.get(path, "Trader")
                hint = (
                    entry.hint.format(profile=self.profile.name, fix=set_command(self.profile.name), role=role)
                    if entry.hint
                    else None
                )
                error = entry.error(f"Gemini {reason}: {message}", venue_reason=reason, hint=hint)
                if isinstance(error, NotSent):
                    error.retry_after = answer.retry_after()
                raise error
            if answer.status >= 500:
                raise OutcomeUnknown(f"Gemini {reason}: {message} (HTTP {answer.status})", venue_reason=reason)
            raise VenueRefused(f"Gemini {reason}: {message}", venue_reason=reason)
        # No Gemini error body: a proxy, a load balancer, or the wrong URL.
        raise status_error(answer, "Gemini", plain=" without an answer body") or refusal(answer, "Gemini", self.profile)

    # -- operations -------------------------------------------------------

    def _cancel_wide(self, path: str, action: str) -> ProfileResult:
        result = self._result(action)
        try:
            body = self._post(path)
        except CancelctlError as e:
            result.error = e
            return result
        if body is None:  # dry run
            return result
        if not isinstance(body, dict) or body.get("result") != "ok" or not isinstance(body.get("details"), dict):
            result.error = OutcomeUnknown("Gemini answered in an unexpected shape")
            return result
        details = body["details"]
        cancelled = id_list(details.get("cancelledOrders"))  # required: it is the confirmation
        rejects = id_list(details.get("cancelRejects", []))
        if cancelled is None or rejects is None:
            # Anything outside the documented shape (a count, a string, junk
            # elements) says nothing reliable about which orders went: unknown.
            result.error = OutcomeUnknown("Gemini's cancel answer listed order IDs in an unexpected shape")
            return result
        result.cancelled = list(dict.fromkeys(cancelled))
        for i in dict.fromkeys(rejects):
            if i not in result.cancelled:
                result.reject(i, "cancel rejected by Gemini")
        return result

    def cancel_all(self) -> ProfileResult:
        """``POST /v1/order/cancel/all``: every order of the account, every session, UI included."""
        return self._cancel_wide(CANCEL_ALL, "cancel_all")

    def cancel_session(self) -> ProfileResult:
        """``POST /v1/order/cancel/session``: the orders of this API key's session only."""
        return self._cancel_wide(CANCEL_SESSION, "cancel_session")

    def cancel_orders(
        self, order_ids: list[str], *, symbol: str | None = None, client_order_id: bool = False, stop: bool = False,
        twap: bool = False,
    ) -> ProfileResult:
        """``POST /v1/order/cancel`` once per ID, in order; one row per ID.

        Gemini cancels by order_id alone: ``symbol`` is not needed (verification
        passes the one it listed); ``client_order_id`` and ``stop`` are
        Pacifica's and raise UsageProblem (exit 2).

        An ID gets ``cancelled`` (``is_cancelled`` true, ``is_live`` not true), ``rejected`` (with
        Gemini's reason) or ``unknown``. A credential or configuration error
        stops the run; the IDs not yet sent are reported as rejected "not sent".
        """
        if client_order_id or stop or twap:
            raise UsageProblem(
                "--client-order-id, --stop and --twap are for Pacifica; Gemini cancels by order_id alone"
            )
        order_ids = list(dict.fromkeys(order_ids))  # an ID given twice is sent once and gets one row
        result = self._result("cancel_order", order_ids)

        def record(chunk: list[str], body: object) -> None:
            self._cancel_row(result, chunk[0], body)

        self._in_chunks(
            result, list(order_ids), 1, lambda chunk: self._post(CANCEL, {"order_id": int(chunk[0])}), record
        )
        return result

    @staticmethod
    def _cancel_row(result: ProfileResult, order_id: str, body: object) -> None:
        """The row of one order from Gemini's order status answer: cancelled, closed (rejected) or unknown."""
        # The row is the asked ID's: an answer naming another order (or none)
        # says nothing about this one (spec: a 200 is not a success by itself).
        if not isinstance(body, dict) or as_id(body.get("order_id")) != order_id:
            result.unknown.append(order_id)
            result.error = result.error or OutcomeUnknown(
                f"Gemini's answer to the cancel of {order_id} did not name that order"
            )
        elif body.get("is_cancelled") is True and body.get("is_live") is not True:  # cancelled and live: no answer
            result.cancelled.append(order_id)
            result.details[order_id] = {  # the order status object's own fields (what was left is what was cancelled)
                "order_id": order_id,
                "symbol": body.get("symbol"),
                "side": body.get("side"),
                "price": body.get("price"),
                "amount": body.get("remaining_amount", body.get("original_amount")),
                "client_order_id": body.get("client_order_id"),
            }
        elif body.get("is_live") is False and body.get("is_cancelled") is False:
            reason = str(body["reason"]) if isinstance(body.get("reason"), str) else "filled"
            result.reject(order_id, f"order is closed, not cancelled ({reason[:100]})")
        else:
            result.unknown.append(order_id)
            result.error = result.error or OutcomeUnknown(
                f"Gemini's answer to the cancel of {order_id} did not say it was cancelled"
            )

    def open_orders(self) -> list[OpenOrder]:
        """``POST /v1/orders``: the open orders as dicts with string ``order_id``, ``symbol``, ``side``, ``price``,
        ``amount``.

        Raises the contract's errors; an unexpected shape is OutcomeUnknown.
        """
        body = self._post(ORDERS)
        if body is None:
            return []
        if not isinstance(body, list):
            raise OutcomeUnknown("Gemini's order list came in an unexpected shape")
        orders: list[OpenOrder] = []
        for o in body:
            order_id = as_id(o.get("order_id")) if isinstance(o, dict) else None
            if order_id is None:  # a book read in part is a book not read
                raise OutcomeUnknown("Gemini's order list had an entry that cannot be read (no usable order_id)")
            orders.append(
                {
                    "order_id": order_id,
                    "symbol": o.get("symbol"),
                    "side": o.get("side"),
                    "price": o.get("price"),
                    "amount": o.get("remaining_amount", o.get("original_amount")),
                    "client_order_id": o.get("client_order_id"),
                }
            )
        return orders

    def prove_key(self) -> str:
        """doctor's proof that Gemini accepts this key and secret, sending no order and no cancel: one signed
        ``POST /v1/orders`` (read-only; Trader or Auditor role; ``account`` for a master key), the request
        verification makes. Returns the detail line; raises the contract's errors (AuthError 4 for
        ``InvalidSignature``, ``MissingRole``, IP allow-list refusals; ConfigError 78 for a wrong sub-account...).
        Source: https://docs.gemini.com/rest-api/#get-active-orders
        """
        orders = self.open_orders()
        scope = f" of sub-account {self.profile.account}" if self.master else ""
        return (
            f"key accepted: signed POST /v1/orders answered ({len(orders)} open order(s){scope}); "
            "cancels also need the Trader role"
        )

    def heartbeat(self) -> None:
        """``POST /v1/heartbeat``: keeps a "Require Heartbeat" session alive; raises on failure."""
        body = self._post(HEARTBEAT)
        if body is not None and not (isinstance(body, dict) and body.get("result") == "ok"):
            raise OutcomeUnknown("Gemini's heartbeat answer came in an unexpected shape")

    def positions(self) -> list[dict[str, Any]]:
        """``POST /v1/positions`` (``account`` for master keys): the open perpetual positions.

        As rows of :mod:`cancelctl.positions`.

        Source: Gemini's OpenAPI spec, https://github.com/gemini/developer-platform
        ``specs/openapi/rest.yaml``, path ``/v1/positions`` (operation
        ``getOpenPositions``, Trader or Auditor role) and schema
        ``OpenPosition``: ``symbol``, ``instrument_type`` ("spot" or
        "perp"), ``quantity`` (decimal string, negative for shorts),
        ``notional_value``, ``realised_pnl``, ``unrealised_pnl``,
        ``average_cost``, ``mark_price``. The spec's schema wraps the list
        as ``{"openPositions": [...]}`` while its example is a bare array:
        both are read. ``instrument_type: "spot"`` entries are balances, not
        positions, and are left out; a spot-only account has none. An entry
        that cannot be read makes the whole read OutcomeUnknown (a list read
        in part is a list not read). Raises the contract's errors.
        """
        from cancelctl import positions as pos

        body = self._post(POSITIONS)
        if body is None:  # dry run
            return []
        items = body.get("openPositions") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise OutcomeUnknown("Gemini's position list came in an unexpected shape")
        rows = []
        for p in items:
            if not isinstance(p, dict) or not isinstance(p.get("symbol"), str):
                raise OutcomeUnknown("Gemini's position list has an entry that cannot be read")
            if p.get("instrument_type") == "spot":
                continue
            quantity = pos.decimal(p.get("quantity"), "quantity")
            if quantity == 0:
                continue
            rows.append(
                pos.row(
                    p["symbol"],
                    "short" if quantity < 0 else "long",
                    abs(quantity),
                    p.get("average_cost"),
                    p.get("mark_price"),
                    p.get("unrealised_pnl"),
                )
            )
        return rows

    # -- closing positions --------------------------------------------------

    def _public(self, path: str) -> object:
        """An unauthenticated GET (market data), retried safely; the parsed body.

        Sent in a dry run too (it changes nothing).
        """
        request = PreparedRequest(
            method="GET", url=f"{self.profile.base_url}{path}", headers={"Accept": "application/json"}
        )
        return self._retrying(lambda client: self._interpret(send(client, request, self.deadline), path))

    def _symbol(self, symbol: str) -> tuple[str, Decimal | None, Decimal | None]:
        """(status, price tick, amount step) from ``GET /v1/symbols/details/{symbol}``.

        Source: https://github.com/gemini/developer-platform
        ``specs/openapi/rest.yaml``, schema ``SymbolDetails``: ``status``
        (``open``, ``closed``, ``cancel_only``, ``post_only``,
        ``limit_only``), ``quote_increment`` (the price tick) and
        ``tick_size`` (the amount's decimal step), both JSON numbers.
        """
        from urllib.parse import quote

        from cancelctl import positions as pos

        body = self._public(SYMBOL_DETAILS + quote(symbol, safe=""))
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise OutcomeUnknown(f"Gemini's details of {symbol} came in an unexpected shape")
        tick = (
            pos.decimal(body["quote_increment"], "quote_increment") if body.get("quote_increment") is not None else None
        )
        step = pos.decimal(body["tick_size"], "tick_size") if body.get("tick_size") is not None else None
        return body["status"], tick, step

    def _reference(self, position: dict[str, Any], side: str) -> Decimal:
        """The price the slippage is counted from: the position's mark price, else the best bid (sell) or ask (buy).

        Ticker source: https://github.com/gemini/developer-platform
        ``specs/openapi/rest.yaml``, ``GET /v1/pubticker/{symbol}``, schema
        ``Ticker``: ``bid``, ``ask``, ``last`` (decimal strings).
        """
        from decimal import Decimal  # positions only: not imported before the first cancel
        from urllib.parse import quote

        from cancelctl import positions as pos

        if position.get("mark_price"):
            return Decimal(position["mark_price"])
        body = self._public(TICKER + quote(position["symbol"], safe=""))
        field_name = "bid" if side == "sell" else "ask"
        if not isinstance(body, dict) or body.get(field_name) is None:
            raise OutcomeUnknown(f"Gemini's ticker of {position['symbol']} has no {field_name}")
        return pos.decimal(body[field_name], field_name)

    def close_position(self, position: dict[str, Any], slippage: Decimal, row: dict[str, Any]) -> None:
        """Close one position with an immediate-or-cancel limit order, recording it in its ``closed`` ``row``.

        Never raises. (Rows: see :mod:`cancelctl.closing` and
        :func:`cancelctl.positions.close_row`.)

        ``POST /v1/order/new`` (https://github.com/gemini/developer-platform
        ``specs/openapi/rest.yaml``: ``client_order_id``, ``symbol``,
        ``amount``, ``price``, ``side``, ``type: "exchange limit"``,
        ``options: ["immediate-or-cancel"]``; the answer is the order
        status with ``order_id``, ``client_order_id``, ``executed_amount``,
        ``is_live``, ``is_cancelled`` and ``reason`` such as
        ``ImmediateOrCancelWouldPost`` or ``MarketClosed``). REST has no
        market order and no reduce-only flag, so the amount is the
        position's size from the fresh read rounded DOWN to the symbol's
        step (never more: a close cannot flip the position), and the price
        is ``slippage`` percent through the reference price, rounded to the
        tick towards it. A lost answer is not resent (the caller reads the
        positions again); a market that is not trading is given up. An
        answer that names another order, or an amount outside 0..size, is
        ``unknown``. An IOC order never rests: one the answer says is live
        (``is_live`` not false) is cancelled by its order_id at once
        (:meth:`_cancel_rested`) and never counted as filled.
        """
        from decimal import Decimal

        from cancelctl import positions as pos

        side = pos.closing_side(position["side"])
        try:
            status, tick, step = self._symbol(position["symbol"])
            if status not in TRADING_STATUSES:
                row.update(status="rejected", reason=f"market {status}: not closed (not retried)", give_up=True)
                return
            size = pos.round_size(Decimal(position["size"]), step)
            if size <= 0:
                row.update(
                    status="rejected",
                    reason=f"position smaller than the amount step {pos.text(step)}: not closed",
                    give_up=True,
                )
                return
            price = pos.limit_price(self._reference(position, side), side, slippage, tick)
        except CancelctlError as e:
            row.update(status="rejected", reason=f"not sent: market data not read: {e.message}")
            return
        except ArithmeticError:
            row.update(status="rejected", reason="not sent: a size or price beyond what cancelctl computes with")
            return
        if price <= 0:
            row.update(status="rejected", reason="not sent: no positive price within --max-slippage", give_up=True)
            return
        import uuid

        cloid = str(uuid.uuid4())
        row.update(size=pos.text(size), price=pos.text(price), client_order_id=cloid)
        fields = {
            "client_order_id": cloid,
            "symbol": position["symbol"],
            "amount": pos.text(size),
            "price": pos.text(price),
            "side": side,
            "type": "exchange limit",
            "options": ["immediate-or-cancel"],
        }
        if self.dry_run:
            self._post(NEW_ORDER, fields)
            row["status"] = "dry-run"
            return
        answered, body = pos.send_close(row, lambda: self._post(NEW_ORDER, fields, resend=False))
        if not answered:
            return
        order_id = as_id(body.get("order_id")) if isinstance(body, dict) else None
        try:
            if not isinstance(body, dict) or order_id is None:
                raise OutcomeUnknown("no order in the answer")
            if body.get("client_order_id") is not None and body.get("client_order_id") != cloid:
                raise OutcomeUnknown("the answer names another order")
            executed = pos.decimal(body.get("executed_amount", "0"), "executed_amount")
            if not 0 <= executed <= size:
                raise OutcomeUnknown("an executed amount outside the order")
        except OutcomeUnknown as e:
            row.update(
                status="unknown", reason=f"Gemini's answer to the closing order is unusable: {e.message}", lost=True
            )
            return
        row["order_id"] = order_id
        if body.get("is_live") is not False:  # an IOC order rests only if something is wrong: take it off the book
            self._cancel_rested(row, order_id, size)
            return
        row["executed"] = executed  # for the caller's budget (closing.close); never shown
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        if reason:
            from cancelctl.text import one_line

            reason = one_line(reason)[:100]
        if executed >= size:
            row.update(status="filled", reason=None)
        elif executed > 0:
            row.update(
                status="partial",
                reason=f"{pos.text(size - executed)} not filled within {pos.text(slippage)}% ({reason or 'cancelled'})",
            )
        else:
            row.update(
                status="rejected",
                reason=f"not filled within {pos.text(slippage)}% ({reason or 'cancelled'})",
                give_up=reason in CLOSED_REASONS,
            )

    def _cancel_rested(self, row: dict[str, Any], order_id: str, size: Decimal) -> None:
        """An immediate-or-cancel closing order the venue says is live: ``POST /v1/order/cancel`` it by order_id.

        The row is ``partial`` or ``rejected`` with what the cancel's answer
        (the order status) says was executed, never ``filled``; ``unknown``
        when the cancel is not confirmed for that order (it may still rest:
        look at the book). The row is given up: no further order is sent
        for the symbol while one may rest.
        """
        from cancelctl import positions as pos

        rested = f"the immediate-or-cancel closing order {order_id} rested on the book (is_live)"
        row["give_up"] = True
        try:
            body = self._post(CANCEL, {"order_id": int(order_id)})
            if not isinstance(body, dict) or as_id(body.get("order_id")) != order_id:
                raise OutcomeUnknown("the answer did not name that order")
            done = body.get("is_cancelled") is True or (
                body.get("is_live") is False and body.get("is_cancelled") is False
            )
            if not done:
                raise OutcomeUnknown("the answer did not say it is off the book")
            executed = pos.decimal(body.get("executed_amount", "0"), "executed_amount")
            closed = body.get("is_cancelled") is False  # closed by fills before the cancel reached it
            if not 0 <= executed <= size or (executed == size) != closed:
                raise OutcomeUnknown("its executed amount does not fit the order")
        except CancelctlError as e:
            row.update(status="unknown", reason=f"{rested}; its cancel was not confirmed: {e.message}")
            return
        row["executed"] = executed
        if closed:
            row.update(status="filled", reason=f"{rested}; its cancel found it filled")
        elif executed > 0:
            row.update(status="partial", reason=f"{rested}; cancelled with {pos.text(executed)} filled")
        else:
            row.update(status="rejected", reason=f"{rested}; cancelled, nothing filled")
