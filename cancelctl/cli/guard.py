"""``cancelctl guard``: the resident guardian (:mod:`cancelctl.guard`), and ``cancelctl guard status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cancelctl.cli.common import JsonOpt

app = typer.Typer(
    help="Keep warm connections and run panic/cancel/orders/positions one round trip after the hotkey.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def guard(
    ctx: typer.Context,
    profile: Annotated[
        Optional[list[str]],
        typer.Option(
            "-p", "--profile", metavar="NAME", help="Profile to hold (repeatable). Without it: every profile."
        ),
    ] = None,
    heartbeat: Annotated[
        bool,
        typer.Option("--heartbeat", help='Also keep Gemini "Require Heartbeat" sessions alive (as `heartbeat`).'),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", metavar="SECONDS", min=1, max=29, help="With --heartbeat: seconds between beats."),
    ] = 15.0,
    deadman: Annotated[
        Optional[Path],
        typer.Option("--deadman", metavar="FILE", help="Also run the dead-man's switch on this check-in file."),
    ] = None,
    ttl: Annotated[
        Optional[float],
        typer.Option("--ttl", metavar="SECONDS", min=1, help="With --deadman: panic when FILE is older than this."),
    ] = None,
    poll: Annotated[
        Optional[float],
        typer.Option("--poll", metavar="SECONDS", min=1, help="Count each profile's open orders this often (status)."),
    ] = None,
    refresh: Annotated[
        float,
        typer.Option(
            "--refresh", metavar="SECONDS", min=1, max=300, help="Seconds between keep-warm requests per connection."
        ),
    ] = 20.0,
    panic_on_exit: Annotated[
        bool, typer.Option("--panic-on-exit", help="Run panic on the held profiles when the guard stops.")
    ] = False,
) -> int:
    """Run the guard in the foreground until SIGINT/SIGTERM (a systemd user service or a tmux pane)."""
    if ctx.invoked_subcommand is not None:
        return 0
    from cancelctl import guard as guard_mod
    from cancelctl.errors import UsageProblem

    if (deadman is None) != (ttl is None):
        raise UsageProblem("--deadman and --ttl go together", hint="e.g. --deadman ~/.bot.alive --ttl 30")
    settings = guard_mod.Settings(
        refresh=refresh,
        poll=poll,
        heartbeat=heartbeat,
        heartbeat_interval=interval,
        deadman=str(deadman) if deadman is not None else None,
        ttl=ttl,
        panic_on_exit=panic_on_exit,
    )
    code = guard_mod.run(list(profile or []), settings)
    raise typer.Exit(code)


@app.command("status")
def status(json: JsonOpt = False) -> int:
    """Show the running guard: each profile's connection, last heartbeat, last check-in, open orders (--poll)."""
    from cancelctl import guard as guard_mod

    return guard_mod.show_status(json)
