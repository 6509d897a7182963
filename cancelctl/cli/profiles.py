"""``cancelctl profiles``: list, add and remove profiles in the config file (no secrets there)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cancelctl import config as config_mod
from cancelctl.cli.common import complete_profile
from cancelctl.errors import ConfigError, UsageProblem
from cancelctl.venues.info import VENUES, VenueInfo, names

app = typer.Typer(help="Manage profiles in the config file.", no_args_is_help=True)


def table(header: list[str], rows: list[list[str]]) -> None:
    """Rows on stdout: on a terminal under a header, in aligned columns; in a pipe tab-separated without a header
    (for cut and awk)."""
    if not sys.stdout.isatty():
        sys.stdout.writelines("\t".join(row) + "\n" for row in rows)
        return
    if not rows:
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


@app.command("list")
def profiles_list() -> int:
    """The configured profiles: name (* marks the default), venue, environment, account, base URL.

    A profile whose table cannot be used is listed all the same (environment ``broken``) and named on stderr
    with its error and fix; the exit code is then 78, after every row.
    """
    config = config_mod.load(strict=False)
    rows = [
        [name + ("*" if name == config.default_profile else ""), p.venue, p.environment, p.account or "-", p.base_url]
        if p.broken is None
        else [name, p.venue, "broken", "-", "-"]
        for name, p in config.profiles.items()
    ]
    table(["PROFILE", "VENUE", "ENVIRONMENT", "ACCOUNT", "BASE URL"], rows)
    if not config.profiles:
        sys.stderr.write(
            f"no profiles in {config.path}; add one with: cancelctl profiles add NAME --venue {names()}\n"
        )
    return broken_profiles(config)


def broken_profiles(config: config_mod.Config) -> int:
    """Say each broken profile (and an invalid default_profile) on stderr, one line each; 78 if any, else 0."""
    from cancelctl.errors import ExitCode
    from cancelctl.render import err, error_line

    problems = [p.broken for p in config.profiles.values() if p.broken is not None]
    if config.default_error is not None:
        problems.append(config.default_error)
    for e in problems:
        err(error_line(e))
    return ExitCode.CONFIG if problems else 0


@app.command("add")
def profiles_add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    venue: Annotated[str, typer.Option("--venue", help=f"{names(' or ')}.")],
    environment: Annotated[
        Optional[str],
        typer.Option(
            "--environment",
            help="; ".join(f"{v.name}: {'|'.join(v.environments)}" for v in VENUES.values()) + ".",
        ),
    ] = None,
    account: Annotated[
        Optional[str],
        typer.Option("--account", help="gemini: sub-account (master keys only); pacifica: main wallet public key."),
    ] = None,
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", help="Override the environment's URL (e.g. the simulator's).")
    ] = None,
    nonce: Annotated[
        Optional[str], typer.Option("--nonce", help="gemini: 'time-based' for keys created with a time based nonce.")
    ] = None,
    agent_wallet: Annotated[
        Optional[str],
        typer.Option(
            "--agent-wallet", help="pacifica: the agent wallet's public key, when the stored key is the agent's."
        ),
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default profile.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing profile of that name.")] = False,
) -> int:
    """Add profile NAME (then store its secrets with `cancelctl keys set NAME`)."""
    config_mod.validate_profile_name(name)
    config = config_mod.load(strict=False)  # another profile's mistake never stops adding this one
    if name in config.profiles and not replace:
        raise UsageProblem(f"profile {name!r} exists", hint="use --replace to overwrite it")
    table = {
        "venue": venue,
        "environment": environment,
        "account": account,
        "base_url": base_url,
        "nonce": nonce,
        "agent_wallet": agent_wallet,
    }
    table = {k: v for k, v in table.items() if v is not None}
    info = VENUES.get(venue)  # an unknown venue is refused by parse_profile below
    if info is not None:
        if base_url is not None:
            check_base_url(info, base_url)
        if info.profile_check:  # values that must not go in the config file, refused before it is written
            from importlib import import_module

            module, _, function = info.profile_check.partition(":")
            getattr(import_module(module), function)(name, table)
    try:
        profile = config_mod.parse_profile(name, table, "profiles add")
    except ConfigError as e:
        raise UsageProblem(e.message, hint=e.hint) from None
    config.profiles[name] = profile
    if default or len(config.profiles) == 1:
        config.default_profile = name
    config_mod.save(config)
    sys.stderr.write(f"added profile {name!r} ({venue}) to {config.path}; now run: cancelctl keys set {name}\n")
    return 0


def check_base_url(info: VenueInfo, base_url: str) -> None:
    """UsageProblem (2) for a ``--base-url`` the venue's paths cannot hang below
    (:attr:`VenueInfo.base_path <cancelctl.venues.info.VenueInfo.base_path>` missing, or
    :attr:`~cancelctl.venues.info.VenueInfo.own_prefix` at its end): every request would fail, found only when the
    button is pressed."""
    url = base_url.rstrip("/")
    example = next(iter(info.environments.values()))
    if info.base_path and not url.endswith(info.base_path):
        raise UsageProblem(
            f"a {info.title} --base-url ends in {info.base_path}, as {example} does: {base_url!r} does not",
            hint=f"use: --base-url {url}{info.base_path}",
        )
    if info.own_prefix and url.endswith(info.own_prefix):
        raise UsageProblem(
            f"a {info.title} --base-url is the host, as {example} is, without {info.own_prefix}: {base_url!r} ends "
            "in it",
            hint=f"use: --base-url {url[: -len(info.own_prefix)]}",
        )


@app.command("remove")
def profiles_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", autocompletion=complete_profile)],
    keep_secrets: Annotated[
        bool,
        typer.Option("--keep-secrets", help="Leave its keyring entry (remove it later: cancelctl keys delete NAME)."),
    ] = False,
) -> int:
    """Remove profile NAME from the config file, and its secrets from the OS keyring.

    Secrets that cannot be removed (a keyring that is unusable here, environment variables) are named, with the
    command that removes them; the profile is removed all the same.
    """
    from cancelctl import credentials

    config = config_mod.load(strict=False)  # a broken profile can be removed (that may be the fix)
    if name not in config.profiles:
        raise ConfigError(f"no profile named {name!r} in {config.path}")
    venue = config.profiles[name].venue
    del config.profiles[name]
    if config.default_profile == name:
        config.default_profile = None
    config_mod.save(config)
    delete = f"cancelctl keys delete {name}"
    if keep_secrets:
        said = f"its keyring entry, if any, stays (remove it with: {delete})"
    else:
        try:
            said = "and its keyring entry" if credentials.delete(name) else "(it had no keyring entry)"
        except ConfigError as e:
            said = f"but not its secrets: {e.message}; where the keyring works, remove them with: {delete}"
    sys.stderr.write(f"removed profile {name!r} {said}\n")
    try:
        in_env = [v for f in credentials.fields(venue) for v in (credentials.env_var(name, f),) if _set(v)]
    except ConfigError:  # an unknown venue in the config file has no fields
        in_env = []
    if in_env:
        sys.stderr.write(f"its secrets are still in the environment: unset {' '.join(in_env)}\n")
    return 0


def _set(variable: str) -> bool:
    """Whether the environment gives a secret through ``variable`` or ``variable_FILE``."""
    import os

    return variable in os.environ or bool(os.environ.get(variable + "_FILE"))
