"""The checks that need no network: config, profiles, keyring, secrets (never their values), keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cancelctl.cli.doctor.model import Check
from cancelctl.errors import CancelctlError, ConfigError, ExitCode, KeyringUnavailable
from cancelctl.venues.info import VENUES
from cancelctl.venues.info import names as venue_names

if TYPE_CHECKING:
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.transport import Deadline


def config_checks(names: list[str]) -> tuple[list[Check], list[Any]]:
    """The ``config`` row and one ``profile`` row per profile checked; and the valid profiles."""
    from cancelctl import config as config_mod

    add_hint = f"create one with: cancelctl profiles add NAME --venue {venue_names()}"
    path = config_mod.config_path()
    rows: list[Check] = []
    try:
        cfg = config_mod.load(path)
    except ConfigError as e:
        rows.append(Check.failed("config", "-", e))
    else:
        if not cfg.exists:
            rows.append(Check("config", "-", "fail", f"no config file at {path} ({add_hint})", ExitCode.CONFIG))
        elif not cfg.profiles:
            rows.append(Check("config", "-", "fail", f"{path}: no profiles ({add_hint})", ExitCode.CONFIG))
        else:
            default = f", default {cfg.default_profile}" if cfg.default_profile else ""
            rows.append(Check("config", "-", "ok", f"{path}: {len(cfg.profiles)} profile(s){default}"))
    tables = config_mod.profile_tables(path)
    chosen = list(dict.fromkeys(names or config_mod.env_profiles())) or list(tables)
    profiles = []
    for name in chosen:
        if name not in tables:
            choices = ", ".join(tables) or "none"
            rows.append(
                Check(
                    "profile",
                    name,
                    "fail",
                    f"no profile named {name!r} in {path} (choices: {choices})",
                    ExitCode.CONFIG,
                )
            )
            continue
        try:
            p = config_mod.parse_profile(name, tables[name], str(path))
        except ConfigError as e:
            rows.append(Check.failed("profile", name, e))
            continue
        extra = "".join(
            [
                f", account {p.account}" if p.account else "",
                f", nonce {p.nonce}" if "nonce" in VENUES[p.venue].profile_keys else "",
            ]
        )
        rows.append(Check("profile", name, "ok", f"{p.venue} {p.environment}, {p.base_url}{extra}"))
        profiles.append(p)
    return rows, profiles


def _keyring_timeout(deadline: Deadline) -> float:
    """Seconds one keyring call may take: at most 5, and at most half of what is left, so a stalled keyring leaves
    the probes time."""
    return max(0.1, min(5.0, deadline.remaining() / 2))


def sources_of(
    profiles: list[Profile], deadline: Deadline
) -> tuple[dict[str, dict[str, str]], dict[str, CancelctlError], CancelctlError | None]:
    """Per profile, each field's source (``env``, ``file``, ``keyring``, ``missing``); per-profile keyring errors;
    the keyring-wide error.

    A keyring that errored or did not answer is not asked again for the
    next profiles (each call would wait its timeout again).
    """
    from cancelctl import credentials

    sources: dict[str, dict[str, str]] = {}
    errors: dict[str, CancelctlError] = {}
    wide: CancelctlError | None = None
    for p in profiles:
        try:
            found = credentials.presence(p.name, p.venue, timeout=_keyring_timeout(deadline), ask_keyring=wide is None)
        except ConfigError as e:
            errors[p.name] = e
            if isinstance(e, KeyringUnavailable):
                wide = e
            found = credentials.presence(p.name, p.venue, ask_keyring=False)
        else:
            if wide is not None and None in found.values():
                errors[p.name] = wide
        sources[p.name] = {f: s or "missing" for f, s in found.items()}
    return sources, errors, wide


def keyring_check(
    profiles: list[Profile], sources: dict[str, Any], wide: CancelctlError | None, deadline: Deadline
) -> Check:
    from cancelctl import credentials

    needed = [p.name for p in profiles if any(s not in ("env", "file") for s in sources[p.name].values())]
    try:
        name = credentials.backend_name(timeout=_keyring_timeout(deadline))
    except ConfigError as e:
        name, wide = "unknown backend", wide or e
    unusable = wide is not None or name.endswith("fail.Keyring")
    if not unusable:
        users = (
            f"; read for profile(s) {', '.join(needed)}"
            if needed
            else "; not needed: every secret checked comes from env/file"
        )
        return Check("keyring", "-", "ok", name + users, numbers={"backend": name})
    why = wide.message if wide is not None else "no usable keyring backend"
    if not needed:
        return Check(
            "keyring",
            "-",
            "ok",
            f"{name}: {why}; not needed: every secret checked comes from env/file",
            numbers={"backend": name},
        )
    return Check(
        "keyring",
        "-",
        "fail",
        f"{name}: {why}; needed by profile(s) {', '.join(needed)} (unlock or install a keyring, or use "
        "CANCELCTL_<PROFILE>_<FIELD> variables: docs/credentials.md)",
        ExitCode.CONFIG,
        {"backend": name},
    )


def secrets_check(
    p: Profile, sources: dict[str, str], error: CancelctlError | None, deadline: Deadline
) -> tuple[Check, Credentials | None]:
    """The ``secrets`` row and, when every field resolves, the Credentials (values never shown)."""
    from cancelctl import credentials

    listing = "  ".join(f"{f}={s}" for f, s in sources.items())
    numbers = {"sources": dict(sources)}
    missing = [f for f, s in sources.items() if s == "missing"]
    if missing:
        env = " / ".join("$" + credentials.env_var(p.name, f) for f in missing)
        if error is not None:
            fix = f"{error.message}: set {env}, or run {credentials.set_command(p.name)} where a keyring works"
        else:
            fix = f"run: {credentials.set_command(p.name)}   (or set {env})"
        return Check("secrets", p.name, "fail", f"{listing} ({fix})", ExitCode.CONFIG, numbers), None
    try:
        creds = credentials.resolve(p.name, p.venue, timeout=_keyring_timeout(deadline))
    except ConfigError as e:
        return Check("secrets", p.name, "fail", f"{listing}: {e.one_line()}", ExitCode.CONFIG, numbers), None
    return Check("secrets", p.name, "ok", listing, numbers=numbers), creds


def key_check(p: Profile, creds: Credentials | None) -> Check:
    """Signing-key sanity that needs no network; nothing is signed. The venue's rules are the function its
    :class:`~cancelctl.venues.info.VenueInfo` names in ``key_check``."""
    if creds is None:
        return Check("key", p.name, "warn", "not checked: secrets missing or unreadable")
    info = VENUES.get(p.venue)
    if info is None or not info.key_check:
        return Check("key", p.name, "warn", f"not checked: no key rules for venue {p.venue!r}")
    from importlib import import_module

    module, _, function = info.key_check.partition(":")
    check: Check = getattr(import_module(module), function)(p, creds)
    return check


def gemini_key(p: Profile, creds: Credentials) -> Check:
    """Gemini: the key's kind from its prefix, and the sub-account rules of master and account keys."""
    where = f"[profiles.{p.name}]"
    fix = f"run: cancelctl keys set {p.name}"
    key, secret = creds["api_key"], creds["api_secret"]
    from cancelctl.venues.gemini import key_kind

    kind = key_kind(key)
    if kind is None:
        swapped = key_kind(secret) is not None
        why = (
            "api_key and api_secret look swapped"
            if swapped
            else "api_key does not look like a Gemini API key (account-... or master-...)"
        )
        return Check("key", p.name, "fail", f"{why} ({fix})", ExitCode.CONFIG)
    if kind == "master" and not p.account:
        return Check(
            "key",
            p.name,
            "fail",
            'a master key needs the sub-account to act on (Gemini: MissingAccounts): add account = '
            f'"<sub-account>" to {where}',
            ExitCode.CONFIG,
        )
    if kind == "account" and p.account:
        return Check(
            "key",
            p.name,
            "fail",
            "an account key must not name an account (Gemini: AccountsOnGroupOnlyApi): remove account from "
            f"{where}",
            ExitCode.CONFIG,
        )
    scope = f" for sub-account {p.account}" if p.account else ""
    return Check("key", p.name, "ok", f"{kind} key{scope}, {p.nonce} nonces", numbers={"key_kind": kind})


def pacifica_key(p: Profile, creds: Credentials) -> Check:
    """Pacifica: the keypair, account and agent wallet, as the client's constructor checks them."""
    where = f"[profiles.{p.name}]"
    fix = f"run: cancelctl keys set {p.name}"
    from cancelctl.config import state_dir
    from cancelctl.transport import Deadline
    from cancelctl.venues.base import open_client
    from cancelctl.venues.pacifica import Pacifica

    try:  # the client's constructor validates the keypair, account and agent wallet; it sends nothing
        client = open_client(p, creds, state_dir=state_dir(), deadline=Deadline(0.1), dry_run=True)
    except ConfigError as e:
        return Check.failed("key", p.name, e)
    assert isinstance(client, Pacifica)
    public, numbers = client.public_key, {"public_key": client.public_key, "agent_wallet": p.agent_wallet}
    if p.agent_wallet:
        return Check(
            "key",
            p.name,
            "ok",
            f"valid Ed25519 keypair of agent wallet {public}, signing for account {client.account}",
            numbers=numbers,
        )
    if p.account and p.account != public:
        return Check(
            "key",
            p.name,
            "fail",
            f'the key is wallet {public}\'s but account is {p.account} and agent_wallet is unset: the venue would '
            'answer "Verification failed" '
            f'(set agent_wallet = "{public}" in {where} if it is an agent\'s key, else fix account or {fix})',
            ExitCode.CONFIG,
            numbers,
        )
    return Check("key", p.name, "ok", f"valid Ed25519 keypair of account {public}; agent_wallet unset", numbers=numbers)
