"""Secrets: per-profile environment variables, then the OS keyring.

Resolution per field (``docs/credentials.md``):

1. ``CANCELCTL_<PROFILE>_<FIELD>`` (profile upper-cased, every character
   outside A-Z and 0-9 turned into ``_``), e.g. ``CANCELCTL_GEMINI_MAIN_API_SECRET``;
2. ``CANCELCTL_<PROFILE>_<FIELD>_FILE``: a path whose content is the value
   (systemd credentials, container secrets);
3. the OS keyring: service ``cancelctl``, user name = profile name, one
   entry per profile whose password is a JSON object of the fields.

Nothing here prints, logs or puts a secret into an exception message.
``keyring`` is imported only when a value is not in the environment.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cancelctl.errors import ConfigError, KeyringUnavailable
from cancelctl.redact import register
from cancelctl.venues.info import VENUES

SERVICE = "cancelctl"


def fields(venue: str) -> tuple[str, ...]:
    """The secret fields of ``venue`` (:attr:`cancelctl.venues.info.VenueInfo.secret_fields`); ConfigError (78) for
    no venue."""
    info = VENUES.get(venue)
    if info is None:
        raise ConfigError(f"unknown venue {venue!r}: one of {', '.join(VENUES)}")
    return info.secret_fields


class Credentials(Mapping[str, str]):
    """A profile's secret fields. ``repr`` and ``str`` never show a value."""

    __slots__ = ("_values", "sources")

    def __init__(self, values: dict[str, str], sources: dict[str, str] | None = None) -> None:
        self._values = dict(values)
        self.sources = sources or {}
        register(*self._values.values())  # every output is scrubbed of them from now on

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "Credentials(" + ", ".join(f"{k}=<redacted>" for k in self._values) + ")"

    __str__ = __repr__


def env_var(profile: str, field: str) -> str:
    """The environment variable that holds ``field`` of ``profile``."""
    return "CANCELCTL_" + re.sub(r"[^A-Z0-9]", "_", profile.upper()) + "_" + field.upper()


def clean_secret(value: str, what: str) -> str:
    """Strip surrounding white space (a pasted newline); reject anything else odd.

    Raises ConfigError (78) naming ``what`` but never the value.
    """
    value = value.strip()
    if not value:
        raise ConfigError(f"{what} is empty")
    if any(c.isspace() for c in value) or not value.isprintable() or not value.isascii():
        raise ConfigError(f"{what} contains white space or unprintable characters")
    return value


def set_command(profile: str) -> str:
    return f"cancelctl keys set {profile}"


def _from_env(profile: str, field: str) -> tuple[str, str] | None:
    name = env_var(profile, field)
    value = os.environ.get(name)
    if value is not None:
        return clean_secret(value, f"${name}"), name
    path = os.environ.get(name + "_FILE")
    if path:
        from cancelctl.files import read_text

        what = f"${name}_FILE ({path})"
        try:
            content = read_text(path, what)  # a FIFO or /dev/zero is a ConfigError, never a hang
        except FileNotFoundError:
            raise ConfigError(f"cannot read {what}: no such file") from None
        return clean_secret(content, what), name + "_FILE"
    return None


PASSPHRASE_VAR = "CANCELCTL_KEYRING_PASSPHRASE"
_UNLOCKING = threading.Lock()  # profiles resolve concurrently: one unlock, not one per thread


def _unlock_file_keyring(*, writing: bool = False) -> None:
    """Give the encrypted-file keyring (``keyrings.cryptfile``, extra ``cryptfile``) its passphrase.

    That backend asks for its passphrase with getpass: under cron it would
    wait for nobody, on a terminal the deadline would cut it off mid-prompt.
    cancelctl never lets it ask. The passphrase comes from
    ``$CANCELCTL_KEYRING_PASSPHRASE`` or the file named by
    ``$CANCELCTL_KEYRING_PASSPHRASE_FILE`` (one trailing newline stripped);
    without one, ConfigError (78) at once. Acts on a CryptFileKeyring that
    was selected (``PYTHON_KEYRING_BACKEND`` or keyringrc.cfg), and on one
    that keyring chained in by itself only once its file exists (before
    that a read cannot prompt), or before ``writing`` (``keys set``: the
    chain writes to it first, and creating its file prompts "Please set a
    password for your new keyring"). Runs inside the bounded keyring call:
    unlocking costs one Argon2 derivation (about a second).
    """
    import keyring

    backend = keyring.get_keyring()
    chain = tuple(getattr(backend, "backends", ()))
    with _UNLOCKING:
        _unlock_one(backend, chained=False, writing=writing)
        for i, b in enumerate(chain):
            # keyring's chain writes to its first backend only (ChainerBackend.set_password): a cryptfile keyring
            # behind a Secret Service is never created by the write, so it needs no passphrase before it.
            _unlock_one(b, chained=True, writing=writing and i == 0)


#: Where ``keyrings.cryptfile`` asks for its passphrase (``keyrings/cryptfile/file.py``, EncryptedKeyring): a subclass
#: that defines one of these itself has a passphrase source of its own and gets none from cancelctl.
_ASKS = ("keyring_key", "_unlock", "_init_keyring", "_get_new_password")


def _is_cryptfile(b: object) -> bool:
    """``keyrings.cryptfile``'s ``CryptFileKeyring`` or a subclass of it (a user's own Argon2 costs, say:
    ``time_cost``, ``memory_cost`` and ``parallelism`` are class attributes there) that asks for its passphrase as
    the class does (with getpass); told by name, so that checking never imports the extra. A subclass that gets its
    passphrase itself (it overrides one of :data:`_ASKS`: an agent, a TPM) is left alone, as before subclasses were
    recognised: demanding ``$CANCELCTL_KEYRING_PASSPHRASE`` of it would turn a working keyring into 78."""
    mro = type(b).__mro__
    if not any(c.__module__ == "keyrings.cryptfile.cryptfile" and c.__name__ == "CryptFileKeyring" for c in mro):
        return False
    for name in _ASKS:
        owner = next((c for c in mro if name in vars(c)), None)
        if owner is None or not owner.__module__.startswith("keyrings.cryptfile."):
            return False
    return True


def _unlock_one(b: Any, *, chained: bool, writing: bool = False) -> None:
    """One backend of :func:`_unlock_file_keyring`; ConfigError (78) when it needs a passphrase it cannot have."""
    if not _is_cryptfile(b) or getattr(b, "_keyring_key", None) is not None:
        return
    if chained and not writing and not os.path.exists(b.file_path):
        return
    passphrase = os.environ.get(PASSPHRASE_VAR)
    path = os.environ.get(PASSPHRASE_VAR + "_FILE")
    if passphrase is None and path:
        from cancelctl.files import read_text

        what = f"${PASSPHRASE_VAR}_FILE ({path})"
        try:
            passphrase = read_text(path, what)
        except FileNotFoundError:
            raise ConfigError(f"cannot read {what}: no such file") from None
    passphrase = (passphrase or "").rstrip("\r\n")
    if not passphrase.strip():
        raise ConfigError(
            f"the encrypted-file keyring needs its passphrase in ${PASSPHRASE_VAR} or ${PASSPHRASE_VAR}_FILE "
            "(cancelctl never prompts for it)"
        )
    register(passphrase)
    try:
        b.keyring_key = passphrase  # checks it against the file, or creates the file with it
    except ValueError:
        del b.keyring_key  # not kept half-set for the next profile
        raise ConfigError(
            f"wrong passphrase for the encrypted-file keyring {b.file_path}",
            hint=f"check ${PASSPHRASE_VAR} / ${PASSPHRASE_VAR}_FILE",
        ) from None


def _keyring_call(fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """Run one keyring call in a thread so a blocked backend cannot hold the run.

    Returns the call's value; raises ConfigError (78) on keyring errors or
    when ``timeout`` (s) passes first.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            _unlock_file_keyring()
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - carried to the caller
            box["error"] = e

    t = threading.Thread(target=run, name="keyring", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise KeyringUnavailable(
            f"the OS keyring did not answer within {timeout:.1f} s",
            hint="unlock it, or use environment variables (see docs/credentials.md)",
        )
    if "error" in box:
        err = box["error"]
        if isinstance(err, ConfigError):  # already one line with its fix (_unlock_file_keyring)
            raise err from None
        raise KeyringUnavailable(
            f"the OS keyring is unusable: {type(err).__name__}",
            hint="use CANCELCTL_<PROFILE>_<FIELD> environment variables on headless machines (docs/credentials.md)",
        ) from None
    return box.get("value")


def _keyring_get(profile: str, timeout: float) -> dict[str, str]:
    import keyring

    raw = _keyring_call(keyring.get_password, SERVICE, profile, timeout=timeout)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"the keyring entry for profile {profile!r} is damaged", hint=f"run: {set_command(profile)}")
    return data


def resolve(profile: str, venue: str, *, timeout: float = 5.0) -> Credentials:
    """Every secret field of ``profile`` on ``venue``.

    Environment first, keyring for what is left (one keyring read at most,
    bounded by ``timeout`` seconds). Raises ConfigError (exit 78) with the
    exact fix when a field is missing or the keyring is unusable.
    """
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    wanted = fields(venue)
    for field in wanted:
        found = _from_env(profile, field)
        if found:
            values[field], sources[field] = found
    missing = [f for f in wanted if f not in values]
    if missing:
        try:
            stored = _keyring_get(profile, timeout)
        except ConfigError as e:
            env = " and ".join("$" + env_var(profile, f) for f in missing)
            raise ConfigError(
                f"no {', '.join(missing)} for profile {profile!r}: {e.message}",
                hint=f"set {env}, or run {set_command(profile)} where a keyring works",
            ) from None
        for field in missing:
            if field in stored:
                values[field] = clean_secret(stored[field], f"the keyring's {field} for profile {profile!r}")
                sources[field] = "keyring"
    missing = [f for f in wanted if f not in values]
    if missing:
        names = ", ".join(missing)
        env = " / ".join("$" + env_var(profile, f) for f in missing)
        raise ConfigError(
            f"no {names} for profile {profile!r}",
            hint=f"run: {set_command(profile)}   (or set {env})",
        )
    return Credentials(values, sources)


UNUSABLE_BACKENDS = ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring")


def require_keyring(profile: str, venue: str, *, timeout: float = 10.0) -> None:
    """Raise KeyringUnavailable (78) unless the OS keyring can hold ``profile``'s secrets; asks for nothing.

    ``keys set`` calls it before prompting, so nobody types secrets for a keyring that cannot keep them. The
    backend must be a real one (not keyring's ``fail`` or ``null`` backend) and must answer a read of the
    profile's entry within ``timeout`` seconds (a locked or silent keyring is caught here, not after the paste).
    """
    import keyring

    names = " and ".join("$" + env_var(profile, f) for f in fields(venue))
    hint = (
        f"set {names} (or their *_FILE forms) instead, or install a keyring, e.g. the encrypted file of "
        "pip install 'cancelctl[cryptfile]' (docs/credentials.md)"
    )
    try:
        backend = _keyring_call(keyring.get_keyring, timeout=timeout)
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        if name in UNUSABLE_BACKENDS:
            raise KeyringUnavailable(f"no usable OS keyring (backend {name}): nothing would be stored", hint=hint)
        # An encrypted-file keyring the chain would create on the write asks for a new passphrase then: it gets
        # cancelctl's (or the run stops here, 78 naming the variable), never a prompt after the secrets were given.
        _keyring_call(lambda: _unlock_file_keyring(writing=True), timeout=timeout)
        _keyring_call(keyring.get_password, SERVICE, profile, timeout=timeout)  # the entry is not parsed
    except KeyringUnavailable as e:
        raise KeyringUnavailable(e.message, hint=hint) from None


def store(profile: str, values: dict[str, str], *, timeout: float = 10.0) -> None:
    """Save ``values`` as the profile's keyring entry (replacing it). ConfigError on failure."""
    import keyring

    _keyring_call(keyring.set_password, SERVICE, profile, json.dumps(values), timeout=timeout)


def delete(profile: str, *, timeout: float = 10.0) -> bool:
    """Remove the profile's keyring entry; False when there was none."""
    import keyring
    import keyring.errors

    def _delete(service: str, user: str) -> bool:
        try:
            keyring.delete_password(service, user)
        except keyring.errors.PasswordDeleteError:
            return False
        return True

    return bool(_keyring_call(_delete, SERVICE, profile, timeout=timeout))


def presence(profile: str, venue: str, *, timeout: float = 5.0, ask_keyring: bool = True) -> dict[str, str | None]:
    """For each field, where it would come from ('env', 'file', 'keyring') or None. No values.

    The keyring is read (once, bounded by ``timeout`` s) only for fields not
    in the environment, and never with ``ask_keyring=False``. ConfigError
    (78) when the keyring is unusable or does not answer.
    """
    result: dict[str, str | None] = {}
    stored: dict[str, str] | None = None
    for field in fields(venue):
        name = env_var(profile, field)
        if name in os.environ:
            result[field] = "env"
        elif os.environ.get(name + "_FILE"):
            result[field] = "file"
        elif not ask_keyring:
            result[field] = None
        else:
            if stored is None:
                stored = _keyring_get(profile, timeout)
            result[field] = "keyring" if field in stored else None
    return result


def backend_name(timeout: float = 5.0) -> str:
    """The keyring backend's class name, for ``keys list`` and ``doctor``."""
    import keyring

    backend = _keyring_call(keyring.get_keyring, timeout=timeout)
    return f"{type(backend).__module__}.{type(backend).__name__}"
