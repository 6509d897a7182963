"""``cancelctl keys``: store, list (presence only) and delete a profile's secrets in the OS keyring."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cancelctl import config as config_mod
from cancelctl import credentials
from cancelctl.cli.common import complete_profile
from cancelctl.errors import ConfigError, UsageProblem
from cancelctl.venues.info import VENUES, names

app = typer.Typer(
    help="Store, list and delete secrets in the OS keyring (never on the command line).", no_args_is_help=True
)


def _profile(name: str) -> config_mod.Profile:
    """Profile ``name``; ConfigError (78) when it is not configured or its own table is unusable (another profile's
    mistake does not matter here)."""
    config = config_mod.load(strict=False)
    if name not in config.profiles:
        raise ConfigError(
            f"no profile named {name!r} in {config.path}",
            hint=f"first run: cancelctl profiles add {name} --venue {names()}",
        )
    profile = config.profiles[name]
    if profile.broken is not None:
        raise profile.broken
    return profile


def _read_values(venue: str) -> dict[str, str]:
    """One value per field: a hidden prompt on a terminal, else one line each from stdin."""
    fields = credentials.fields(venue)
    values: dict[str, str] = {}
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        for field in fields:
            values[field] = getpass.getpass(f"{field}: ")
    else:
        lines = sys.stdin.read().splitlines() if sys.stdin is not None else []
        if len(lines) < len(fields):
            raise UsageProblem(f"expected {len(fields)} line(s) on stdin: {', '.join(fields)}")
        values = dict(zip(fields, lines, strict=False))  # extra lines are ignored
    return {field: credentials.clean_secret(value, field) for field, value in values.items()}


@app.command("set")
def keys_set(name: Annotated[str, typer.Argument(metavar="PROFILE", autocompletion=complete_profile)]) -> int:
    """Store PROFILE's secrets: prompts with hidden input on a terminal; from a pipe, one line per field (gemini:
    api_key, api_secret; pacifica: private_key)."""
    profile = _profile(name)
    credentials.require_keyring(name, profile.venue)  # before anyone types a secret
    values = _read_values(profile.venue)
    info = VENUES.get(profile.venue)
    if info is not None and info.secret_check:  # refuse secrets that cannot work before storing them
        from importlib import import_module

        module, _, function = info.secret_check.partition(":")
        getattr(import_module(module), function)(values, profile)
    credentials.store(name, values)
    sys.stderr.write(f"stored {', '.join(values)} for profile {name!r} in the OS keyring\n")
    return 0


@app.command("list")
def keys_list() -> int:
    """Which secrets each profile has and where they come from (env, file, keyring); never their values."""
    config = config_mod.load(strict=False)  # every profile is listed; a broken one is said on stderr (exit 78)
    if not config.profiles:
        raise ConfigError(
            f"no profiles configured in {config.path}",
            hint=f"add one with: cancelctl profiles add NAME --venue {names()}",
        )
    from cancelctl.cli.profiles import broken_profiles, table

    rows = []
    for name, profile in config.profiles.items():
        try:
            found = credentials.presence(name, profile.venue)
            text = "  ".join(f"{field}={source or 'missing'}" for field, source in found.items())
        except ConfigError as e:
            text = f"unknown ({e.message})"
        rows.append([name, profile.venue, text])
    table(["PROFILE", "VENUE", "SECRETS (where each comes from)"], rows)
    return broken_profiles(config)


@app.command("delete")
def keys_delete(name: Annotated[str, typer.Argument(metavar="PROFILE", autocompletion=complete_profile)]) -> int:
    """Delete PROFILE's keyring entry."""
    config_mod.validate_profile_name(name)
    if not credentials.delete(name):
        raise ConfigError(f"no keyring entry for profile {name!r}")
    sys.stderr.write(f"deleted the keyring entry of profile {name!r}\n")
    return 0
