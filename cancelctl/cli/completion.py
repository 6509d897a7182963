"""``cancelctl completion bash|zsh|fish``: print the shell completion script.

The scripts are typer's own (``typer._completion_shared``): each TAB runs
``cancelctl`` with ``_CANCELCTL_COMPLETE=complete_<shell>`` and the words
typed so far, and typer answers from the command tree. The same text is
checked in under ``completions/`` and installed by the wheel into the
directories each shell loads completions from (see :data:`FILES`).

Importing this module also registers typer's completion classes with the
bundled click (typer does that itself only for apps built with
``add_completion=True``); without them the ``complete_<shell>``
instructions the scripts send would not be understood. ``build()``
imports every command module, this one included, whenever argv names no
command, which is how every completion request arrives.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

PROG = "cancelctl"
COMPLETE_VAR = "_CANCELCTL_COMPLETE"

#: shell -> (file name under completions/, directory under the install prefix it goes to).
FILES: dict[str, tuple[str, str]] = {
    # bash-completion loads share/bash-completion/completions/<command> on first TAB.
    "bash": ("cancelctl", "share/bash-completion/completions"),
    # zsh's compinit autoloads _<command> from every directory on $fpath.
    "zsh": ("_cancelctl", "share/zsh/site-functions"),
    # fish autoloads <command>.fish from vendor_completions.d.
    "fish": ("cancelctl.fish", "share/fish/vendor_completions.d"),
}

# typer's zsh script ends by registering its function with compdef, which is
# right when the file is sourced but not when compinit autoloads it from
# $fpath: then the first TAB would only register and complete nothing. This
# is click's own answer to the same problem (click's zsh template), applied
# to typer's script so that both ways of loading it complete on the first TAB.
_ZSH_TAIL = "compdef _cancelctl_completion cancelctl"
_ZSH_TAIL_BOTH_WAYS = """\
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  # autoloaded from $fpath (site-functions): complete now
  _cancelctl_completion "$@"
else
  # sourced: register for later
  compdef _cancelctl_completion cancelctl
fi"""

completion_init()


class Shell(str, Enum):  # noqa: UP042 - the (str, Enum) form typer documents for choices
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def script(shell: str) -> str:
    """The completion script for ``shell`` ("bash", "zsh" or "fish"), ending in a newline.

    Raises KeyError for any other shell name (the command's argument
    parsing turns that into a usage error, exit 2, before it gets here).
    """
    if shell not in FILES:
        raise KeyError(shell)
    text = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
    if shell == "zsh" and text.endswith(_ZSH_TAIL):
        text = text[: -len(_ZSH_TAIL)] + _ZSH_TAIL_BOTH_WAYS
    return text + "\n"


def completion(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.", show_default=False)],
) -> int:
    """Print the shell completion script (the same file the wheel installs under share/).

    Load it for this shell only with, e.g., source <(cancelctl completion bash)
    """
    typer.echo(script(shell.value), nl=False)
    return 0
