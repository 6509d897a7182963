"""The few flags the error funnel needs before (or without) typer's parse: read once from argv.

``cancelctl.main`` must answer in the contract's shape even when typer never
parsed the command line (a usage error, an error raised while parsing) or
when a command failed before its options reached the runner: ``--json``
still means one JSON document on stdout, ``--reason`` still goes into the
audit line, ``--dry-run`` still marks the document. ``cancelctl.cli.build``
uses the same reading to register only the command the line names.

Imports nothing: it runs before anything else is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

# Options that take a value: the word after them is that value, never a flag
# or a command (``--reason --json`` records the reason "--json"; it does not
# turn JSON on). tests/test_flags.py keeps this equal to the typer tree's.
VALUE_OPTIONS = frozenset(
    {
        "--account",
        "--agent-wallet",
        "--base-url",
        "--deadman",
        "--environment",
        "--file",
        "--interval",
        "--lifetime",
        "--lines",
        "--max-slippage",
        "--nonce",
        "--poll",
        "--port",
        "--profile",
        "--reason",
        "--refresh",
        "--symbol",
        "--timeout",
        "--ttl",
        "--venue",
        "-n",
        "-p",
    }
)


#: The root's own options (``cancelctl --debug ...``); every other option belongs to a command.
ROOT_OPTIONS = frozenset({"--debug", "--version"})
#: Groups whose command path is two words (``cancel all``); a group that also runs by itself (``guard``) has a
#: one-word path. tests/test_hurried.py keeps this equal to the typer tree's.
GROUPS = frozenset({"cancel", "keys", "profiles"})


def _takes_next(word: str) -> bool:
    """Whether the word after ``word`` is its value: ``--symbol``, ``-p``, or a short cluster ending in ``p``
    (``-qp NAME``); ``--symbol=S`` and ``-pNAME`` carry their value."""
    if word.startswith("--"):
        return "=" not in word and word in VALUE_OPTIONS
    if len(word) < 2:
        return False
    for k in range(1, len(word)):
        if "-" + word[k] in VALUE_OPTIONS:
            return k == len(word) - 1
    return False


def arrange(argv: list[str]) -> list[str]:
    """``argv`` with every option where typer reads it, so a hurried order of words works; never raises.

    Options written before the command path (``cancelctl -p sim --json cancel all``, ``cancelctl cancel -q
    all``) move to just after it (``cancel all -p sim --json``); ``--debug`` written after it moves to the
    front, where the root reads it. Nothing else changes: values stay with their options, the order of
    repeated options (``-p a -p b``) is kept, and nothing after ``--`` moves. A line without a complete
    command path, or with ``--help`` before it, is returned as it is (typer's own help and errors).
    """
    front: list[str] = []
    moved: list[str] = []
    path: list[str] = []
    need = 1
    i = 0
    while i < len(argv) and len(path) < need:
        word = argv[i]
        i += 1
        if word in ("--", "--help"):
            return list(argv)
        if not word.startswith("-") or word == "-":
            path.append(word)
            need = 2 if len(path) == 1 and word in GROUPS else need
        elif word in ROOT_OPTIONS:
            front.append(word)
        else:
            moved.append(word)
            if _takes_next(word) and i < len(argv):
                moved.append(argv[i])
                i += 1
    if len(path) < need:
        return list(argv)
    rest: list[str] = []
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            rest += argv[i - 1 :]
            break
        if word == "--debug":
            front.append(word)
            continue
        rest.append(word)
        if _takes_next(word) and i < len(argv):
            rest.append(argv[i])
            i += 1
    return front + path + moved + rest


def pieces(argv: list[str], *, options: frozenset[str] | None = None) -> list[str]:
    """Every piece of ``argv``'s words a hurried paste may have put a value in, as the parser and cancelctl read it.

    Each word whole, its parts between commas, blanks and ``=`` (``cancel order 1,<secret>``,
    ``--profile=<secret>``), and what follows the option letter of a short option (``-p<secret>``,
    ``-qp<secret>``). With ``options`` (e.g. ``{"--symbol"}``), only those options' values. The error funnel
    registers the pieces that look like secrets (cancelctl.redact.looks_secret); never raises.
    """
    import re

    if options is None:
        words = list(argv)
    else:
        words = []
        for i, word in enumerate(argv):
            name, has_value, value = word.partition("=")
            if has_value and name in options:
                words.append(value)
            elif word in options and i + 1 < len(argv):
                words.append(argv[i + 1])
    found: list[str] = []
    for word in words:
        parts = [word, *re.split(r"[\s,=]+", word)]
        if word.startswith("-") and not word.startswith("--"):
            k = next((k for k in range(1, len(word)) if "-" + word[k] in VALUE_OPTIONS), len(word))
            parts += [word[k + 1 :], *re.split(r"[\s,=]+", word[k + 1 :])]
        found += [p for p in parts if p and p not in found]
    return found


@dataclass(frozen=True)
class EarlyFlags:
    """What the funnel needs to know of the command line."""

    command: str | None = None  # the first word that is neither an option nor an option's value
    json: bool = False
    dry_run: bool = False
    debug: bool = False
    reason: str | None = None


def parse(argv: list[str]) -> EarlyFlags:
    """Read ``argv`` (without the program name) once; never raises.

    ``--opt value`` and ``--opt=value`` forms are both understood; after
    ``--`` every word is an argument.
    """
    command = None
    json = dry_run = debug = False
    reason = None
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            if command is None and i < len(argv):
                command = argv[i]
            break
        if not word.startswith("-") or word == "-":
            command = command or word
            continue
        name, has_value, value = word.partition("=")
        if name in VALUE_OPTIONS or _takes_next(word):
            if not has_value:
                if i >= len(argv):
                    break
                value = argv[i]
                i += 1
            if name == "--reason":
                reason = value
        elif word == "--json":
            json = True
        elif word == "--dry-run":
            dry_run = True
        elif word == "--debug":
            debug = True
    return EarlyFlags(command=command, json=json, dry_run=dry_run, debug=debug, reason=reason)


TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f", ""})


def env_bool(variable: str) -> bool | None:
    """An environment variable read as a boolean: the usual spellings, any case, surrounding blanks ignored.

    ``1 true yes on y t`` are True; ``0 false no off n f`` and empty or
    unset are False; anything else is None (the caller warns and treats it
    as unset: a typo in ``CANCELCTL_DEBUG`` is never a reason to refuse a cancel).
    """
    import os

    value = os.environ.get(variable, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return None
