"""``cancelctl profiles``: list, add and remove profiles in the config file (no secrets there)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cancelctl import config as config_mod
from cancelctl.cli.common import complete_profile
from cancelctl.errors import ConfigError, UsageProblem

app = typer.Typer(help="Manage profiles in the config file.", no_args_is_help=True)


@app.command("list")
def profiles_list() -> int:
    """The configured profiles: name, venue, environment, account, base URL."""
    config = config_mod.load()
    for name, p in config.profiles.items():
        mark = "*" if name == config.default_profile else ""
        sys.stdout.write("\t".join([name + mark, p.venue, p.environment, p.account or "-", p.base_url]) + "\n")
    if not config.profiles:
        sys.stderr.write(
            f"no profiles in {config.path}; add one with: cancelctl profiles add NAME --venue gemini|pacifica\n"
        )
    return 0


@app.command("add")
def profiles_add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    venue: Annotated[str, typer.Option("--venue", help="gemini or pacifica.")],
    environment: Annotated[
        Optional[str], typer.Option("--environment", help="gemini: production|sandbox; pacifica: mainnet|testnet.")
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
    config = config_mod.load()
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


@app.command("remove")
def profiles_remove(name: Annotated[str, typer.Argument(metavar="NAME", autocompletion=complete_profile)]) -> int:
    """Remove profile NAME from the config file (its keyring entry stays: `cancelctl keys delete NAME`)."""
    config = config_mod.load()
    if name not in config.profiles:
        raise ConfigError(f"no profile named {name!r} in {config.path}")
    del config.profiles[name]
    if config.default_profile == name:
        config.default_profile = None
    config_mod.save(config)
    sys.stderr.write(f"removed profile {name!r}\n")
    return 0
