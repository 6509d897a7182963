"""The typer application: one module per command group, imported only when invoked.

``build(command)`` registers only the command the line names, so
``cancelctl cancel all`` never imports (or converts into click commands) the
modules of ``keys``, ``doctor``, ``deadman`` and the rest before its first
cancel is sent. With no command word (``--help``, shell completion, a typo)
every command is registered, so help, completion and "No such command"
suggestions see the whole tree. ``app`` is that whole tree.
"""

from __future__ import annotations

from importlib import import_module
from typing import Annotated

import typer

from cancelctl import __version__

HELP = "The panic button for crypto trading: cancel every resting order, verified."

#: command name -> (module, attribute). An attribute named ``app`` is a typer
#: group (``cancel``, ``keys``...); anything else is a single command.
#: The order here is the order of ``cancelctl --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "panic": ("cancelctl.cli.panic", "panic"),
    "cancel": ("cancelctl.cli.cancel", "app"),
    "orders": ("cancelctl.cli.orders", "orders"),
    "positions": ("cancelctl.cli.positions", "positions"),
    "close-positions": ("cancelctl.cli.positions", "close_positions"),
    "heartbeat": ("cancelctl.cli.watch", "heartbeat"),
    "deadman": ("cancelctl.cli.watch", "deadman"),
    "keys": ("cancelctl.cli.keys", "app"),
    "profiles": ("cancelctl.cli.profiles", "app"),
    "doctor": ("cancelctl.cli.doctor", "doctor"),
    "demo": ("cancelctl.cli.tools", "demo"),
    "sim": ("cancelctl.cli.tools", "sim"),
    "completion": ("cancelctl.cli.completion", "completion"),
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cancelctl {__version__}")
        raise typer.Exit(0)


def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors (also CANCELCTL_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """The panic button for crypto trading: cancel every resting order, verified."""


def build(command: str | None = None) -> typer.Typer:
    """The typer app with ``command`` alone (as :func:`cancelctl.flags.parse` reads it), or every command.

    A name that is not a command (a typo, or None) registers every command.
    """
    app = typer.Typer(
        name="cancelctl", help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
    )
    app.callback()(root)
    only = command if command in COMMANDS else None
    for name, (module, attribute) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(import_module(module), attribute)
        if attribute == "app":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return build()
    raise AttributeError(name)
