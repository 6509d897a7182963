"""Pacifica: cancel all (all symbols or per symbol), cancel orders (batched), cancel stop orders, list orders.

Protocol facts (Pacifica's API docs, https://docs.pacifica.fi/api-documentation/api: "Signing",
"Cancel order" (https://docs.pacifica.fi/api-documentation/api/rest-api/orders/cancel-order), "Cancel all orders"
(https://docs.pacifica.fi/api-documentation/api/rest-api/orders/cancel-all-orders), "Cancel stop order",
"Batch order", "Get open
orders", "Error codes", "Rate limits"; the SDK's ``common/utils.py``,
https://github.com/pacifica-fi/python-sdk):

* every cancel is a signed JSON POST (:mod:`cancelctl.signing.pacifica`);
  there is no nonce, so requests need no lock and every retry re-signs with
  a fresh timestamp;
* ``/orders/cancel_all`` answers ``{"cancelled_count": N}``, possibly inside
  the envelope ``{"success", "data", "error", "code"}`` (no order IDs);
* ``/orders/cancel`` and ``/orders/stop/cancel`` answer ``{"success": true}``;
* ``/orders/batch`` (at most 10 actions, ``cancel_order`` only) answers 200
  ``{"success": true, "data": {"results": [{"success", "order_id",
  "error"}, ...]}}``, one result per action, in order;
* ``GET /orders?account=`` is unsigned and lists open orders, stop and
  TP/SL orders included;
* signature problems are 400 with a bare string ("Invalid signature",
  "Invalid message", "Invalid public key", "Verification failed",
  "Unauthorized" for an agent wallet not bound); business errors are 422
  with a message and a numeric ``code``: decide by message, the numbering
  has changed between revisions;
* an unknown client order ID is 422 "Unused client order id: <id>" (code
  37), an unknown order ID "Order not found for <account>: <id>" (code 6)
  (https://docs.pacifica.fi/api-documentation/api/error-codes): both are
  a rejected row "not found"; a failed batch cancel says "Failed to cancel
  order";
* an agent wallet not bound to the account may also be refused with JSON
  ``{"error": "Agent not authorized for account"}``: exit 4, and nothing
  more is sent for the profile;
* the edge (CloudFront) answers some refusals with a 403 HTML page (a
  GET with a body, a blocked region): not a credential problem
  (https://docs.pacifica.fi/api-documentation/api/api-faq/403-cloudfront);
* a 429 carries ``ratelimit: "credits";r=<remaining x10>;t=<seconds until
  refresh>`` rather than ``Retry-After``
  (https://docs.pacifica.fi/api-documentation/api/rate-limits): ``t`` is the wait;
* TWAP orders are not in ``GET /orders``: ``GET /orders/twap?account=``
  lists them (https://docs.pacifica.fi/api-documentation/api/rest-api/twap/get-open-twap-orders,
  SDK ``rest/get_open_twap_order.py``) and ``POST /orders/twap/cancel``
  (operation ``cancel_twap_order``: ``symbol`` and ``order_id`` or
  ``client_order_id``; SDK ``rest/cancel_twap_order.py``) cancels one.
  Whether ``cancel_all_orders`` stops a running TWAP is not documented:
  cancelctl assumes it does not, and cancels each TWAP by ID after it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cancelctl.config import Profile
from cancelctl.credentials import Credentials, set_command
from cancelctl.errors import AuthError, CancelctlError, ConfigError, NotSent, OutcomeUnknown, UsageProblem, VenueRefused
from cancelctl.results import OpenOrder, ProfileResult
from cancelctl.signing import PreparedRequest
from cancelctl.signing import pacifica as signing
from cancelctl.transport import Answer, Deadline, DeadlinePassed, new_client, send
from cancelctl.venues.base import (
    Ahead,
    ClientBase,
    Reason,
    as_id,
    bad_order_ids,
    once_sent,
    refusal,
    status_error,
)

if TYPE_CHECKING:
    from nacl.signing import SigningKey

    from cancelctl.transport import HTTPClient

CANCEL = "/orders/cancel"
CANCEL_ALL = "/orders/cancel_all"
CANCEL_STOP = "/orders/stop/cancel"
ORDERS = "/orders"
TWAP_ORDERS = "/orders/twap"  # SDK rest/get_open_twap_order.py; docs "Get open TWAP orders"
# docs "Get order history": https://docs.pacifica.fi/api-documentation/api/rest-api/orders/get-order-history
HISTORY = "/orders/history"
HISTORY_LIMIT = 100  # entries read (one page: the docs give no order of the entries, so no paging to a point)
HISTORY_SLACK_MS = 500  # how far the venue's clock may be from ours around a cancel-all (ms); more: the count alone
HISTORY_MIN_LEFT_S = 1.0  # the order history is read only with at least this much of the deadline left (s)
HISTORY_MAX_S = 1.5  # the longest the order history look-up may take, retries included (s)
CANCEL_TWAP = "/orders/twap/cancel"  # SDK rest/cancel_twap_order.py (operation cancel_twap_order)
POSITIONS = "/positions"
INFO = "/info"
NOT_OPEN = "not in the open orders just read (filled, cancelled, or not this account's)"
# A signed read that changes nothing: list the account's API config keys (operation list_api_keys, empty payload;
# https://docs.pacifica.fi/api-documentation/api/rate-limits/api-config-keys, SDK rest/api_config_keys.py).
API_KEYS = "/account/api_keys"
MARKETS_LOOKUP_S = 1.5  # the longest a scoped cancel waits for the market list before sending as typed (s)
CREATE_MARKET = "/orders/create_market"
SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SECRET_KEY_BYTES = 64  # Solana secret key: 32-byte seed + 32-byte public key
PUBLIC_KEY_BYTES = 32


# docs.pacifica.fi "Error codes" / "Signing: Error Handling": message -> meaning
# for cancelctl, matched case-insensitively on the start of the message (many
# carry an address or an ID after it). {profile}, {fix} and {account} are
# filled in. Messages not listed fall back to the HTTP status (see _interpret).
REASONS: dict[str, Reason] = {
    "invalid signature": Reason(AuthError, "the signature was not accepted: check the key: {fix}"),
    "verification failed": Reason(
        AuthError,
        "the key does not sign for account {account}: check private_key, account and agent_wallet of profile "
        "{profile}: {fix}",
    ),
    "invalid public key": Reason(AuthError, "check account and agent_wallet in profile {profile}"),
    "invalid message": Reason(
        AuthError,
        "the request was refused as expired: this machine's clock may be off (sync it with NTP; cancelctl doctor "
        "-p {profile} shows the skew)",
    ),
    "unauthorized": Reason(
        AuthError,
        "the agent wallet may not be bound to account {account}: bind it on Pacifica (API keys) or fix "
        "agent_wallet in profile {profile}",
    ),
    "agent not authorized": Reason(
        AuthError,
        "the agent wallet is not bound to account {account}: bind it on Pacifica (API keys) or fix agent_wallet "
        "in profile {profile}",
    ),
    "signer not whitelisted": Reason(AuthError, "the account is not enabled on Pacifica yet (access code)"),
    "account not found": Reason(
        ConfigError,
        "no Pacifica account {account}: check account in profile {profile} and the environment (mainnet/testnet)",
    ),
    "order not found": Reason(VenueRefused, kind="order_not_found"),
    "unused client order id": Reason(VenueRefused, kind="order_not_found"),
}
EDGE_403 = (
    "refused by Pacifica's edge (CloudFront 403 page) before it reached the API: "
    "not a credential problem (a blocked region or request shape)"
)


def ratelimit_wait(headers: dict[str, str]) -> float | None:
    """Seconds to wait after a 429: ``Retry-After`` when given, else ``t`` of the ``ratelimit`` header.

    Pacifica sends ``ratelimit: "credits";r=1200;t=32`` (``r``: remaining
    credits x10, ``t``: seconds until refresh;
    https://docs.pacifica.fi/api-documentation/api/rate-limits). None when
    neither says.
    """
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    for part in (headers.get("ratelimit") or "").split(";"):
        name, _, number = part.strip().partition("=")
        if name.strip().lower() == "t":
            try:
                return max(0.0, float(number))
            except ValueError:
                return None
    return None


def validate_symbol(symbol: str) -> str:
    """A Pacifica symbol as given (``BTC``, ``kBONK``); UsageProblem (exit 2) for anything else."""
    if not isinstance(symbol, str) or not SYMBOL.fullmatch(symbol):
        raise UsageProblem(f"not a Pacifica symbol: {str(symbol)[:40]!r} (letters, digits, '_' or '-', like BTC)")
    return symbol


def validate_order_ids(ids: list[str], *, symbol: str | None, client_order_id: bool) -> list[str]:
    """Check the IDs before anything is sent: UsageProblem (exit 2) otherwise.

    IDs are positive 64-bit integers (``order_id``) or, with ``client_order_id``, UUIDs; ``symbol``, when
    given, is a symbol (without it the client looks each ID up in the open orders).
    """
    if symbol is not None:
        validate_symbol(symbol)
    if not ids:
        raise UsageProblem("give at least one order ID")
    if client_order_id:
        bad = [i for i in ids if not UUID.fullmatch(i)]
        if bad:
            raise UsageProblem(f"not a client order ID (a UUID): {', '.join(map(repr, bad[:5]))}")
    else:
        bad = bad_order_ids(ids)
        if bad:
            hint = "for client order IDs add --client-order-id" if any(UUID.fullmatch(i) for i in bad) else None
            raise UsageProblem(
                f"not a Pacifica order_id (a positive integer): {', '.join(map(repr, bad[:5]))}", hint=hint
            )
    return ids


def validate_cancel(
    ids: list[str], *, symbol: str | None = None, client_order_id: bool = False, stop: bool = False, twap: bool = False
) -> None:
    """``cancel order``'s arguments for Pacifica, before anything is sent; UsageProblem (exit 2) otherwise."""
    validate_order_ids(ids, symbol=symbol, client_order_id=client_order_id)


def _b58decode(value: str) -> bytes | None:
    import base58

    try:
        return base58.b58decode(value)
    except ValueError:  # the message names the offending character: never pass it on
        return None


def _public_key_ok(value: str) -> bool:
    raw = _b58decode(value) if isinstance(value, str) and value else None
    return raw is not None and len(raw) == PUBLIC_KEY_BYTES


def check_public_key(value: str, option: str, profile: str) -> None:
    """UsageProblem (2) unless ``value`` is a Solana public key (base58, 32 bytes), for ``profiles add``'s
    ``--account`` and ``--agent-wallet``: a secret key pasted there would be written to the config file in clear.
    The message never quotes the value (https://solana.com/docs/core/accounts: an address is 32 bytes, base58)."""
    if _public_key_ok(value):
        return
    raw = _b58decode(value)
    secret = raw is not None and len(raw) == 2 * PUBLIC_KEY_BYTES
    raise UsageProblem(
        f"{option} takes a Solana public key (base58, 32 bytes), and the value given is not one"
        + ("; it looks like a 64-byte secret key, which never goes in the config file" if secret else ""),
        hint=f"nothing was written; give the wallet's address, and store a secret key with: "
        f"cancelctl keys set {profile}",
    )


def check_secrets(values: dict[str, str], profile: Profile) -> None:
    """``keys set``: a private key that is not a Solana secret key (base58, 64 bytes, its second half the public key
    of its first) is refused before it is stored (ConfigError, 78; see :func:`load_keypair`)."""
    load_keypair(values["private_key"], profile)


def check_profile(name: str, options: dict[str, str]) -> None:
    """``profiles add``: ``account`` and ``agent_wallet``, when given, must be Solana public keys (UsageProblem, 2;
    see :func:`check_public_key`), checked before the config file is written."""
    for key, option in (("account", "--account"), ("agent_wallet", "--agent-wallet")):
        if options.get(key) is not None:
            check_public_key(options[key], option, name)


def load_keypair(private_key_b58: str, profile: Profile) -> tuple[SigningKey, str]:
    """(``nacl.signing.SigningKey``, base58 public key) from a base58 Solana secret key.

    The key is the 64-byte secret key (32-byte seed, then the 32-byte public
    key) as Phantom and the Solana CLI export it. Raises ConfigError (exit
    78) with one line that never contains the key or any part of it.
    """
    import base58
    import nacl.signing

    what = f"the private_key of profile {profile.name!r}"
    fix = f"store the 64-byte secret key with: {set_command(profile.name)}"
    text = (private_key_b58 or "").strip()
    if text.startswith("["):
        raise ConfigError(
            f"{what} looks like a Solana CLI JSON key file, not base58",
            hint=f"convert the 64 numbers to base58, then {fix}",
        )
    raw = _b58decode(text) if text else None
    if raw is None:
        raise ConfigError(f"{what} is not base58 text", hint=fix)
    if len(raw) == PUBLIC_KEY_BYTES:
        raise ConfigError(
            f"{what} is 32 bytes: it looks like a seed or a public key (wallet address), not a secret key",
            hint=f"the 64-byte secret key as exported by Phantom or the Solana CLI is needed; {fix}",
        )
    if len(raw) != SECRET_KEY_BYTES:
        raise ConfigError(f"{what} is {len(raw)} bytes, not the 64 of a Solana secret key", hint=fix)
    key = nacl.signing.SigningKey(raw[:32])
    public = bytes(key.verify_key)
    if public != raw[32:]:
        raise ConfigError(f"{what} is damaged: its second half is not the public key of its first half", hint=fix)
    return key, base58.b58encode(public).decode("ascii")


def now_ms() -> int:
    """Milliseconds since the epoch, for the ``timestamp`` field."""
    return time.time_ns() // 1_000_000


def _parse(answer: Answer) -> object:
    """The answer's JSON (object, list or string), the bare text, or None when empty."""
    text = answer.body.strip()
    if not text:
        return None
    if text[:1] in (b"{", b"[", b'"'):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: a pathologically deep document
            return None
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _unwrap(body: object) -> object:
    """``data`` of an envelope ``{"success", "data", "error", "code"}``; a bare body as it is."""
    if isinstance(body, dict) and "success" in body and "data" in body:
        return body["data"]
    return body


MAX_COUNT = 10**6  # no account rests a million orders: a larger "count" is not one


def _count(body: object) -> int | None:
    """``cancelled_count`` of a cancel_all answer (bare or in the envelope), or None when it is not a plausible count.

    Docs "Cancel all orders" (https://docs.pacifica.fi/api-documentation/api/rest-api/orders/cancel-all-orders):
    ``{"success": true, "data": {"cancelled_count": N}, ...}``. A negative,
    fractional, boolean or absurdly large count, ``data: null`` or an
    envelope with ``success`` other than true says nothing reliable.
    """
    if isinstance(body, dict) and "success" in body and body.get("success") is not True:
        return None
    data = _unwrap(body)
    count = data.get("cancelled_count") if isinstance(data, dict) else None
    if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= MAX_COUNT:
        return count
    return None


def _key(order_id: str, client_order_id: bool) -> str:
    """How IDs compare: client order IDs (UUIDs) without regard to case."""
    return order_id.lower() if client_order_id else order_id


def _names_any(entry: dict[str, Any], client_order_id: bool) -> bool:
    field = "client_order_id" if client_order_id else "order_id"
    return entry.get(field) is not None


def _named_id(entry: dict[str, Any], client_order_id: bool) -> str | None:
    """The order an answer names, in comparable form; None when it names none.

    An ID field that is present but unreadable (1e20, "abc", -5) names
    "some other order": it never matches an asked ID.
    """
    field = "client_order_id" if client_order_id else "order_id"
    value = entry.get(field)
    if value is None:
        return None
    if client_order_id:
        return value.lower() if isinstance(value, str) else "<unreadable>"
    return as_id(value) or "<unreadable>"


def _not_found(message: str | None) -> bool:
    """Pacifica's words for an order it does not have (or a batch cancel that failed, which may be the same)."""
    return message is not None and message.lower().startswith(
        ("order not found", "unused client order id", "failed to cancel order")
    )


def _confirmed(body: object) -> bool:
    """True only for an explicit success: ``{"success": true, ...}`` (docs "Cancel order") without an error text.

    ``{"success": true, "error": "Order not found"}`` contradicts itself (the documented success carries
    ``"error": null``): see :func:`_contradicts`.
    """
    return isinstance(body, dict) and body.get("success") is True and not _contradicts(body)


def _contradicts(body: dict[str, Any]) -> bool:
    """A ``success: true`` that also carries an error text: neither a cancel nor a refusal (unknown)."""
    error = body.get("error")
    return body.get("success") is True and isinstance(error, str) and bool(error.strip())


def _message(body: object) -> str | None:
    if isinstance(body, str):
        return body.strip()[:300] or None
    if isinstance(body, dict):
        for key in ("error", "message", "msg"):
            if isinstance(body.get(key), str) and body[key].strip():
                return str(body[key]).strip()[:300]
    return None


class Pacifica(ClientBase):
    """One Pacifica profile's client: signs with the Ed25519 key, sends, parses.

    ``account`` is the profile's ``account`` or else the key's public key.
    With ``agent_wallet`` set, the stored key is the agent's and
    ``account`` (the main wallet) must be configured. ``dry_run=True``
    builds and signs requests and keeps them, redacted, in ``prepared``.
    """

    venue = "pacifica"

    def __init__(
        self,
        profile: Profile,
        creds: Credentials,
        *,
        deadline: Deadline,
        dry_run: bool = False,
        state_dir: Path | None = None,
    ) -> None:
        """``state_dir`` is accepted like every client's and unused: Pacifica has no nonce to keep."""
        self.profile = profile
        self.deadline = deadline
        self.dry_run = dry_run
        self._key, self.public_key = load_keypair(creds["private_key"], profile)
        self.agent_wallet = profile.agent_wallet or None
        where = f"[profiles.{profile.name}]"
        if profile.account and not _public_key_ok(profile.account):
            raise ConfigError(
                f"account in profile {profile.name!r} is not a Solana public key (base58, 32 bytes)",
                hint=f"fix account in {where}",
            )
        if self.agent_wallet:
            if not _public_key_ok(self.agent_wallet):
                raise ConfigError(
                    f"agent_wallet in profile {profile.name!r} is not a Solana public key (base58, 32 bytes)",
                    hint=f"fix agent_wallet in {where}",
                )
            if self.public_key != self.agent_wallet:
                raise ConfigError(
                    f"the private_key of profile {profile.name!r} is not the agent wallet's key (agent_wallet = "
                    f"{self.agent_wallet})",
                    hint=f"store the agent wallet's key with {set_command(profile.name)}, "
                    f"or fix agent_wallet in {where}",
                )
            if not profile.account:
                raise ConfigError(
                    f"profile {profile.name!r} uses an agent wallet but names no account",
                    hint=f'add account = "<main wallet public key>" to {where}',
                )
        self.account = profile.account or self.public_key
        self.unanswered = False  # an attempt of the current cancel may have been processed without an answer
        self.blocked: CancelctlError | None = None  # set after an agent-wallet refusal (see _block)
        self._client = None
        self.prepared: list[dict[str, Any]] = []

    # -- plumbing ---------------------------------------------------------

    def _prepare(self, path: str, op_type: str, payload: dict[str, Any], timestamp_ms: int) -> PreparedRequest:
        return signing.prepare(
            base_url=self.profile.base_url,
            path=path,
            op_type=op_type,
            payload=payload,
            account=self.account,
            agent_wallet=self.agent_wallet,
            signing_key=self._key,
            timestamp_ms=timestamp_ms,
        )

    def _prepare_batch(self, payloads: list[dict[str, Any]], timestamp_ms: int) -> PreparedRequest:
        return signing.prepare_batch(
            base_url=self.profile.base_url,
            payloads=payloads,
            account=self.account,
            agent_wallet=self.agent_wallet,
            signing_key=self._key,
            timestamp_ms=timestamp_ms,
        )

    def _request(
        self,
        build: Callable[[int], PreparedRequest],
        *,
        resend: bool = True,
        read: bool = False,
        deadline: Deadline | None = None,
    ) -> object:
        """Build (sign) and send one request, retrying safely; the parsed success body.

        ``build(timestamp_ms)`` is called again for every attempt, so each
        retry carries a fresh timestamp and signature. ``resend=False`` (an
        order): a request that may have been processed is never sent again.
        ``read``: a read, which may run in a thread of its own next to a cancel (:class:`Ahead`): it leaves
        the cancel's ``unanswered`` alone. ``deadline``: the read's own (default the profile's).
        """
        if self.dry_run:
            self._dry(build(now_ms()))
            return None
        if self.blocked is not None:
            raise self.blocked
        until = deadline or self.deadline

        def attempt(client: HTTPClient) -> object:
            try:
                return self._interpret(send(client, build(now_ms()), until))
            except OutcomeUnknown:
                if not read:
                    self.unanswered = True  # this attempt may have been processed
                raise

        try:
            if not resend:
                return once_sent(attempt, self._retrying)
            return self._retrying(attempt, until)
        except AuthError as e:
            self._block(e)
            raise

    def _block(self, e: CancelctlError) -> None:
        """After an agent-wallet refusal nothing more is sent for this profile: every later request raises ``e``
        unsent."""
        if e.venue_reason and e.venue_reason.lower().startswith(("agent not authorized", "unauthorized")):
            self.blocked = e

    def _post(self, path: str, op_type: str, payload: dict[str, Any]) -> object:
        return self._request(lambda ts: self._prepare(path, op_type, payload, ts))

    def _reason(self, message: str) -> Reason | None:
        lowered = message.lower()
        for prefix, entry in REASONS.items():
            if lowered.startswith(prefix):
                return entry
        return None

    def _error(self, message: str, *, status: int | None = None) -> CancelctlError:
        """The contract's error for a Pacifica error message (HTTP status as the fallback)."""
        entry = self._reason(message)
        where = f" (HTTP {status})" if status else ""
        if entry is None:
            return VenueRefused(f"Pacifica: {message}{where}", venue_reason=message)
        hint = None
        if entry.hint:
            hint = entry.hint.format(
                profile=self.profile.name, fix=set_command(self.profile.name), account=self.account
            )
            if message.lower().startswith("unauthorized") and not self.agent_wallet:
                hint = (
                    f"the key is not allowed to act for account {self.account}: "
                    f"check account in profile {self.profile.name} and the key: {set_command(self.profile.name)}"
                )
            if (
                entry.error is AuthError
                and message.lower().startswith("verification failed")
                and not self.agent_wallet
                and self.account != self.public_key
            ):
                hint += (
                    f"; the key's public key is {self.public_key}, not the account "
                    "(set agent_wallet if it is an agent's key)"
                )
        return entry.error(f"Pacifica: {message}{where}", venue_reason=message, hint=hint, kind=entry.kind)

    def _interpret(self, answer: Answer) -> object:
        """The success body, or the contract's error for Pacifica's answer."""
        body = _parse(answer)
        message = _message(body)
        if 200 <= answer.status < 300:
            if body is None or isinstance(body, str):
                raise OutcomeUnknown(f"unreadable answer from Pacifica (HTTP {answer.status})")
            if isinstance(body, dict) and body.get("success") is False:
                raise self._error(message or "request failed", status=answer.status)
            return body
        error = status_error(answer, "Pacifica", message=message, rate_limit_wait=lambda a: ratelimit_wait(a.headers))
        if error is not None:
            raise error
        if answer.status == 403 and (body is None or (isinstance(body, str) and body.lstrip()[:1] == "<")):
            raise VenueRefused(
                f"HTTP 403 {EDGE_403}",
                kind="edge_refused",
                hint="a cancel refused this way was not carried out; try again from another network if it persists",
            )
        if message and self._reason(message) is not None:
            raise self._error(message, status=answer.status)
        wrong_url = not isinstance(body, dict)  # a 404 without Pacifica's JSON: not its API
        if message and answer.status not in (401, 403) and not (answer.status == 404 and wrong_url):
            raise self._error(message, status=answer.status)
        raise refusal(
            answer,
            "Pacifica",
            self.profile,
            message=message,
            check="base_url (it ends in /api/v1)",
            wrong_url=wrong_url,
        )

    # -- operations -------------------------------------------------------

    def cancel_all(
        self, symbols: list[str] | None = None, exclude_reduce_only: bool = False, twap: bool | None = None
    ) -> ProfileResult:
        """``POST /orders/cancel_all``: all symbols in one request, or one request per symbol; then the TWAP orders.

        Pacifica answers with a count only, so the result carries
        ``cancelled_count`` (the sum) and no IDs. ``exclude_reduce_only``
        keeps reduce-only orders (protective exits). A credential or
        configuration error stops the run; other failures are recorded and
        the remaining symbols are still tried.

        ``twap`` (default: when no ``symbols`` are given, as for ``cancel
        all`` and ``panic``): the open TWAP orders are listed and each is cancelled by ID
        (``cancel_twap_order``); their rows are by ID (``cancelled_count``
        stays the venue's count of the cancel-all) and ``twap`` lists them. A TWAP list that cannot be
        read is OutcomeUnknown (verification reads it again).

        The TWAP listing does not wait for the cancel-all's answer: it goes out, on a connection of its own,
        as soon as the first cancel-all request has been written whole (:attr:`Deadline.on_written
        <cancelctl.transport.Deadline.on_written>`), so the two take one round trip instead of two. The first
        request on the wire is still the cancel. This rests on what the spec assumes (cancel_all_orders does not
        stop a TWAP, so a listing made before its answer lists the same TWAP orders); the TWAP cancels
        themselves go out after the cancel-all was answered. No listing is sent once an agent-wallet refusal
        is known, and none is used after a credential or configuration failure (as before: such a run lists
        nothing). When the cancel-all never went out, the listing is made after it, as before.
        """
        result = self._result("cancel_all_orders")
        self.cancel_all_ms = now_ms()  # the order history's cancels are matched from here (identify_cancelled)
        self.cancel_all_scope = (None, bool(exclude_reduce_only))
        checked = True
        if symbols:
            spelt, checked = self.market_symbols([validate_symbol(s) for s in symbols])
            self.cancel_all_scope = ({s.upper() for s in spelt}, bool(exclude_reduce_only))
            payloads = [
                {"symbol": s, "all_symbols": False, "exclude_reduce_only": bool(exclude_reduce_only)} for s in spelt
            ]
        else:
            payloads = [{"all_symbols": True, "exclude_reduce_only": bool(exclude_reduce_only)}]
        twaps = not symbols if twap is None else twap
        listing: list[Ahead[list[OpenOrder]]] = []  # the TWAP listing, started once the first cancel is on the wire
        if twaps and not self.dry_run:

            def list_twaps() -> None:  # in this thread, as the cancel's last byte went out; once
                self.deadline.on_written = None
                if self.blocked is None:
                    listing.append(Ahead(self.open_twap_orders))

            self.deadline.on_written = list_twaps
        try:
            self._cancel_all(result, payloads, checked)
        finally:
            self.deadline.on_written = None
        if twaps and self.blocked is None and not isinstance(result.error, (AuthError, ConfigError)):
            self._cancel_twaps(result, exclude_reduce_only, listing[0] if listing else None)
        return result

    def _cancel_all(self, result: ProfileResult, payloads: list[dict[str, Any]], checked: bool) -> None:
        """Send each ``cancel_all_orders`` payload in turn, adding its count (or its failure) to ``result``."""
        for payload in payloads:
            scope = f"symbol {payload['symbol']}: " if "symbol" in payload else ""
            try:
                body = self._post(CANCEL_ALL, "cancel_all_orders", payload)
            except (NotSent, OutcomeUnknown, VenueRefused) as e:
                if scope:
                    e.message = scope + e.message
                if result.error is None or isinstance(e, OutcomeUnknown):
                    result.error = e
                continue
            except CancelctlError as e:  # credentials or configuration: the same for every symbol
                result.error = e
                break
            if body is None:  # dry run
                continue
            count = _count(body)
            if count is None:
                result.error = OutcomeUnknown(
                    f"{scope}Pacifica's cancel_all answer did not say how many orders it cancelled"
                )
            elif count == 0 and not checked:  # "nothing cancelled" for a symbol that may be no market at all
                doubt = OutcomeUnknown(
                    f"{scope}nothing was cancelled, and the list of Pacifica markets could not be read to check "
                    "that it is one",
                    hint=f"see what is open: cancelctl orders -p {self.profile.name}",
                )
                # no read of the book can say the symbol is a market: verification seeing none open is no "done"
                result.unsettled = result.unsettled or doubt
                result.error = result.error or doubt
            else:
                result.cancelled_count = (result.cancelled_count or 0) + count

    def market_symbols(self, wanted: list[str]) -> tuple[list[str], bool]:
        """The venue's spelling of each symbol in ``wanted``; (symbols, True when checked against the markets).

        ``GET /info`` lists the markets (docs "Get market info",
        https://docs.pacifica.fi/api-documentation/api/rest-api/markets/get-market-info);
        symbols are case-sensitive there (``BTC``, ``kBONK``), so ``btc`` is
        sent as ``BTC``. A symbol that is no market is a UsageProblem (exit 2)
        naming the close matches; nothing is sent for any of them. When the
        list cannot be read the symbols go as typed, unchecked (False).
        Only scoped cancels look markets up: an all-symbols cancel (panic)
        never waits for it.
        """
        try:
            markets = self.markets()
        except CancelctlError:
            return wanted, False
        spelt = []
        for symbol in wanted:
            if symbol in markets:
                spelt.append(symbol)
                continue
            same = [m for m in markets if m.lower() == symbol.lower()]
            if len(same) == 1:
                spelt.append(same[0])
                continue
            import difflib

            close = same or difflib.get_close_matches(symbol.upper(), [m.upper() for m in markets], n=3, cutoff=0.6)
            close = [next(m for m in markets if m.upper() == c.upper()) for c in close]
            raise UsageProblem(
                f"{symbol!r} is not a Pacifica market",
                hint=f"did you mean {', '.join(close)}?"
                if close
                else f"{len(markets)} markets, e.g. {', '.join(sorted(markets)[:5])}",
            )
        return list(dict.fromkeys(spelt)), True

    def markets(self) -> list[str]:
        """``GET /info``: the symbols of every market (unsigned; also in a dry run, it changes nothing).

        Raises the contract's errors; a list that cannot be read whole is OutcomeUnknown.
        """
        if self._client is None:
            self._client = new_client(self.profile.name)
        url = f"{self.profile.base_url}{INFO}"
        request = PreparedRequest(method="GET", url=url, headers={"Accept": "application/json"})
        # One attempt on a clock of its own (at most MARKETS_LOOKUP_S, a third of what is left), so a
        # venue whose /info is down or slow still leaves the cancels their time.
        lookup = Deadline(max(0.0, min(MARKETS_LOOKUP_S, self.deadline.remaining() / 3)))
        body = self._interpret(send(self._client, request, lookup))
        data = _unwrap(body)
        if not isinstance(data, list) or not data:
            raise OutcomeUnknown("Pacifica's market list came in an unexpected shape")
        symbols = [m.get("symbol") if isinstance(m, dict) else None for m in data]
        if not all(isinstance(x, str) and SYMBOL.fullmatch(x) for x in symbols):
            raise OutcomeUnknown("Pacifica's market list had an entry without a usable symbol")
        return symbols  # type: ignore[return-value]

    def _cancel_twaps(
        self, result: ProfileResult, exclude_reduce_only: bool, listing: Ahead[list[OpenOrder]] | None = None
    ) -> None:
        """List the open TWAP orders (``listing``: the listing already under way) and cancel each by ID, adding
        their rows to ``result``."""
        try:
            twaps = listing.result() if listing is not None else self.open_twap_orders()
        except (AuthError, ConfigError) as e:
            result.error = e
            return
        except CancelctlError as e:
            result.error = result.error or OutcomeUnknown(
                f"the TWAP orders could not be listed: {e.message}",
                hint=f"see what is still open: cancelctl orders -p {self.profile.name}",
            )
            return
        by_symbol: dict[str, list[str]] = {}
        for t in twaps:
            if not (exclude_reduce_only and t["reduce_only"]):
                by_symbol.setdefault(cast(str, t["symbol"]), []).append(t["order_id"])
        for symbol, ids in by_symbol.items():
            r = self.cancel_orders(ids, symbol=symbol, twap=True)
            result.cancelled += r.cancelled
            result.rejected += r.rejected
            result.unknown += r.unknown
            result.twap += ids
            result.error = result.error or r.error
            if isinstance(r.error, (AuthError, ConfigError)):
                result.error = r.error
                break

    def cancel_orders(
        self,
        order_ids: list[str],
        *,
        symbol: str | None = None,
        client_order_id: bool = False,
        stop: bool = False,
        twap: bool = False,
    ) -> ProfileResult:
        """Cancel the given orders of ``symbol``; one row per ID: cancelled, rejected or unknown.

        Without ``symbol`` each ID's symbol and kind (stop order or not) come from one read of the open orders
        (the TWAP orders with ``twap``) made just before: see :meth:`_look_up`. An ID not open there is
        rejected "not sent"; when the book cannot be read, nothing is sent.

        A stop order goes to ``/orders/stop/cancel`` and a TWAP order to ``/orders/twap/cancel``, one request
        each; the other IDs go to ``/orders/cancel`` when there is one, else to ``/orders/batch``, 10 a request
        (a batch carries only ``cancel_order`` actions, docs "Batch order"). A credential or configuration error
        stops the run; the IDs not yet sent are rejected "not sent". An ID given twice is sent once.

        Only an explicit ``success: true`` is a cancel; an answer with a
        reason is a rejection; anything else leaves the ID unknown. "Order
        not found" after an attempt that may have been processed (its
        answer was lost) is checked against the book: gone is cancelled,
        anything else unknown, never "rejected".
        """
        ids = list(dict.fromkeys(str(i) for i in order_ids))
        result = self._result("cancel_twap_order" if twap else "cancel_stop_order" if stop else "cancel_order", ids)
        if twap:
            result.twap = list(ids)
        try:
            validate_order_ids(ids, symbol=symbol, client_order_id=client_order_id)
        except UsageProblem as e:  # nothing is sent; the caller keeps a result (verification rounds)
            result.error = e
            for i in ids:
                result.reject(i, f"not sent: {e.message}")
            return result
        kinds = dict.fromkeys(ids, (symbol, stop)) if symbol else self._look_up(result, ids, client_order_id, twap)
        todo = [i for i in ids if i in kinds]

        def payload(i: str) -> dict[str, Any]:
            sym = kinds[i][0]
            return {"symbol": sym, "client_order_id": i} if client_order_id else {"symbol": sym, "order_id": int(i)}

        plain = [i for i in todo if not twap and not kinds[i][1]]
        singles = [i for i in todo if twap or kinds[i][1]] + (plain if len(plain) == 1 else [])
        batched = plain if len(plain) > 1 else []
        gone: list[str] = []  # "not found" after an attempt that may have cancelled it

        def send_single(chunk: list[str]) -> object:
            order_id = chunk[0]
            path, op = (
                (CANCEL_TWAP, "cancel_twap_order")
                if twap
                else (CANCEL_STOP, "cancel_stop_order")
                if kinds[order_id][1]
                else (CANCEL, "cancel_order")
            )
            self.unanswered = False
            return self._post(path, op, payload(order_id))

        def lost_single(chunk: list[str], e: CancelctlError) -> bool:
            if self.unanswered and _not_found(e.venue_reason):
                gone.append(chunk[0])
                return True
            return False

        def single_row(chunk: list[str], body: object) -> None:
            self._single_row(result, chunk[0], body, gone, client_order_id)

        def send_batch(chunk: list[str]) -> object:
            payloads = [payload(i) for i in chunk]
            self.unanswered = False
            return self._request(lambda ts: self._prepare_batch(payloads, ts))

        def batch_rows(chunk: list[str], body: object) -> CancelctlError | None:
            self._batch_rows(result, chunk, body, gone, client_order_id)
            if self.blocked is not None or isinstance(result.error, (AuthError, ConfigError)):
                return result.error or self.blocked  # credentials: nothing more is sent for this profile
            return None

        # TWAP and stop orders (and a lone order): one request each (a batch takes neither); the rest 10 a request
        if not self._in_chunks(result, singles, 1, send_single, single_row, handled=lost_single, after=batched):
            self._in_chunks(result, batched, signing.BATCH_LIMIT, send_batch, batch_rows)
        if gone:
            with self.sending(gone):
                self._settle_gone(result, gone, client_order_id)
        return result

    def _look_up(
        self, result: ProfileResult, ids: list[str], client_order_id: bool, twap: bool
    ) -> dict[str, tuple[str | None, bool]]:
        """``{ID: (symbol, is a stop order)}`` for the IDs open on the account, from one unsigned read of the
        open orders (``GET /orders?account=``; with ``twap`` the TWAP orders, ``GET /orders/twap?account=``),
        made in a dry run too (it sends no cancel). Pacifica's cancel needs the symbol, and a stop order is
        cancelled only by ``/orders/stop/cancel``: a plain cancel of it answers "Order not found"
        (https://docs.pacifica.fi/api-documentation/api/rest-api/orders/cancel-stop-order).

        An ID not in the book is rejected "not sent" (filled, cancelled, or not this account's), and so is an ID
        the book lists twice with different symbols or kinds (which one is unsaid: never a guess); every look-up
        is recorded in ``result.looked_up``. When the book cannot be read whole, every ID is rejected "not
        sent" and ``result.error`` says why (NotSent 75 stays 75: nothing was sent; an unreadable book is exit
        1 with the fix: give --symbol).
        """
        from contextlib import ExitStack
        from urllib.parse import urlencode

        url = f"{self.profile.base_url}{TWAP_ORDERS if twap else ORDERS}?{urlencode({'account': self.account})}"
        request = PreparedRequest(method="GET", url=url, headers={"Accept": "application/json"})
        field = "client_order_id" if client_order_id else "order_id"
        try:
            # sent in a dry run too: a read, and the symbols are what the signed cancels need; there one attempt
            # of PREVIEW_MAX_S at most, like its read of the book (a venue out of reach is said at once)
            with ExitStack() as stack:
                if self.dry_run:
                    from cancelctl.verify import PREVIEW_MAX_S

                    stack.enter_context(self.once())
                    stack.enter_context(self.deadline.capped(PREVIEW_MAX_S))
                body = self._retrying(lambda client: self._interpret(send(client, request, self.deadline)))
            book = self._twap_book(body) if twap else self._order_book(body)
        except CancelctlError as e:
            error = e
            if not isinstance(e, (NotSent, AuthError, ConfigError)):
                error = VenueRefused(
                    f"nothing was sent: the open orders could not be read to find the orders' symbol ({e.message})",
                    kind="lookup_failed",
                    hint="give --symbol S (and --stop for stop orders)",
                )
            result.error = error
            for i in ids:
                result.reject(i, f"not sent: {error.message}")
            return {}
        found: dict[str, OpenOrder] = {}
        twins: dict[str, set[tuple[object, bool]]] = {}  # an ID the book lists as two orders: which one is unsaid
        for o in book:
            if o.get(field) is not None:
                key = _key(str(o.get(field)), client_order_id)
                twins.setdefault(key, set()).add((o.get("symbol"), bool(o.get("stop"))))
                found[key] = o
        kinds: dict[str, tuple[str | None, bool]] = {}
        result.looked_up = []
        for i in ids:
            hit = found.get(_key(i, client_order_id))
            if hit is not None and len(twins[_key(i, client_order_id)]) > 1:
                named = ", ".join(sorted(f"{s}{' (stop)' if st else ''}" for s, st in twins[_key(i, client_order_id)]))
                result.reject(i, f"not sent: the open orders list {i} more than once ({named}); give --symbol")
                result.looked_up.append({"id": i, "symbol": None, "stop": None})
                continue
            if hit is None:
                result.reject(i, f"not sent: {NOT_OPEN}")
                result.looked_up.append({"id": i, "symbol": None, "stop": None})
                continue
            kinds[i] = (hit.get("symbol"), bool(hit.get("stop")))
            result.looked_up.append({"id": i, "symbol": hit.get("symbol"), "stop": bool(hit.get("stop"))})
        return kinds

    def _single_row(
        self, result: ProfileResult, order_id: str, body: object, gone: list[str], client_order_id: bool
    ) -> None:
        """The row of one ID from a 2xx answer to ``/orders/cancel`` or ``/orders/stop/cancel``."""
        data = _unwrap(body)
        named = _named_id(data, client_order_id) if isinstance(data, dict) else None
        if named is not None and named != _key(order_id, client_order_id):
            result.unknown.append(order_id)
            result.error = result.error or OutcomeUnknown(
                f"Pacifica's answer to the cancel of {order_id} named another order"
            )
        elif _confirmed(body):
            result.cancelled.append(order_id)
        elif isinstance(body, dict) and _contradicts(body):
            result.unknown.append(order_id)
            result.error = result.error or OutcomeUnknown(
                f"Pacifica's answer to the cancel of {order_id} said success and an error at once"
            )
        elif _message(body):
            self._reject_row(result, order_id, _message(body) or "", gone)
        else:
            result.unknown.append(order_id)
            result.error = result.error or OutcomeUnknown(
                f"Pacifica's answer to the cancel of {order_id} did not say it was cancelled"
            )

    def _reject_row(self, result: ProfileResult, order_id: str, message: str, gone: list[str]) -> None:
        """A refusal with Pacifica's reason; "not found" after a lost answer goes to the book check instead."""
        if self.unanswered and _not_found(message):
            gone.append(order_id)
            return
        error = self._error(message)
        if isinstance(error, (AuthError, ConfigError)):
            result.error = error
            if isinstance(error, AuthError):
                self._block(error)
        result.reject(order_id, message)

    def _settle_gone(self, result: ProfileResult, gone: list[str], client_order_id: bool) -> None:
        """IDs Pacifica called "not found" after an attempt whose answer was lost: look at the book.

        Not open in a book read whole: the lost attempt cancelled it
        (cancelled). Still open, or the book cannot be read: unknown.
        """
        field = "client_order_id" if client_order_id else "order_id"
        try:
            book = {_key(str(o.get(field)), client_order_id) for o in self.open_orders()}
        except CancelctlError as e:
            result.unknown.extend(gone)
            result.error = result.error or OutcomeUnknown(
                f"Pacifica said {', '.join(gone)} not found after an unanswered attempt, and the book could not "
                f"be read: {e.message}",
                hint=f"see what is still open: cancelctl orders -p {self.profile.name}",
            )
            return
        for order_id in gone:
            if _key(order_id, client_order_id) in book:
                result.unknown.append(order_id)
                result.error = result.error or OutcomeUnknown(
                    f"Pacifica said order {order_id} was not found, yet it is open"
                )
            else:
                result.cancelled.append(order_id)

    def _batch_rows(
        self, result: ProfileResult, chunk: list[str], body: object, gone: list[str], client_order_id: bool
    ) -> None:
        """One row per ID from a batch answer.

        ``data.results`` holds one result per action, in order (docs "Batch
        order"). A result that names an order (``order_id``, or
        ``client_order_id`` for client IDs) belongs to that order only; one
        naming none belongs to the action at its position. An ID no result
        belongs to is unknown.
        """
        data = _unwrap(body)
        results = data.get("results") if isinstance(data, dict) else data
        if not isinstance(results, list) or (
            isinstance(body, dict) and "success" in body and body.get("success") is not True
        ):
            result.unknown.extend(chunk)
            result.error = OutcomeUnknown("Pacifica's batch answer came in an unexpected shape")
            return
        by_id: dict[str, dict[str, Any]] = {}
        for entry in results:
            named = _named_id(entry, client_order_id) if isinstance(entry, dict) else None
            if named is not None:
                by_id.setdefault(named, entry)
        for n, order_id in enumerate(chunk):
            entry = by_id.get(_key(order_id, client_order_id))
            if entry is None and n < len(results):
                at = results[n]
                if (
                    isinstance(at, dict)
                    and _named_id(at, client_order_id) is None
                    and not _names_any(at, client_order_id)
                ):
                    entry = at
            if entry is None or not isinstance(entry.get("success"), bool) or _contradicts(entry):
                result.unknown.append(order_id)
                result.error = result.error or OutcomeUnknown("Pacifica's batch answer had no result for some orders")
            elif entry["success"]:
                result.cancelled.append(order_id)
            else:
                self._reject_row(result, order_id, _message(entry) or "rejected by Pacifica", gone)

    def prove_key(self) -> str:
        """doctor's proof that Pacifica accepts this profile's key for its account, sending no order and no cancel.

        One signed ``POST /account/api_keys`` (``list_api_keys``), signed as a cancel would be (by the agent
        wallet's key when ``agent_wallet`` is set). The venue verifies the signature and the account before it
        answers, so a wrong key ("Verification failed"), an unbound agent wallet ("Unauthorized") and an account
        it does not know (422 "Account not found", error code 1 ACCOUNT_NOT_FOUND,
        https://docs.pacifica.fi/api-documentation/api/error-codes) are refused here as a cancel would be. The
        answer's content (it may list API config keys) is never shown; only ``"success": true`` proves the key (any
        other 2xx body is OutcomeUnknown). Returns the detail line; raises the
        contract's errors (AuthError 4, ConfigError 78, NotSent 75, ...).
        """
        body = self._post(API_KEYS, "list_api_keys", {})
        if body is None:
            raise OutcomeUnknown("Pacifica answered the signed read without a body")
        if not (isinstance(body, dict) and body.get("success") is True):  # a 200 alone is not an acceptance
            raise OutcomeUnknown("Pacifica's answer to the signed read did not say success: the key is not proven")
        signer = f"agent wallet {self.agent_wallet}" if self.agent_wallet else "its own key"
        return f"key accepted: signed list_api_keys for account {self.account} ({signer})"

    def open_orders(self) -> list[OpenOrder]:
        """``GET /orders?account=``: open orders, stop and TP/SL orders included.

        Dicts with string ``order_id``, ``symbol``, ``side``, ``price``,
        ``amount`` (what is left: initial - filled - cancelled),
        ``client_order_id``, and booleans ``reduce_only`` and ``stop``
        (``order_type`` other than limit/market). Unsigned, no body. Raises
        the contract's errors; an unexpected shape is OutcomeUnknown, and so
        is a TWAP read that found no time left after the open orders came
        back (DeadlinePassed only when nothing went out).

        The TWAP orders (:meth:`open_twap_orders`) are read at the same time,
        in a thread of their own (:class:`~cancelctl.venues.base.Ahead`): the
        two reads depend on nothing but the cancels answered before, so they
        take one round trip, not two. When the first read fails, its error is
        the book's, as before, and the TWAP read's answer is dropped. A dry
        run's one-attempt preview reads them one after the other.
        """
        from urllib.parse import urlencode

        url = f"{self.profile.base_url}{ORDERS}?{urlencode({'account': self.account})}"
        request = PreparedRequest(method="GET", url=url, headers={"Accept": "application/json"})
        twap_half: Ahead[list[OpenOrder]] | None = None
        if not self.dry_run and self.retries and self.blocked is None and self._http_client() is not None:
            # the TWAP half does not depend on the first: both go out at once (one round trip, not two); not in
            # a dry run's one-attempt preview (client.once(), client.live()), whose flags last only its block
            twap_half = Ahead(self.open_twap_orders)
        body = self._request(lambda ts: request, read=True)  # a failure here is the book's: the TWAP half is dropped
        if body is None:
            return []
        orders = self._order_book(body)
        try:
            twaps = twap_half.result() if twap_half is not None else self.open_twap_orders()
        except DeadlinePassed as e:
            # half the book came back (it may list an order a cancel was just answered for): a book read in part,
            # never a read that did not go out (which verification may settle on the read before it)
            raise OutcomeUnknown(f"the open orders were read, the TWAP orders not: {e.message}") from None
        return orders + twaps

    @staticmethod
    def _order_book(body: object) -> list[OpenOrder]:
        """The entries of a ``GET /orders`` answer; OutcomeUnknown unless every entry can be read (a book read in
        part is a book not read)."""
        return _book(body, "order list", _normalise)

    cancel_all_ms: int | None = None  # when cancel_all began (ms, our clock)
    #: what cancel_all could cancel: (its symbols upper-cased, None for all; whether reduce-only orders were kept)
    cancel_all_scope: tuple[set[str] | None, bool] = (None, False)

    def order_history(self, deadline: Deadline | None = None) -> list[dict[str, Any]]:
        """``GET /orders/history?account=&limit=100``: one page of the account's summarized order history.

        Docs "Get order history"
        (https://docs.pacifica.fi/api-documentation/api/rest-api/orders/get-order-history):
        ``{"success": true, "data": [{"order_id", "client_order_id", "symbol",
        "side", "initial_price", "amount", "filled_amount", "order_status",
        "order_type", "reduce_only", "updated_at" (ms), ...}], "next_cursor",
        "has_more"}``. Unsigned. Raises the contract's errors; an entry that
        cannot be read makes the whole page OutcomeUnknown (a page read in part
        is not read). ``deadline``: the read's own (default the profile's).
        """
        body = self._get(HISTORY, {"account": self.account, "limit": HISTORY_LIMIT}, deadline)
        data = _unwrap(body)
        if not isinstance(data, list) or (isinstance(body, dict) and body.get("success") is not True):
            raise OutcomeUnknown("Pacifica's order history came in an unexpected shape")
        for o in data:
            if (
                not isinstance(o, dict)
                or as_id(o.get("order_id")) is None
                or not isinstance(o.get("order_status"), str)
                or not isinstance(o.get("updated_at"), int)
                or isinstance(o.get("updated_at"), bool)
            ):
                raise OutcomeUnknown("Pacifica's order history had an entry that cannot be read")
        return data

    history_read: Ahead[list[dict[str, Any]]] | None = None  # the order history read next to verification

    def read_history_ahead(self, result: ProfileResult) -> None:
        """Start :meth:`identify_cancelled`'s read of the order history now, in a thread of its own, so that it
        runs next to verification's read of the book instead of after it (one round trip instead of two).

        Called by the runner once the cancel-all was answered (the history it reads must hold its cancels),
        just before verification; only when :meth:`identify_cancelled` would read: a count to name, not a dry
        run, at least ``HISTORY_MIN_LEFT_S`` of the deadline left. The read gets ``HISTORY_MAX_S`` at most on a
        :meth:`~cancelctl.transport.Deadline.part` of the profile's deadline (verification's clock is not
        touched). Only the read moves: which entries name the cancel-all's orders is still decided after
        verification, from everything the run saw.
        """
        if not result.cancelled_count or self.cancel_all_ms is None or self.dry_run:
            return
        if self.deadline.remaining() < HISTORY_MIN_LEFT_S or self._http_client() is None:
            return
        part = self.deadline.part(HISTORY_MAX_S)
        self.history_read = Ahead(lambda: self.order_history(part))

    def identify_cancelled(self, result: ProfileResult) -> None:
        """After ``cancel_all_orders`` answered only a count: name the orders it cancelled from the order history.

        The history's orders with ``order_status`` "cancelled", updated from
        ``HISTORY_SLACK_MS`` before the cancel-all began to ``HISTORY_SLACK_MS``
        after now, within the cancel-all's scope (its symbols; not reduce-only
        under ``exclude_reduce_only``), not seen open by the verification and
        not cancelled by ID in this run, are taken as the
        cancel-all's only when there are exactly ``cancelled_count`` of them:
        any other number (an order another process cancelled meanwhile, a
        run a moment before, a page that does not reach back, clocks further
        apart than the slack) leaves the count alone, never a guess. Their details go into
        ``result.cancelled_orders`` (orders as :func:`_normalise` makes them,
        ``amount`` what was cancelled). Read-only, never raises, never
        changes the exit code; skipped with less than ``HISTORY_MIN_LEFT_S``
        of the deadline left, and given ``HISTORY_MAX_S`` at most. The read
        started by :meth:`read_history_ahead`, when there is one, is the one
        used.
        """
        if not result.cancelled_count or self.cancel_all_ms is None or self.dry_run:
            return
        ahead, self.history_read = self.history_read, None
        try:
            if ahead is not None:
                history = ahead.result()
            elif self.deadline.remaining() < HISTORY_MIN_LEFT_S:
                return
            else:
                with self.deadline.capped(HISTORY_MAX_S):
                    history = self.order_history()
        except CancelctlError:
            return
        known = set(result.cancelled) | set(result.unknown) | {r["id"] for r in result.rejected}
        known |= {str(i) for i in result.remaining or []}  # seen open after the cancel: not cancelled by it
        symbols, kept_reduce_only = self.cancel_all_scope
        since, until = self.cancel_all_ms - HISTORY_SLACK_MS, now_ms() + HISTORY_SLACK_MS
        hits = [
            o
            for o in history
            if o["order_status"] == "cancelled"
            and since <= o["updated_at"] <= until
            and cast(str, as_id(o["order_id"])) not in known
            and (symbols is None or str(o.get("symbol")).upper() in symbols)  # outside its scope: not its cancel
            and not (kept_reduce_only and o.get("reduce_only") is not False)
        ]
        ids = {as_id(o["order_id"]) for o in hits}
        if len(hits) != result.cancelled_count or len(ids) != len(hits):
            return
        result.cancelled_orders = [
            _normalise({**o, "price": o.get("initial_price"), "initial_amount": o.get("amount")}) for o in hits
        ]

    def open_twap_orders(self) -> list[OpenOrder]:
        """``GET /orders/twap?account=``: the open TWAP orders (not in ``GET /orders``).

        Same dicts as :meth:`open_orders`, with ``twap`` true, ``price``
        None and ``amount`` what is left to fill (``initial_amount`` -
        ``filled_amount``). Source:
        https://docs.pacifica.fi/api-documentation/api/rest-api/twap/get-open-twap-orders.
        Raises the contract's errors; an entry that cannot be read is
        OutcomeUnknown (a list read in part is a list not read).
        """
        body = self._get(TWAP_ORDERS, {"account": self.account})
        if body is None:
            return []
        return self._twap_book(body)

    def _http_client(self) -> HTTPClient | None:
        """The profile's HTTP client, made now (before two threads could each make one); None when it cannot be
        made (the request that needs it then says why, as before)."""
        if self._client is None:
            try:
                self._client = new_client(self.profile.name)
            except CancelctlError:
                return None
        return self._client

    @staticmethod
    def _twap_book(body: object) -> list[OpenOrder]:
        """The entries of a ``GET /orders/twap`` answer; OutcomeUnknown unless every entry can be read."""
        return _book(body, "TWAP order list", _normalise_twap)

    def _get(self, path: str, query: dict[str, Any] | None = None, deadline: Deadline | None = None) -> object:
        """An unsigned GET (no body: the edge refuses a GET with one); the parsed answer, None in a dry run.
        ``deadline``: the read's own (a :meth:`~cancelctl.transport.Deadline.part`), default the profile's."""
        from urllib.parse import urlencode

        url = f"{self.profile.base_url}{path}" + (f"?{urlencode(query)}" if query else "")
        request = PreparedRequest(method="GET", url=url, headers={"Accept": "application/json"})
        return self._request(lambda ts: request, read=True, deadline=deadline)

    def positions(self) -> list[dict[str, Any]]:
        """``GET /positions?account=``: the open positions as rows of :mod:`cancelctl.positions`.

        Source: docs.pacifica.fi "Get positions"
        (https://docs.pacifica.fi/api-documentation/api/rest-api/account/get-positions):
        ``{"success", "data": [{"symbol", "side": "bid"|"ask", "amount",
        "entry_price", "margin", "funding", "isolated", "liquidation_price",
        "created_at", "updated_at"}], ...}``; ``bid`` is long, ``ask`` is
        short; no mark price or PnL in this answer. Unsigned, no body. An
        entry that cannot be read makes the whole read OutcomeUnknown.
        """
        from cancelctl import positions as pos

        body = self._get(POSITIONS, {"account": self.account})
        if body is None:  # dry run
            return []
        if isinstance(body, dict) and "success" in body and body.get("success") is not True:
            # an envelope without success (e.g. "database timeout" with data: []) is a list not read, never "flat"
            raise OutcomeUnknown("Pacifica did not confirm its position list (success is not true)")
        data = _unwrap(body)
        if not isinstance(data, list):
            raise OutcomeUnknown("Pacifica's position list came in an unexpected shape")
        rows = []
        for p in data:
            side = {"bid": "long", "ask": "short"}.get(str(p.get("side"))) if isinstance(p, dict) else None
            if side is None or not isinstance(p.get("symbol"), str):
                raise OutcomeUnknown("Pacifica's position list has an entry that cannot be read")
            amount = pos.decimal(p.get("amount"), "amount")
            if amount < 0:
                raise OutcomeUnknown("Pacifica's position list has a negative amount")
            if amount == 0:
                continue
            rows.append(pos.row(p["symbol"], side, amount, p.get("entry_price")))
        return rows

    def _lot_size(self, symbol: str) -> Decimal | None:
        """The market's ``lot_size`` from ``GET /info`` (None: no such market).

        Source: docs.pacifica.fi "Get market info" and "Tick and lot size"
        (https://docs.pacifica.fi/api-documentation/api/rest-api/markets/get-market-info):
        ``data: [{"symbol", "tick_size", "lot_size", "min_order_size", ...}]``;
        an order's amount must be a multiple of ``lot_size``. Read once per run.
        """
        from cancelctl import positions as pos

        if getattr(self, "_markets", None) is None:
            with self.live():
                body = self._get(INFO)
            data = _unwrap(body)
            if not isinstance(data, list):
                raise OutcomeUnknown("Pacifica's market info came in an unexpected shape")
            self._markets = {m["symbol"]: m for m in data if isinstance(m, dict) and isinstance(m.get("symbol"), str)}
        market = self._markets.get(symbol)
        if market is None:
            return None
        return pos.decimal(market.get("lot_size"), "lot_size")

    def close_position(self, position: dict[str, Any], slippage: Decimal, row: dict[str, Any]) -> None:
        """Close one position with a reduce-only market order, recording it in its ``closed`` ``row``. Never raises.

        (Rows: see :mod:`cancelctl.closing` and :func:`cancelctl.positions.close_row`.)

        ``POST /orders/create_market``, operation ``create_market_order``
        (Pacifica's Python SDK, https://github.com/pacifica-fi/python-sdk
        ``rest/create_market_order.py``; docs.pacifica.fi "Create market
        order"): ``symbol``, ``side`` (``ask`` sells a long, ``bid`` buys
        back a short), ``amount`` (the position's size rounded DOWN to the
        market's ``lot_size``), ``reduce_only: true`` (the venue refuses an
        order that would grow or flip the position), ``slippage_percent``
        (``--max-slippage``) and a fresh ``client_order_id`` (UUID). The
        answer names the order (``order_id``), not its fill: the row stays
        ``sent`` until the next read of the positions settles it. A lost
        answer is not resent; a refusal (a halted market, a reduce-only
        refusal) is given up.
        """
        import uuid

        from cancelctl import positions as pos

        try:
            lot = self._lot_size(position["symbol"])
        except CancelctlError as e:
            row.update(status="rejected", reason=f"not sent: market info not read: {e.message}")
            return
        if lot is None:
            row.update(
                status="rejected", reason="not a market in Pacifica's market info: not closed (not retried)",
                give_up=True,
            )
            return
        try:
            size = pos.round_size(Decimal(position["size"]), lot)
        except ArithmeticError:
            size = Decimal(0)
        if size <= 0:
            row.update(
                status="rejected", reason=f"position smaller than the lot size {pos.text(lot)}: not closed",
                give_up=True,
            )
            return
        cloid = str(uuid.uuid4())
        row.update(size=pos.text(size), client_order_id=cloid)
        payload = {
            "symbol": position["symbol"],
            "side": "ask" if position["side"] == "long" else "bid",
            "amount": pos.text(size),
            "reduce_only": True,
            "slippage_percent": pos.text(slippage),
            "client_order_id": cloid,
        }
        if self.dry_run:
            self._post(CREATE_MARKET, "create_market_order", payload)
            row["status"] = "dry-run"
            return
        answered, body = pos.send_close(
            row,
            lambda: self._request(
                lambda ts: self._prepare(CREATE_MARKET, "create_market_order", payload, ts), resend=False
            ),
        )
        if not answered:
            return
        data = _unwrap(body)
        order_id = as_id(data.get("order_id")) if isinstance(data, dict) else None
        named = data.get("client_order_id") if isinstance(data, dict) else None
        if named is not None and named != cloid:  # an answer about another order says nothing about this one
            row.update(status="unknown", reason="Pacifica's answer named another order", lost=True)
            return
        row.update(status="sent", order_id=order_id)


def _book(body: object, what: str, normalise: Callable[[dict[str, Any]], OpenOrder]) -> list[OpenOrder]:
    """The orders of a list answer (bare, or ``data`` of an envelope whose ``success`` is true), each through
    ``normalise``; OutcomeUnknown (``what`` names the list) unless every entry has a usable ``order_id`` and
    ``symbol``."""
    data = _unwrap(body)
    if not isinstance(data, list) or (isinstance(body, dict) and "success" in body and body.get("success") is not True):
        raise OutcomeUnknown(f"Pacifica's {what} came in an unexpected shape")
    orders = []
    for o in data:
        if (
            not isinstance(o, dict)
            or as_id(o.get("order_id")) is None
            or not (isinstance(o.get("symbol"), str) and SYMBOL.fullmatch(o["symbol"]))
        ):
            raise OutcomeUnknown(f"Pacifica's {what} had an entry that cannot be read (no usable order_id or symbol)")
        orders.append(normalise(o))
    return orders


def _remaining(o: dict[str, Any]) -> str | None:
    initial = o.get("initial_amount", o.get("amount"))
    try:
        left = (
            Decimal(str(initial))
            - Decimal(str(o.get("filled_amount") or 0))
            - Decimal(str(o.get("cancelled_amount") or 0))
        )
    except (InvalidOperation, ValueError):
        return initial
    return str(left)


def _normalise(o: dict[str, Any]) -> OpenOrder:
    order_type = str(o.get("order_type") or "")
    stop = bool(o.get("stop")) or order_type.startswith(("stop", "take_profit"))
    return {
        "order_id": cast(str, as_id(o.get("order_id"))),  # the caller keeps only orders with an ID
        "symbol": o.get("symbol"),
        "side": o.get("side"),
        "price": o.get("price"),
        "amount": _remaining(o),
        "client_order_id": o.get("client_order_id"),
        "reduce_only": bool(o.get("reduce_only")),
        "stop": stop,
        "order_type": order_type or None,
        "twap": False,
    }


def _normalise_twap(o: dict[str, Any]) -> OpenOrder:
    """An entry of ``GET /orders/twap`` as an order dict (``twap`` true)."""
    initial = o.get("initial_amount")
    try:
        left: object = str(Decimal(str(initial)) - Decimal(str(o.get("filled_amount") or 0)))
    except (InvalidOperation, ValueError):
        left = initial
    return {
        "order_id": cast(str, as_id(o.get("order_id"))),  # the caller keeps only orders with an ID
        "symbol": o.get("symbol"),
        "side": o.get("side"),
        "price": None,
        "amount": left,
        "client_order_id": o.get("client_order_id"),
        "reduce_only": bool(o.get("reduce_only")),
        "stop": False,
        "order_type": "twap",
        "twap": True,
    }
