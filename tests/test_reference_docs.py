"""docs/reference.md is every command's --help, current, and the same text the real process prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cancelctl.cli import COMMANDS
from cancelctl.generate import COMMAND, REFERENCE, reference

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / REFERENCE


def sections(text: str) -> dict[str, str]:
    """``{"cancelctl cancel all": help text}`` from the document's ``## ...`` sections."""
    return {m[1]: m[2] for m in re.finditer(r"^## ([^\n]+)\n\n```text\n(.*?)```$", text, re.M | re.S)}


def test_reference_is_current():
    assert DOC.is_file(), f"{REFERENCE} is missing: run `{COMMAND}`"
    assert DOC.read_text() == reference(), f"{REFERENCE} is stale: run `{COMMAND}`"


def test_reference_has_every_command_and_subcommand():
    found = sections(DOC.read_text())
    assert {f"cancelctl {name}" for name in COMMANDS} <= set(found)
    for sub in ("all", "session", "order", "pacifica"):
        assert f"cancelctl cancel {sub}" in found
    for path, text in found.items():
        assert text.startswith(f"Usage: {path} "), path


def test_reference_is_plain_text():
    text = DOC.read_text()
    assert "\x1b" not in text
    assert not re.search("[\u2500-\u257f]", text), "box-drawing characters: rich help leaked in"
    for path, help_text in sections(text).items():
        assert all(len(line) <= 80 for line in help_text.splitlines()), path


@pytest.mark.parametrize(
    "args",
    [[], ["cancel"], ["cancel", "all"], ["cancel", "order"], ["completion"], ["profiles", "add"]],
    ids=lambda a: " ".join(a) or "root",
)
def test_reference_is_what_help_prints(env, args):
    """The real process with plain (non-rich) help on a wide terminal prints the documented text."""
    proc = env.run(*args, "--help", extra_env={"TYPER_USE_RICH": "0", "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == sections(DOC.read_text())[" ".join(["cancelctl", *args])]
