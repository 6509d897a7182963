"""Adversarial input through the real process (review of issue 15, items 8 and 9): a secret pasted where the
hurried-input rules now split words (commas, ``-pVALUE``, ``--opt=VALUE``) or as a symbol is never echoed; a
secret key pasted as a Pacifica account never reaches the config file; usage errors name the command's --help."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancelctl import flags, redact

from conftest import GEMINI_KEY, GEMINI_SECRET, audit_lines, pacifica_keypair

PASTED = "Zx9kQ2mVb7Lp4RtY8wN3cF6hAdvers1"  # what a secret looks like: long, letters and digits


def _nowhere(env, proc) -> None:
    """The pasted secret is in neither stream, the audit log nor (with --json) the one document."""
    assert PASTED not in proc.stdout + proc.stderr
    assert PASTED not in json.dumps(audit_lines(env))


@pytest.mark.parametrize(
    "argv",
    [
        ["cancel", "order", "-p", "main", f"1,{PASTED}"],  # commas split IDs now: the redaction must follow
        ["cancel", "order", "-p", "main", f"{PASTED},"],
        ["cancel", "all", f"-p{PASTED}"],
        ["cancel", "all", f"--profile={PASTED}"],
        ["cancel", "all", "-p", f"main,{PASTED}"],
        [f"-qp{PASTED}", "panic"],
    ],
)
def test_a_secret_pasted_into_a_split_word_is_never_echoed(gemini, env, argv):
    proc = env.run("--json", *argv)
    assert proc.returncode in (2, 78), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == proc.returncode
    assert "<redacted>" in proc.stderr
    _nowhere(env, proc)
    assert audit_lines(env), "a cancelling command's usage error still writes its audit line"


def test_a_secret_pasted_as_a_pacifica_symbol_is_never_echoed(sim, env):
    private, _ = pacifica_keypair(41)
    sim.pacifica.add_account(private)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("pac", "private_key", private)
    for symbol in (["--symbol", PASTED], [f"--symbol={PASTED}"]):
        proc = env.run("--json", "cancel", "pacifica", "-p", "pac", *symbol)
        assert proc.returncode == 2, proc.stderr
        assert json.loads(proc.stdout)["exit_code"] == 2
        assert "not a Pacifica market" in proc.stderr
        _nowhere(env, proc)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["-p", "--symbol", "--json", "panic", "1", ",", "main", "--", "-q"]), max_size=5),
    st.sampled_from(["{}", "1,{}", "{},", "-p{}", "--profile={}", "--symbol={}", "-qp{}", "a, {} ,b", "-p=x,{}"]),
    st.integers(0, 5),
)
def test_pieces_find_the_secret_wherever_the_parser_reads_it(words, shape, at):
    """Wherever a pasted secret sits in a word the parser or the comma rule splits, flags.pieces has it whole."""
    argv = list(words)
    argv.insert(min(at, len(argv)), shape.format(PASTED))
    assert PASTED in flags.pieces(argv)
    assert PASTED in flags.pieces(["--symbol", PASTED], options=frozenset({"--symbol"}))
    assert flags.pieces(["-p", PASTED], options=frozenset({"--symbol"})) == []


def test_a_secret_key_pasted_as_the_pacifica_account_is_never_written(env):
    private, public = pacifica_keypair(42)
    env.secret("x", "private_key", private)  # only so the output scan knows it
    for option in ("--account", "--agent-wallet"):
        proc = env.run("profiles", "add", "pac", "--venue", "pacifica", option, private)
        assert proc.returncode == 2, proc.stderr
        assert "secret key" in proc.stderr and "keys set pac" in proc.stderr
        config = env.config_dir / "config.toml"
        assert not config.exists() or private not in config.read_text()
    proc = env.run("profiles", "add", "pac", "--venue", "pacifica", "--account", "not-base58-0OIl")
    assert proc.returncode == 2 and "public key" in proc.stderr
    proc = env.run("profiles", "add", "pac", "--venue", "pacifica", "--account", public)
    assert proc.returncode == 0, proc.stderr
    assert public in (env.config_dir / "config.toml").read_text()


@pytest.mark.parametrize(
    ("argv", "path"),
    [
        (["cancel", "order", "1", "-p"], "cancelctl cancel order"),
        (["-p", "main", "panic", "--reason"], "cancelctl panic"),
        (["--json", "cancel", "all", "--timeout"], "cancelctl cancel all"),
        (["profiles", "add", "x", "--venue"], "cancelctl profiles add"),
    ],
)
def test_an_option_without_its_value_points_to_the_commands_help(gemini, env, argv, path):
    proc = env.run(*argv)
    assert proc.returncode == 2
    assert "requires an argument" in proc.stderr
    assert f"see {path} --help" in proc.stderr, proc.stderr
    if "--json" in argv:
        assert json.loads(proc.stdout)["exit_code"] == 2


def test_a_group_alone_says_what_is_missing(env):
    proc = env.run("cancel")
    assert proc.returncode == 2
    line = [w for w in proc.stderr.splitlines() if w.startswith("cancelctl: error:")]
    assert line == ["cancelctl: error: a command is missing (see cancelctl cancel --help)"], proc.stderr


def test_the_fixtures_secrets_are_real_ones():
    """The sample secrets above look like secrets to redact.looks_secret (else these tests prove nothing)."""
    assert redact.looks_secret(PASTED) and not redact.looks_secret("main") and GEMINI_KEY and GEMINI_SECRET


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1/", "https://api.gemini.com/v1"])
def test_a_gemini_base_url_without_v1(env, url):
    """Gemini's paths start with /v1: a base URL ending in it would make every request /v1/v1/... (exit 1 when the
    button is pressed). Refused when the profile is added, with the URL to use."""
    proc = env.run("profiles", "add", "g", "--venue", "gemini", "--base-url", url)
    assert proc.returncode == 2 and "without /v1" in proc.stderr, proc.stderr
    fixed = url.rstrip("/")[: -len("/v1")]
    assert f"use: --base-url {fixed})" in proc.stderr
    assert env.run("profiles", "add", "g", "--venue", "gemini", "--base-url", fixed).returncode == 0


def test_a_gemini_base_url_ending_in_v1_fails_at_the_button(gemini, sim, env):
    """Why the check above exists: such a profile (written by hand) cancels nothing."""
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url + "/v1"}})
    proc = env.run("cancel", "all", "--json")
    assert proc.returncode != 0 and json.loads(proc.stdout)["exit_code"] == proc.returncode


def test_p_equals_name_is_the_profile(gemini, env):
    """`-p=main` (as `--profile=main` is written) names main: click hands the cancel "=main", which no profile can
    be called, so it never cancels nothing in a hurry."""
    order = gemini.add_order("primary", "UI")
    proc = env.run("-p=main", "cancel", "all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["profile"] == "main"
    assert gemini.open_orders() == [] and order
    proc = env.run("panic", "-p=nope", "--json")
    assert proc.returncode == 78 and "'nope'" in proc.stderr and "'=nope'" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("url", ["http://trader:hunter2-pass-77@127.0.0.1:9", "https://trader:hunter2-pass-77@api.gemini.com"])
def test_a_base_url_with_a_user_and_password_is_refused_without_saying_them(gemini, env, url):
    """No venue takes a user:password@ in its URL; cancelctl's own HTTP client would drop it and every error line and
    `profiles list` would show it. Refused in one line that does not repeat it (78), in the file and when added."""
    env.write_config({"main": {"venue": "gemini", "base_url": url}})
    proc = env.run("cancel", "all")
    assert proc.returncode == 78, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "user name or password" in lines[0], proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    added = env.run("profiles", "add", "other", "--venue", "gemini", "--base-url", url)
    assert added.returncode != 0 and "user name or password" in added.stderr, added.stderr
    assert "hunter2" not in added.stdout + added.stderr
