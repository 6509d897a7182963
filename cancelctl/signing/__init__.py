"""Pure request signing: inputs in, a :class:`PreparedRequest` out, no I/O.

Each venue has its own module here; transport (``cancelctl.transport``)
sends what these functions return and nothing else touches the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PreparedRequest:
    """A fully signed HTTP request, ready to send.

    ``secret_headers`` names the headers that must never be shown
    (API key, signature); ``secret_body_keys`` the body fields likewise
    (Pacifica ``signature``). ``summary`` is a redaction-free, secret-free
    description of what the request does (decoded payload), for ``--dry-run``.
    """

    method: str
    url: str
    headers: dict[str, str]
    content: bytes = b""
    secret_headers: tuple[str, ...] = ()
    secret_body_keys: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)

    def redacted(self) -> dict[str, Any]:
        """A JSON-able view with every secret header and body field replaced."""
        import json

        headers = {k: ("<redacted>" if k in self.secret_headers else v) for k, v in self.headers.items()}
        body: object = None
        if self.content:
            try:
                body = _redact_body(json.loads(self.content), self.secret_body_keys)
            except ValueError:
                body = "<binary>"
        return {"method": self.method, "url": self.url, "headers": headers, "body": body, "signed": self.summary}


def _redact_body(value: object, keys: tuple[str, ...]) -> object:
    if isinstance(value, dict):
        return {k: ("<redacted>" if k in keys else _redact_body(v, keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_body(v, keys) for v in value]
    return value
