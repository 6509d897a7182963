"""A keyring backend that never answers in time: the "locked keyring waiting for a password prompt" case.

Tests load it in the cancelctl process with
``PYTHON_KEYRING_BACKEND=slow_keyring.SlowKeyring`` and this directory on
``PYTHONPATH``. Every call sleeps ``SLOW_KEYRING_SECONDS`` (default 60 s).
"""

from __future__ import annotations

import os
import time

from keyring.backend import KeyringBackend


def _stall() -> None:
    time.sleep(float(os.environ.get("SLOW_KEYRING_SECONDS", "60")))


class SlowKeyring(KeyringBackend):
    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        _stall()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        _stall()

    def delete_password(self, service: str, username: str) -> None:
        _stall()
