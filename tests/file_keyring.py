"""A keyring backend that keeps its entries in a plain JSON file: a fast, real backend for tests of keyring use.

Tests load it in the cancelctl process with
``PYTHON_KEYRING_BACKEND=file_keyring.FileKeyring``, this directory on
``PYTHONPATH`` and ``FILE_KEYRING_PATH`` naming the file (the encrypted-file
keyring of tests/test_keyring_cryptfile.py costs an Argon2 derivation, about a
second, per process). Test data only: never a place for a real secret.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


def _path() -> Path:
    return Path(os.environ["FILE_KEYRING_PATH"])


def _load() -> dict[str, str]:
    path = _path()
    return json.loads(path.read_text()) if path.exists() else {}


class FileKeyring(KeyringBackend):
    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        return _load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = _load()
        entries[f"{service}/{username}"] = password
        _path().write_text(json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = _load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("no such entry")
        _path().write_text(json.dumps(entries))
