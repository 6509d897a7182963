"""Options shared by the cancel commands, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cancelctl.runner import Options

if TYPE_CHECKING:
    from cancelctl.config import Profile

PANEL = "Common options"


def complete_profile(incomplete: str) -> list[str]:
    """Profile names starting with ``incomplete``, for shell completion of ``-p``.

    Reads the config file alone (:func:`cancelctl.config.load`): no keyring,
    no network. Never raises: a missing, unreadable or invalid config file
    gives no candidates, because a traceback on TAB would land in the
    user's shell line.
    """
    try:
        from cancelctl import config

        names = list(config.load(strict=False).profiles)  # a broken profile is still a name to complete
    except Exception:  # noqa: BLE001 - completion offers nothing rather than failing
        return []
    return [n for n in names if n.startswith(incomplete)]


ProfileOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "-p", "--profile", metavar="NAME", autocompletion=complete_profile, rich_help_panel=PANEL,
        help="Profile to act on (repeatable). Else $CANCELCTL_PROFILE, default_profile, or the only one.",
    ),
]
ButtonProfileOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "-p",
        "--profile",
        metavar="NAME",
        autocompletion=complete_profile,
        rich_help_panel=PANEL,
        help="Profile to act on (repeatable). Without it: every configured profile, "
        "whatever $CANCELCTL_PROFILE and default_profile say.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Exactly one JSON document on stdout, on every exit path.", rich_help_panel=PANEL)
]
QuietOpt = Annotated[
    bool, typer.Option("-q", "--quiet", help="Nothing on stdout on success; failures on stderr.", rich_help_panel=PANEL)
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Read the book and list what the real run would cancel, then build and sign the real requests and "
        "print them redacted; send no cancel; exit 0.",
        rich_help_panel=PANEL,
    ),
]


def _seconds(value: float) -> float:
    """``--timeout`` as given, when it is a number: click's FloatRange lets ``nan`` through (every bound
    compares false), which would otherwise reach a command as a deadline that never comes or is always past."""
    import math

    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds (e.g. 10)")
    return value


TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        envvar="CANCELCTL_TIMEOUT",
        callback=_seconds,
        min=0.1,
        max=3600,
        help="Overall deadline for the whole run, retries included.",
        rich_help_panel=PANEL,
    ),
]
VerifyOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--verify/--no-verify",
        help="After cancelling, list open orders and report what remains.",
        rich_help_panel=PANEL,
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option(
        "-y",
        "--yes",
        help="Accepted and ignored: cancelctl never asks for confirmation, by design.",
        rich_help_panel=PANEL,
    ),
]
NoGuardOpt = Annotated[
    bool,
    typer.Option(
        "--no-guard",
        help="Run here, not through a running `cancelctl guard` (also CANCELCTL_NO_GUARD=1).",
        rich_help_panel=PANEL,
    ),
]
ReasonOpt = Annotated[
    Optional[str], typer.Option("--reason", metavar="TEXT", help="Recorded in the audit log.", rich_help_panel=PANEL)
]


def options(
    ctx: typer.Context,
    profile: list[str] | None,
    json: bool,
    quiet: bool,
    dry_run: bool,
    timeout: float,
    verify: bool | None,
    reason: str | None,
    *,
    verify_default: bool = False,
) -> Options:
    """The runner's Options from the parsed flags (``--debug`` comes from the root)."""
    from cancelctl.flags import env_bool

    debug = bool(ctx.find_root().params.get("debug")) if ctx else False
    debug = debug or bool(env_bool("CANCELCTL_DEBUG"))  # CANCELCTL_DEBUG=2 or =maybe is off (the funnel warned)
    return Options(
        profiles=list(profile or []),
        json=json,
        quiet=quiet,
        dry_run=dry_run,
        timeout=timeout,
        verify=verify_default if verify is None else verify,
        reason=reason,
        debug=debug,
    )


def selected(
    opts: Options, *, venue: str | None = None, every: bool = False, button: bool = False
) -> list[Profile]:
    """The profiles a command acts on (:func:`cancelctl.config.select` of ``opts.profiles``), from the config file
    read leniently: a broken profile is a row of its own and never stops the others."""
    from cancelctl import config

    return config.select(config.load(strict=False), opts.profiles, venue=venue, every=every, button=button)


def examples(*lines: str) -> str:
    """A command's ``--help`` epilog: "Examples:" and one command line a paragraph (kept as written in plain and
    rich help alike)."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)
