"""Profiles: the TOML config file, its directories, and profile selection.

The file is ``$CANCELCTL_CONFIG_DIR/config.toml``, else ``config.toml`` in
the platform's user config dir for ``cancelctl`` (platformdirs). It holds no
secrets. Layout (README.md, "One-minute setup"; venues and environments
from :mod:`cancelctl.venues.info`)::

    default_profile = "main"
    [profiles.main]
    venue = "gemini"            # gemini | pacifica
    environment = "production"  # gemini: production | sandbox; pacifica: mainnet | testnet
    account = "primary"         # gemini: sub-account name, only for master keys
    base_url = "http://127.0.0.1:8080"   # optional
    nonce = "time-based"        # gemini only, optional
    agent_wallet = "..."        # pacifica only, optional

Errors: :class:`~cancelctl.errors.ConfigError` (exit 78) for an unreadable
or invalid file or a selection that cannot be made.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cancelctl.errors import CancelctlError, ConfigError, UsageProblem
from cancelctl.venues.info import VENUES

NONCE_MODES = ("milliseconds", "time-based")
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Profile:
    """One configured account on one venue (no secrets)."""

    name: str
    venue: str
    environment: str
    account: str | None = None
    base_url_override: str | None = None
    nonce: str = "milliseconds"
    agent_wallet: str | None = None
    broken: ConfigError | None = None  # why this profile's table cannot be used (lenient loading only)
    # a broken profile's table as the file has it: written back unchanged by save(), so that adding or removing
    # another profile never loses what the user wrote, nor turns it into something else
    raw: Any = field(default=None, compare=False, hash=False, repr=False)

    @property
    def base_url(self) -> str:
        """The venue's REST root for this profile, without a trailing slash."""
        return (self.base_url_override or VENUES[self.venue].environments[self.environment]).rstrip("/")

    def to_toml(self) -> dict[str, Any]:
        if self.broken is not None:
            return self.raw  # type: ignore[no-any-return]  # whatever the file had, a table or not
        data: dict[str, Any] = {"venue": self.venue, "environment": self.environment}
        if self.account:
            data["account"] = self.account
        if self.base_url_override:
            data["base_url"] = self.base_url_override
        if "nonce" in VENUES[self.venue].profile_keys and self.nonce != "milliseconds":
            data["nonce"] = self.nonce
        if self.agent_wallet:
            data["agent_wallet"] = self.agent_wallet
        return data


@dataclass
class Config:
    path: Path
    profiles: dict[str, Profile]
    default_profile: str | None = None
    exists: bool = True
    default_error: ConfigError | None = None  # an invalid default_profile, raised only when selection needs it
    default_raw: Any = None  # that invalid default_profile as written: kept by save() until the user changes it
    other: dict[str, Any] | None = None  # every other top-level key ([notify]...): kept as it is by save()


def config_dir() -> Path:
    """``$CANCELCTL_CONFIG_DIR``, else the platform's user config dir."""
    env = os.environ.get("CANCELCTL_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs  # only when the variable is not set

    return Path(platformdirs.user_config_dir("cancelctl", appauthor=False))


def state_dir() -> Path:
    """``$CANCELCTL_STATE_DIR``, else the platform's user state dir (nonces, audit log)."""
    env = os.environ.get("CANCELCTL_STATE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("cancelctl", appauthor=False))


def private_dir(path: Path) -> Path:
    """Make ``path`` and any missing parent; each directory made here is 0700 whatever the umask.

    ``mkdir(mode=...)`` is filtered by the umask (a umask of 0277 would
    leave the owner unable to write), so the mode is set again with chmod.
    Raises OSError when it cannot.
    """
    missing = []
    p = Path(path)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)
    return Path(path)


def config_path() -> Path:
    return config_dir() / "config.toml"


def validate_profile_name(name: str) -> str:
    if not PROFILE_NAME.fullmatch(name or ""):
        raise UsageProblem(
            f"invalid profile name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def parse_profile(name: str, table: object, where: str) -> Profile:
    """Build a :class:`Profile` from one ``[profiles.NAME]`` table; ConfigError if invalid."""
    if not PROFILE_NAME.fullmatch(name):
        raise ConfigError(f"{where}: invalid profile name {name!r}")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [profiles.{name}] must be a table")
    venue = table.get("venue")
    if not isinstance(venue, str) or venue not in VENUES:
        raise ConfigError(f"{where}: profile {name!r}: venue must be one of {', '.join(VENUES)}, not {venue!r}")
    info = VENUES[venue]
    unknown = set(table) - info.profile_keys
    if unknown:
        keys = ", ".join(sorted(map(str, unknown)))
        raise ConfigError(f"{where}: profile {name!r}: unknown key(s) {keys} for venue {venue}")
    for key, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}: profile {name!r}: {key} must be a string")
    environment = table.get("environment", info.default_environment)
    if environment not in info.environments:
        raise ConfigError(
            f"{where}: profile {name!r}: environment for {venue} must be one of {', '.join(info.environments)}, "
            f"not {environment!r}"
        )
    base_url = table.get("base_url")
    if base_url is not None and "@" in base_url.partition("://")[2].partition("/")[0]:
        # user:password@host: no venue takes one, and the URL is said in errors and shown by `profiles list`
        raise ConfigError(
            f"{where}: profile {name!r}: base_url must not carry a user name or password (the part before '@')",
            hint="remove it from base_url; the venue's credentials go in the keyring, the environment or *_FILE",
        )
    if base_url is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", base_url):
        raise ConfigError(f"{where}: profile {name!r}: base_url must be an http(s) URL, not {base_url!r}")
    if base_url is not None and base_url.startswith("http://") and not _loopback(base_url):
        raise ConfigError(
            f"{where}: profile {name!r}: base_url {base_url!r} would send the API key and signatures in clear",
            hint="use https://; http:// is only for a simulator on 127.0.0.1 or localhost",
        )
    nonce = table.get("nonce", "milliseconds")
    if nonce not in NONCE_MODES:
        raise ConfigError(f"{where}: profile {name!r}: nonce must be one of {', '.join(NONCE_MODES)}, not {nonce!r}")
    account = table.get("account") or None
    if account is not None and (len(account) > 128 or not account.isprintable()):
        raise ConfigError(f"{where}: profile {name!r}: account is not a valid name")
    return Profile(
        name=name,
        venue=venue,
        environment=environment,
        account=account,
        base_url_override=base_url,
        nonce=nonce,
        agent_wallet=table.get("agent_wallet") or None,
    )


def _loopback(url: str) -> bool:
    """True when ``url``'s host is this machine: ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _broken(name: str, table: object, error: ConfigError) -> Profile:
    """A placeholder for a profile whose table is unusable: it carries the error and never sends anything."""
    venue = table.get("venue") if isinstance(table, dict) else None
    return Profile(
        name=str(name),
        venue=venue if isinstance(venue, str) and venue.isprintable() and len(venue) <= 32 else "?",
        environment="",
        broken=error,
        raw=table,
    )


def load(path: Path | None = None, *, strict: bool = True) -> Config:
    """Read and validate the config file. A missing file is an empty config.

    Raises ConfigError (exit 78) naming the file for unreadable TOML or
    invalid values. With ``strict=False`` (the cancel commands, contract
    "A broken profile never disarms the others") an unusable profile table
    (unknown venue, a misspelt key) becomes a :class:`Profile` whose
    ``broken`` holds its error, and an invalid ``default_profile`` is kept
    in ``default_error``; only a file that cannot be read or parsed raises.
    """
    from cancelctl.files import read_regular

    path = path or config_path()
    try:
        raw = read_regular(path, str(path))  # a FIFO, a device or a huge file is a ConfigError, never a hang
    except FileNotFoundError:
        return Config(path=path, profiles={}, exists=False)
    key = (str(path), strict)
    last = _parsed.get(key)
    if last is not None and last[0] == raw:  # the same bytes as the last read: the same Config, a copy of its own
        return _fresh(last[1])
    config = _load(path, raw, strict)
    if config.default_error is None and not any(p.broken is not None for p in config.profiles.values()):
        _parsed[key] = (raw, _fresh(config))
    return config


#: The last config read in this process, per (path, strict): its bytes and the Config they gave. A guard reads the
#: file before every command it runs, as a cold run does; when the bytes are the same they need not be parsed and
#: checked again (about 60% of ``load``'s CPU). Any change of the bytes is a new parse; a Config with a broken
#: profile or default is never kept (its errors and tables are the caller's to change).
_parsed: dict[tuple[str, bool], tuple[bytes, Config]] = {}


def _fresh(config: Config) -> Config:
    """A copy of ``config`` whose dicts (and ``other``'s tables) are its own; profiles are frozen, shared."""

    def copied(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: copied(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copied(v) for v in value]
        return value  # str, int, float, bool, date and time: immutable

    return replace(config, profiles=dict(config.profiles), other=copied(config.other))


def _load(path: Path, raw: bytes, strict: bool) -> Config:
    """:func:`load` of the bytes ``raw`` read from ``path``."""
    data = parse_toml(raw, path)
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table")
    profiles: dict[str, Profile] = {}
    for name, table in tables.items():
        try:
            profiles[name] = parse_profile(name, table, str(path))
        except ConfigError as e:
            if strict:
                raise
            if e.hint is None:
                e.hint = (
                    f"fix [profiles.{name}] in {path}, or see: cancelctl doctor -p {name}"
                    if PROFILE_NAME.fullmatch(name)
                    else f"fix [profiles.{name}] in {path}"
                )
            profiles[name] = _broken(name, table, e)
    default = data.get("default_profile")
    other = {k: v for k, v in data.items() if k not in ("profiles", "default_profile")}
    if default is not None and (not isinstance(default, str) or default not in profiles):
        error = ConfigError(f"{path}: default_profile {default!r} is not a configured profile")
        if strict:
            raise error
        return Config(path=path, profiles=profiles, default_error=error, default_raw=default, other=other)
    return Config(path=path, profiles=profiles, default_profile=default, other=other)


def parse_toml(raw: bytes, path: Path) -> dict[str, Any]:
    """``raw`` parsed as TOML; ConfigError (78) naming ``path`` when it is not UTF-8 TOML or nests too deep."""
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses per nesting level: a few thousand "[" exhaust the stack
        raise ConfigError(f"{path} is not valid TOML: nested too deeply") from None


def profile_tables(path: Path | None = None) -> dict[str, Any]:
    """The raw ``[profiles.*]`` tables, each to be checked with :func:`parse_profile`.

    {} when the file is missing or unreadable.

    For ``doctor``, which reports every profile on its own row where
    :func:`load` stops at the first invalid one; read as :func:`load` reads it.
    """
    from cancelctl.files import read_regular

    path = path or config_path()
    try:
        data = parse_toml(read_regular(path, str(path)), path)
    except (OSError, CancelctlError):
        return {}
    tables = data.get("profiles", {})
    return tables if isinstance(tables, dict) else {}


def save(config: Config) -> None:
    """Write the config file (mode 0600, atomically). Comments are not kept; other tables ([notify]) are."""
    import tomli_w

    data: dict[str, Any] = {}
    if config.default_profile:
        data["default_profile"] = config.default_profile
    elif config.default_error is not None and config.default_raw is not None:
        data["default_profile"] = config.default_raw
    data.update(config.other or {})
    data["profiles"] = {name: p.to_toml() for name, p in sorted(config.profiles.items())}
    config.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.path.with_suffix(".toml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        tomli_w.dump(data, f)
    os.replace(tmp, config.path)


def env_profiles() -> list[str]:
    """The names in ``CANCELCTL_PROFILE`` (comma-separated), in order."""
    value = os.environ.get("CANCELCTL_PROFILE", "")
    return [p.strip() for p in value.split(",") if p.strip()]


def select(
    config: Config, names: list[str] | None, *, venue: str | None = None, every: bool = False, button: bool = False
) -> list[Profile]:
    """The profiles a command acts on (contract, "Profile selection").

    ``-p`` names (each may be comma-separated, as the variable is), else ``CANCELCTL_PROFILE`` (comma-separated), else
    ``default_profile``, else the only profile there is (the only one of
    ``venue`` when given); ``every=True`` (``orders``) takes all profiles
    when neither ``-p`` nor ``CANCELCTL_PROFILE`` names any. ``button=True``
    (``panic``, ``deadman``): without ``-p``, every profile, whatever
    ``CANCELCTL_PROFILE`` and ``default_profile`` say (only ``-p`` narrows
    the button). Raises
    ConfigError (78) naming the choices. Broken profiles (lenient loading)
    are returned like the others; the runner gives each its failed row.
    """
    # `-p=main` reaches here as "=main" (click reads `-pVALUE`); no profile name starts with "=" (PROFILE_NAME), so a
    # hurried `-p=main` means main rather than a refusal that cancels nothing.
    names = [n[1:] if n.startswith("=") and len(n) > 1 else n for n in names or []]
    # `-p a,b` (or `-p a,`) as CANCELCTL_PROFILE=a,b is read: no profile name has a comma (PROFILE_NAME), so it can
    # only mean both; refusing it would cancel nothing on the one command that must not jam.
    if any("," in n for n in names):
        names = [part.strip() for n in names for part in n.split(",") if part.strip()]
        if not names:  # `-p ,` names nothing: never read as "no -p" (for panic: every profile)
            raise UsageProblem("-p names no profile", hint="give a profile name: -p NAME")
    names = list(dict.fromkeys(names or ([] if button else env_profiles())))
    pool = {n: p for n, p in config.profiles.items() if venue is None or p.venue == venue}
    if names:
        missing = [n for n in names if n not in config.profiles]
        if missing:
            raise ConfigError(
                f"no profile named {', '.join(map(repr, missing))} in {config.path}",
                hint=_choices(config) if config.profiles else _add_hint(),
            )
        return [config.profiles[n] for n in names]
    if (every or button) and pool:
        return list(pool.values())
    if config.default_error is not None:
        raise config.default_error
    if config.default_profile and config.default_profile in pool:
        return [pool[config.default_profile]]
    if len(pool) == 1:
        return list(pool.values())
    if not config.profiles:
        raise ConfigError(f"no profiles configured in {config.path}", hint=_add_hint())
    what = f"{venue} profiles" if venue else "profiles"
    if not pool:
        raise ConfigError(f"no {what} configured in {config.path}", hint=_add_hint(venue))
    raise ConfigError(f"several {what}; choose with -p NAME or CANCELCTL_PROFILE", hint=_choices(config, venue))


def _choices(config: Config, venue: str | None = None) -> str:
    names = [n for n, p in config.profiles.items() if venue is None or p.venue == venue]
    return "choices: " + ", ".join(names)


def _add_hint(venue: str | None = None) -> str:
    return f"add one with: cancelctl profiles add NAME --venue {venue or '|'.join(VENUES)}"
