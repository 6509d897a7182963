"""Gemini private REST signing (pure).

Source: Gemini API docs, "Private API invocation"
(https://developer.gemini.com/authentication/api-key), checked against
ccxt 4.5.90 ``gemini.sign()``; vectors in ``tests/vectors/gemini.json``.

1. payload = JSON object ``{"request": <path>, "nonce": <nonce>, **fields}``;
2. ``X-GEMINI-PAYLOAD`` = standard base64 of the JSON text;
3. ``X-GEMINI-SIGNATURE`` = lowercase hex HMAC-SHA384(key = API secret as
   UTF-8, message = the base64 text);
4. POST, empty body, ``Content-Type: text/plain``, ``Content-Length: 0``,
   ``Cache-Control: no-cache``, ``X-GEMINI-APIKEY``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cancelctl.signing import PreparedRequest


def payload_b64(payload_json: str) -> str:
    """Standard base64 (with padding) of the payload's JSON text."""
    return base64.b64encode(payload_json.encode("utf-8")).decode("ascii")


def signature(api_secret: str, b64: str) -> str:
    """Lowercase hex HMAC-SHA384 of the base64 text, keyed with the secret (UTF-8)."""
    return hmac.new(api_secret.encode("utf-8"), b64.encode("ascii"), hashlib.sha384).hexdigest()


def payload_json(path: str, nonce: str, fields: dict[str, Any]) -> str:
    """Compact JSON: request, nonce (a string), then ``fields`` in order (ccxt's layout)."""
    return json.dumps({"request": path, "nonce": nonce, **fields}, separators=(",", ":"))


def sign(
    *, api_key: str, api_secret: str, base_url: str, path: str, nonce: str, fields: dict[str, Any] | None = None
) -> PreparedRequest:
    """Build the signed POST for ``path`` (e.g. ``/v1/order/cancel/all``).

    ``nonce`` is the decimal text of the nonce (milliseconds, or seconds for
    time-based keys); ``fields`` are the endpoint's extra payload fields
    (``order_id``, ``account``). ``base_url`` has no trailing slash.
    """
    text = payload_json(path, nonce, dict(fields or {}))
    b64 = payload_b64(text)
    headers = {
        "Content-Type": "text/plain",
        "Content-Length": "0",
        "Cache-Control": "no-cache",
        "X-GEMINI-APIKEY": api_key,
        "X-GEMINI-PAYLOAD": b64,
        "X-GEMINI-SIGNATURE": signature(api_secret, b64),
    }
    return PreparedRequest(
        method="POST",
        url=base_url + path,
        headers=headers,
        secret_headers=("X-GEMINI-APIKEY", "X-GEMINI-SIGNATURE"),
        summary=json.loads(text),
    )
