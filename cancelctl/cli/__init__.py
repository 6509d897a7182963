"""The typer application: one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from cancelctl import __version__
from cancelctl.cli import cancel, keys, orders, panic, profiles, tools, watch

app = typer.Typer(
    name="cancelctl",
    help="The panic button for crypto trading: cancel every resting order, verified.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cancelctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", envvar="CANCELCTL_DEBUG", help="Show tracebacks of internal errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """The panic button for crypto trading: cancel every resting order, verified."""


app.command("panic")(panic.panic)
app.add_typer(cancel.app, name="cancel")
app.command("orders")(orders.orders)
app.command("heartbeat")(watch.heartbeat)
app.command("deadman")(watch.deadman)
app.add_typer(keys.app, name="keys")
app.add_typer(profiles.app, name="profiles")
tools.register(app)
