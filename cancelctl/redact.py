"""The secret registry and :func:`scrub`: a leaf module (imports nothing of cancelctl).

Every secret resolved in this process is registered here, so every output
(stdout, stderr, the audit log, a ``--debug`` traceback) can be scrubbed of
them as a last line of defence (nothing is meant to print one in the first
place). :class:`cancelctl.credentials.Credentials` registers its values
when it is made; the keyring passphrase is registered when it is read.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``<redacted>``."""
    for secret in SECRETS:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
