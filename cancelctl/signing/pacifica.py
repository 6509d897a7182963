"""Pacifica REST signing (pure: no clock, no network, no files).

Sources: Pacifica's API docs, "Signing" (https://docs.pacifica.fi/api-documentation/api/signing:
Implementation, Operation Types), "Cancel order", "Cancel all orders",
"Cancel stop order", "Batch order"
(https://docs.pacifica.fi/api-documentation/api/rest-api/orders/...); Pacifica's Python SDK
(https://github.com/pacifica-fi/python-sdk, ``common/utils.py``: ``sign_message``, ``sort_json_keys``,
``prepare_message``); vectors produced by that SDK in
``tests/vectors/pacifica.json``.

1. message object = ``{"timestamp": <ms>, "expiry_window": <ms>, "type":
   <operation type>, "data": <payload>}`` (SDK ``prepare_message``);
2. keys sorted at every depth, compact JSON (``,`` ``:``), ASCII
   (``json.dumps(sort_keys=True, separators=(",", ":"))``);
3. Ed25519 over the UTF-8 bytes of that text, no prefix, no hash; the
   64-byte signature base58-encoded (Bitcoin alphabet);
4. the body sent is ``{"account", ["agent_wallet"], "signature",
   "timestamp", "expiry_window", **payload}``: ``type`` and the ``data``
   wrapper are signed but never sent, ``agent_wallet`` is sent but never
   signed (docs "Signing", "Agent wallets"). There is no nonce: a request
   is valid until ``timestamp + expiry_window`` ms.

Times are integers in milliseconds since the epoch; the caller supplies
them, so every function here is deterministic.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cancelctl.signing import PreparedRequest

if TYPE_CHECKING:
    from nacl.signing import SigningKey

EXPIRY_WINDOW_MS = 5_000  # docs "Signing": expiry_window in ms; SDK examples use 5000
BATCH_LIMIT = 10  # docs "Batch order": at most 10 actions per request
BATCH_PATH = "/orders/batch"
CANCEL_OP = "cancel_order"  # the only operation a batch "Cancel" action carries
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def message_object(op_type: str, payload: dict[str, Any], timestamp_ms: int, expiry_window_ms: int) -> dict[str, Any]:
    """``{"timestamp", "expiry_window", "type", "data": payload}`` (SDK ``prepare_message``)."""
    return {"timestamp": timestamp_ms, "expiry_window": expiry_window_ms, "type": op_type, "data": dict(payload)}


def sign_message(op_type: str, payload: dict[str, Any], timestamp_ms: int, expiry_window_ms: int) -> str:
    """The exact text that is signed: the message object, keys sorted at every depth, compact ASCII JSON.

    ``op_type`` is the docs' "Operation Type" (``cancel_order``,
    ``cancel_all_orders``, ``cancel_stop_order``); ``payload`` the
    endpoint's fields exactly as they will be sent (no null placeholders).
    """
    return json.dumps(
        message_object(op_type, payload, timestamp_ms, expiry_window_ms), sort_keys=True, separators=(",", ":")
    )


def sign(signing_key: SigningKey, message: str) -> str:
    """Base58 of the 64-byte Ed25519 signature of ``message``'s UTF-8 bytes.

    ``signing_key`` is a ``nacl.signing.SigningKey`` (the 32-byte seed half
    of the Solana secret key).
    """
    import base58

    return base58.b58encode(signing_key.sign(message.encode("utf-8")).signature).decode("ascii")


def body(
    *,
    account: str,
    signature: str,
    timestamp_ms: int,
    expiry_window_ms: int,
    payload: dict[str, Any],
    agent_wallet: str | None = None,
) -> dict[str, Any]:
    """The wire body: ``{"account", ["agent_wallet"], "signature", "timestamp", "expiry_window", **payload}``.

    Key order follows the SDK's examples (``rest/cancel_order.py``); the
    server does not depend on it. ``agent_wallet`` only when given.
    """
    out: dict[str, Any] = {"account": account}
    if agent_wallet:
        out["agent_wallet"] = agent_wallet
    out.update(signature=signature, timestamp=timestamp_ms, expiry_window=expiry_window_ms)
    for key, value in payload.items():
        if key in out:
            raise ValueError(f"payload field {key!r} collides with a header field")
        out[key] = value
    return out


def signed_body(
    *,
    op_type: str,
    payload: dict[str, Any],
    account: str,
    agent_wallet: str | None,
    signing_key: SigningKey,
    timestamp_ms: int,
    expiry_window_ms: int = EXPIRY_WINDOW_MS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(wire body, signed message object) for one operation."""
    text = sign_message(op_type, payload, timestamp_ms, expiry_window_ms)
    wire = body(
        account=account,
        agent_wallet=agent_wallet,
        signature=sign(signing_key, text),
        timestamp_ms=timestamp_ms,
        expiry_window_ms=expiry_window_ms,
        payload=payload,
    )
    return wire, json.loads(text)


def _json_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _post(url: str, wire: dict[str, Any], signed: dict[str, Any]) -> PreparedRequest:
    """The signed JSON ``POST`` of ``wire`` to ``url``; every ``signature`` field redacted in a dry run's output,
    ``signed`` (what was signed, no secret) as its summary."""
    return PreparedRequest(
        method="POST",
        url=url,
        headers=dict(HEADERS),
        content=_json_bytes(wire),
        secret_body_keys=("signature",),
        summary=signed,
    )


def prepare(
    *,
    base_url: str,
    path: str,
    op_type: str,
    payload: dict[str, Any],
    account: str,
    agent_wallet: str | None,
    signing_key: SigningKey,
    timestamp_ms: int,
    expiry_window_ms: int = EXPIRY_WINDOW_MS,
) -> PreparedRequest:
    """The signed ``POST base_url + path`` (e.g. ``/orders/cancel_all``) with a JSON body.

    ``base_url`` ends in ``/api/v1`` and has no trailing slash. ``summary``
    is the signed message object (what was signed, no secret); the
    ``signature`` body field is marked secret for ``--dry-run`` output.
    """
    wire, signed = signed_body(
        op_type=op_type,
        payload=payload,
        account=account,
        agent_wallet=agent_wallet,
        signing_key=signing_key,
        timestamp_ms=timestamp_ms,
        expiry_window_ms=expiry_window_ms,
    )
    return _post(base_url + path, wire, signed)


def prepare_batch(
    *,
    base_url: str,
    payloads: list[dict[str, Any]],
    account: str,
    agent_wallet: str | None,
    signing_key: SigningKey,
    timestamp_ms: int,
    expiry_window_ms: int = EXPIRY_WINDOW_MS,
) -> PreparedRequest:
    """``POST /orders/batch`` cancelling ``payloads`` (1 to 10 ``cancel_order`` payloads), run in order.

    Body: ``{"actions": [{"type": "Cancel", "data": <complete signed
    cancel_order body>}, ...]}``. A batch is not signed as a whole; each
    action is signed on its own with operation type ``cancel_order`` (docs
    "Batch order"; the action tag ``Cancel`` is case-sensitive and differs
    from the signing type). ``summary`` lists each action's signed message.
    """
    if not 1 <= len(payloads) <= BATCH_LIMIT:
        raise ValueError(f"a batch carries 1 to {BATCH_LIMIT} actions, not {len(payloads)}")
    actions, signed = [], []
    for payload in payloads:
        wire, message = signed_body(
            op_type=CANCEL_OP,
            payload=payload,
            account=account,
            agent_wallet=agent_wallet,
            signing_key=signing_key,
            timestamp_ms=timestamp_ms,
            expiry_window_ms=expiry_window_ms,
        )
        actions.append({"type": "Cancel", "data": wire})
        signed.append({"type": "Cancel", "signed": message})
    return _post(base_url + BATCH_PATH, {"actions": actions}, {"actions": signed})
