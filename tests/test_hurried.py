"""Hurried input (issue 15, item 8): options before or after the command, --yes, commas between IDs, and usage
errors that name the fix. The real process against the simulator."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancelctl import flags

from conftest import GEMINI_KEY, GEMINI_SECRET, parse_json

# -- moving options: a pure function of argv ------------------------------------------------------------------------

PATHS = [["panic"], ["cancel", "all"], ["cancel", "order"], ["orders"], ["keys", "list"]]
# Values chosen to look like what they are not: options, commands, the end of options.
VALUES = st.sampled_from(["main", "pac", "--json", "-p", "panic", "--debug", "--", "cancel", "-q", "x=y"])
UNITS = st.one_of(
    st.sampled_from([["--json"], ["-q"], ["--quiet"], ["-y"], ["--yes"], ["--dry-run"], ["--debug"]]),
    st.tuples(st.sampled_from(["-p", "--profile", "--reason", "--timeout", "--symbol"]), VALUES).map(list),
    VALUES.map(lambda v: [f"--reason={v}"]),
    VALUES.map(lambda v: ["-qp", v]),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), st.lists(UNITS, max_size=6), st.integers(0, 6))
def test_options_move_whole_and_in_order(path, units, split):
    """Every option lands after the command path with its value, repeated options keep their order, ``--debug``
    goes to the root; the words are the same words."""
    split = min(split, len(units))
    argv = [w for u in units[:split] for w in u] + path + [w for u in units[split:] for w in u]
    got = flags.arrange(argv)
    want = [w for u in units if u == ["--debug"] for w in u] + path + [w for u in units if u != ["--debug"] for w in u]
    assert got == want
    assert sorted(got) == sorted(argv)
    assert flags.parse(got).command == path[0] == flags.parse(argv).command


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["-p", "sim", "cancel", "all"], ["cancel", "all", "-p", "sim"]),
        (["cancel", "-q", "all", "--debug"], ["--debug", "cancel", "all", "-q"]),
        (["--json", "cancel", "order", "1", "--", "--debug"], ["cancel", "order", "--json", "1", "--", "--debug"]),
        (["-p", "a", "panic", "-p", "b"], ["panic", "-p", "a", "-p", "b"]),
        (["--help", "-p", "x", "panic"], ["--help", "-p", "x", "panic"]),  # help as typer gives it
        (["-p", "x", "cancel"], ["-p", "x", "cancel"]),  # no subcommand: typer's own error
        (["-p", "x"], ["-p", "x"]),
        ([], []),
    ],
)
def test_arrange_examples(argv, want):
    assert flags.arrange(argv) == want


def test_groups_are_the_typer_groups():
    """GROUPS: the groups whose command path is two words. A group that runs by itself (``guard``, whose own
    options come before any subcommand) has a one-word path: options written before it go right after it."""
    from typer.main import get_command

    from cancelctl.cli import build

    root = get_command(build())
    groups = {n for n, c in root.commands.items() if hasattr(c, "commands") and not c.invoke_without_command}
    assert flags.GROUPS == groups
    assert flags.arrange(["-p", "x", "guard"]) == ["guard", "-p", "x"]


# -- the real process ------------------------------------------------------------------------------------------------


@pytest.fixture
def two(sim, env):
    """Two Gemini profiles on their own accounts, ``a`` (the default) and ``b``, each with a resting order."""
    for name in ("a", "b"):
        sim.gemini.add_key(f"account-HURRY{name}", f"hurry-secret-{name}", account=f"acct-{name}")
        env.secret(name, "api_key", f"account-HURRY{name}")
        env.secret(name, "api_secret", f"hurry-secret-{name}")
        sim.gemini.add_order(account=f"acct-{name}")
    env.write_config({n: {"venue": "gemini", "base_url": sim.url} for n in ("a", "b")}, default="a")
    return sim.gemini


def test_profile_and_json_before_the_command_narrow_the_panic(two, env):
    proc = env.run("-p", "b", "--json", "-y", "panic", "--timeout", "10")
    assert proc.returncode == 0, proc.stderr
    assert [r["profile"] for r in parse_json(proc)["results"]] == ["b"]
    assert two.open_orders("acct-b") == [] and len(two.open_orders("acct-a")) == 1


def test_quiet_and_debug_after_the_command(two, env):
    proc = env.run("cancel", "-q", "all", "-p", "b", "--debug", "--yes")
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert two.open_orders("acct-b") == [] and len(two.open_orders("acct-a")) == 1


def test_commas_between_ids(gemini, env):
    ids = [gemini.add_order() for _ in range(3)]
    keep = gemini.add_order()
    proc = env.run("cancel", "order", f"{ids[0]},", f"{ids[1]},{ids[2]},", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(parse_json(proc)["results"][0]["cancelled"]) == sorted(map(str, ids))
    assert [o.order_id for o in gemini.open_orders()] == [keep]


def test_only_commas_is_no_id(gemini, env, sim):
    proc = env.run("cancel", "order", ",", ",,")
    assert proc.returncode == 2 and "no order ID" in proc.stderr
    assert sim.requests("/v1/") == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["PANIC"], "did you mean: cancelctl panic?"),
        (["cancel", "ALL"], "did you mean: cancelctl cancel all?"),
        (["panic", "a"], "to name a profile: cancelctl panic -p a;"),
        (["cancel", "all", "a", "b"], "cancelctl cancel all -p a -p b;"),
        (["cancel", "order"], "see cancelctl cancel order --help"),
        (["cancel", "session", "--symbol", "BTC"], "see cancelctl cancel session --help"),
        (["cancel", "order", "abc", "-p", "a"], "(a positive integer): 'abc' (see cancelctl cancel order --help)"),
    ],
)
def test_usage_errors_name_the_fix(two, env, sim, argv, says):
    proc = env.run(*argv)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert sim.requests("/v1/") == []
    assert len(two.open_orders()) == 2


def test_every_cancel_command_help_ends_with_examples():
    from typer.main import get_command

    from cancelctl.cli import build

    root = get_command(build())
    commands = [("panic",), ("close-positions",), *(("cancel", s) for s in ("all", "session", "order", "pacifica"))]
    commands.append(("deadman",))
    for path in commands:
        command = root
        for word in path:
            command = command.commands[word]  # type: ignore[attr-defined]
        epilog = (command.epilog or "").split("\n\n")
        assert epilog[0] == "Examples:" and 2 <= len(epilog) - 1 <= 3, path
        assert all(f"{line} ".startswith(f"  cancelctl {' '.join(path)} ") for line in epilog[1:]), path
        assert path == ("deadman",) or any({"-y", "--yes"} <= set(p.opts) for p in command.params), path
    assert "never asks for confirmation, by design" in " ".join(root.commands["panic"].help.split())


def test_p_with_commas_is_read_as_the_variable_is(sim, env):
    """`-p a,b` means a and b, as CANCELCTL_PROFILE=a,b does (no profile name has a comma); `-p ,` names nothing
    and is refused, never read as "no -p" (which for panic is every profile)."""
    env.write_config(
        {n: {"venue": "gemini", "base_url": sim.url} for n in ("a", "b", "c")},
    )
    for n in ("a", "b", "c"):
        env.secret(n, "api_key", GEMINI_KEY)
        env.secret(n, "api_secret", GEMINI_SECRET)
    proc = env.run("cancel", "all", "-p", "a, b", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["profile"] for r in json.loads(proc.stdout)["results"]] == ["a", "b"]
    nothing = env.run("panic", "-p", ",", "--dry-run", "--json")
    assert nothing.returncode == 2 and "-p names no profile" in nothing.stderr
    assert json.loads(nothing.stdout)["exit_code"] == 2
