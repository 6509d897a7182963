"""The docs stay true: links resolve, and every cancelctl option the user-facing pages show exists.

Every ``cancelctl ...`` invocation in the code of the pages below is parsed;
each option it uses must appear in that command's ``--help`` from the real
process. Every relative link in README.md and docs/*.md must reach a file,
and a ``#fragment`` a heading of it.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from functools import cache
from pathlib import Path

import pytest
import zygote

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["recipes.md", "exit-codes.md", "json.md", "credentials.md", "security.md", "venues.md"]
GROUPS = {"cancel", "keys", "profiles"}
OPERATORS = {";", "&", "&&", "|", "||", ">", ">>", "<", "(", ")"}


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def code_lines(text: str) -> list[str]:
    """The lines of fenced code blocks and the contents of inline code spans."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    rest = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", rest)
    from cancelctl.cli import COMMANDS

    # `cancel order ID --symbol S` in prose is an invocation too
    spans = ["cancelctl " + s if s.split()[0] in COMMANDS and " " in s else s for s in spans]
    return [line for b in blocks for line in b.splitlines()] + spans


def invocations(line: str) -> list[list[str]]:
    """The argument lists of the cancelctl commands on one shell line (up to the next operator)."""
    found = []
    for m in re.finditer(r"(?<![\w.-])cancelctl\s+(?=(.*))", line):
        lexer = shlex.shlex(m.group(1), posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote (the command sits inside one): cut at the first operator
            tokens = re.split(r"[;|&]", m.group(1))[0].replace("'", " ").replace('"', " ").split()
        args = []
        for t in tokens:
            if t in OPERATORS or t.startswith("#"):
                break
            args.append(t)
        if args:
            found.append(args)
    return found


@cache
def help_options(path: tuple[str, ...]) -> set[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    proc = zygote.run(
        [sys.executable, "-m", "cancelctl", *path, "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, (path, proc.stderr)
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", proc.stdout))


def test_every_option_shown_in_the_pages_exists():
    from cancelctl.cli import COMMANDS

    checked = 0
    for page in PAGES:
        for line in code_lines((ROOT / "docs" / page).read_text()):
            for args in invocations(line):
                if args[0] not in COMMANDS:
                    continue  # prose such as "cancelctl's"
                path = [args[0]]
                if args[0] in GROUPS and len(args) > 1 and re.match(r"[a-z]+(/|$)", args[1]):
                    path.append(args[1].split("/")[0])  # "keys set/list" -> keys set
                options = {
                    re.sub(r"[\[\].]", "", a).split("=")[0] for a in args[len(path) :] if re.match(r"\[?--?[a-z]", a)
                }
                known = help_options(tuple(path))
                missing = sorted(o for o in options if o not in known)
                assert not missing, f"docs/{page}: `cancelctl {' '.join(args)}`: no such option {missing}"
                checked += 1
    assert checked >= 25, f"only {checked} invocations found: the parser has drifted from the pages"


def test_an_invented_option_would_be_caught():
    (args,) = invocations("55 21 * * 1-5  cancelctl panic --reason 'x' --flatten-harder || logger x")
    assert args == ["panic", "--reason", "x", "--flatten-harder"]
    assert "--flatten-harder" not in help_options(("panic",)) and "--reason" in help_options(("panic",))


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_and_anchors_resolve(page):
    source = ROOT / page if page == "README.md" else ROOT / "docs" / page
    for target in re.findall(r"\]\(([^)\s]+)\)", source.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (source.parent / path).resolve() if path else source
        assert dest.exists(), f"{page}: broken link {target}"
        if anchor and dest.suffix == ".md":
            headings = {slug(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(), re.M)}
            assert anchor in headings, f"{page}: no heading for #{anchor} in {dest.name}"
