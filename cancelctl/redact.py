"""The secret registry and :func:`scrub`: a leaf module (imports nothing of cancelctl).

Every secret resolved in this process is registered here, so every output
(stdout, stderr, the audit log, a ``--debug`` traceback) can be scrubbed of
them as a last line of defence (nothing is meant to print one in the first
place). :class:`cancelctl.credentials.Credentials` registers its values
when it is made; the keyring passphrase is registered when it is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MIN_SCRUBBED = 8  # characters; no real credential is shorter
REDACTED = "<redacted>"


class _Secrets(set[str]):
    """A set that keeps only values of ``MIN_SCRUBBED`` characters or more.

    Scrubbing a one-character "secret" (a mistyped key) would replace every
    ``1`` of the output and break the ``--json`` document; a value that
    short protects nothing anyway.
    """

    def add(self, value: str) -> None:
        if isinstance(value, str) and len(value) >= MIN_SCRUBBED:
            super().add(value)

    def update(self, *groups: Iterable[str]) -> None:
        for group in groups:
            for value in group:
                self.add(value)


# Every secret resolved in this process.
SECRETS: set[str] = _Secrets()


def register(*values: str) -> None:
    """Remember ``values`` as secrets to scrub from every output (values shorter than ``MIN_SCRUBBED`` are ignored)."""
    SECRETS.update(values)


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every registered secret (or each of ``secrets``, in that order) replaced by ``<redacted>``."""
    for secret in SECRETS if secrets is None else secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_data(value: object) -> object:
    """``value`` (JSON-shaped: dict, list, str, numbers) with every registered secret replaced inside each string value.

    Keys are left alone: they are cancelctl's own field names. Used before
    a document is serialised, so a secret that happens to equal a JSON
    token or a field name (``exit_code``, ``cancelled``) can never break
    the document's structure.
    """
    strings: list[str] = []
    _strings(value, strings)
    # Only the secrets found somewhere in the document are looked for in each of its strings: a hundred
    # profiles' report holds thousands of strings and their credentials a few hundred secrets (about 40 ms of
    # the guard's main thread for one audit line, docs/performance.md). The joined text holds every string, so
    # nothing is missed; a secret that spans two strings only costs a useless look. A secret holding
    # REDACTED could appear once another is replaced: it stays in, as :func:`scrub` would see it.
    joined = "\0".join(strings)
    present = [secret for secret in SECRETS if secret and (secret in joined or REDACTED in secret)]
    return _scrubbed(value, present)


def _strings(value: object, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, into)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _strings(v, into)


def _scrubbed(value: object, secrets: list[str]) -> object:
    """:func:`scrub_data` with only ``secrets`` looked for (in :data:`SECRETS`' order, as :func:`scrub`)."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {k: _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v, secrets) for v in value]
    return value


def dumps(doc: object, **kw: Any) -> str:
    """``json.dumps(doc, **kw)`` with secrets redacted value by value first; the text is not edited afterwards."""
    import json

    return json.dumps(scrub_data(doc), **kw)


def looks_secret(word: str) -> bool:
    """True for a command-line word that could be a pasted credential: long, no spaces, random-looking.

    At least 16 characters, not an option, not a path, and made of letters
    and digits (base58, base64, hex, ``account-...`` keys) with both kinds
    present. Order IDs (digits only) and words of a sentence do not match.
    Used on the error path: such a word is registered (:func:`register`)
    so no error line, JSON document or audit line echoes it.
    """
    if len(word) < 16 or word.startswith("-") or "/" in word or any(c.isspace() for c in word):
        return False
    core = word.replace("-", "").replace("_", "").replace("+", "").replace("=", "")
    return core.isascii() and core.isalnum() and any(c.isdigit() for c in core) and any(c.isalpha() for c in core)
