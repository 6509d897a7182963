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
from typing import Annotated, Any

import typer

from cancelctl import __version__
from cancelctl.errors import UsageProblem

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
    "log": ("cancelctl.cli.log", "log"),
    "heartbeat": ("cancelctl.cli.watch", "heartbeat"),
    "deadman": ("cancelctl.cli.watch", "deadman"),
    "guard": ("cancelctl.cli.guard", "app"),
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
        loaded = import_module(module)
        target = getattr(loaded, attribute)
        if attribute == "app":
            app.add_typer(target, name=name)
        else:  # a module's EXAMPLES: {command name: its --help epilog}
            app.command(name, epilog=getattr(loaded, "EXAMPLES", {}).get(name))(target)
    return app


#: Click commands converted once from :func:`build`'s typer apps, by command word (None: every command); None: not
#: kept. Typer converts the app into click commands from the functions' signatures on every call (``inspect``,
#: type hints: 5 to 12 ms a run, measured in the guard with cProfile), which a cold run does once anyway; the guard,
#: which runs one command after another in one process, sets this to ``{}`` (:func:`cancelctl.guard.warm_imports`)
#: so that no caller's cancel waits for the conversion.
prepared: dict[str | None, Any] | None = None


def command(name: str | None) -> Any:
    """What parses and runs a command line for ``name`` (as :func:`build`): the typer app, called with click's
    ``main`` arguments (``args=``, ``prog_name=``, ``standalone_mode=``); with :data:`prepared` set, the click
    command converted from it once. Both raise the same exceptions (typer's call only adds its excepthook)."""
    if prepared is None:
        return build(name)
    key = name if name in COMMANDS else None
    cmd = prepared.get(key)
    if cmd is None:
        from typer.main import get_command

        cmd = prepared[key] = get_command(build(name))
    return cmd


def usage_problem(e: Exception, argv: list[str] | None = None) -> UsageProblem:
    """A usage error from typer's parse as cancelctl's (exit 2), with the fix a hurried user needs.

    The hint names the ``--help`` of the command that refused the line (``cancelctl cancel order --help``,
    not the top level); a command typed in the wrong case or misspelt (``cancelctl PANIC``) gets the
    command meant; a profile written as an argument (``cancelctl panic sim``) gets ``-p sim``. ``argv`` is
    the line as typer read it (:func:`cancelctl.flags.arrange`): an error raised without a context (an option
    missing its value, ``cancelctl cancel all -p``) names its command from there.
    """
    import difflib
    import re

    from cancelctl.config import PROFILE_NAME

    message = e.format_message() if hasattr(e, "format_message") else str(e)
    message = message if message.strip() else "a command is missing"  # a group alone (`cancelctl cancel`)
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else " ".join(["cancelctl", *_command_path(argv or [])])
    command = ctx.command if ctx is not None else None
    hint = f"see {path} --help"
    unknown = re.match(r"No such command '(.*)'", message)
    extra = re.search(r"unexpected extra arguments?(?:\(s\))? \((.*)\)", message)
    if unknown and "did you mean" not in message.lower() and command is not None and hasattr(command, "list_commands"):
        names = command.list_commands(ctx)
        word = unknown.group(1)
        near = [n for n in names if n == word.lower()] or difflib.get_close_matches(word.lower(), names, n=1)
        if near:
            hint = f"did you mean: {path} {near[0]}? {hint}"
    elif extra and command is not None and any("-p" in getattr(p, "opts", ()) for p in command.params):
        words = extra.group(1).split()
        if words and all(PROFILE_NAME.fullmatch(w) for w in words):
            what = "a profile" if len(words) == 1 else "profiles"
            hint = f"to name {what}: {path} {' '.join(f'-p {w}' for w in words)}; {hint}"
    return UsageProblem(message, hint=hint)


def _command_path(argv: list[str]) -> list[str]:
    """The command words that begin an arranged ``argv`` (``["cancel", "all"]``), or [] when it does not begin
    with a command."""
    from cancelctl.flags import GROUPS

    words = [w for w in argv[: argv.index("--") if "--" in argv else len(argv)] if not w.startswith("-")]
    if not words or words[0] not in COMMANDS:
        return []
    return words[: 2 if words[0] in GROUPS else 1]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return build()
    raise AttributeError(name)
