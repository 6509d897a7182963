"""A bounded fuzz of the command line and of the environment: never exit 70, never a traceback.

Hypothesis builds command lines from the tool's own words (commands,
options, each option with values of its kind, good and bad) mixed with
arbitrary text, and environments from the variables cancelctl and httpx
read, with values good, bad and hostile (paths to devices, FIFOs, broken
URLs). Most examples run in-process (``cancelctl.main.run``, see
``test_properties.InProcess``); a few run the real process, the only way
to fuzz what is read once per process (the CA bundle). The venue is a
loopback port nothing listens on and every deadline is under a second, so
nothing leaves the machine and the fuzz stays bounded. The long-running
commands (``heartbeat``, ``deadman``, ``sim``) and ``keys set`` (reads
stdin) are left out; tests/test_robustness.py covers them.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import TEXT, WEIRD, InProcess

from conftest import GEMINI_KEY, GEMINI_SECRET, SECRETS_USED, closed_port

PORT = closed_port()
CONFIG = (
    f'default_profile = "main"\n[profiles.main]\nvenue = "gemini"\nbase_url = "http://127.0.0.1:{PORT}"\n'
    f'[profiles.pac]\nvenue = "pacifica"\nbase_url = "http://127.0.0.1:{PORT}/api/v1"\n'
)
SECRETS_USED.add(GEMINI_SECRET)

WORDS = [
    "cancel", "all", "session", "order", "pacifica", "panic", "orders", "positions", "log", "keys", "list", "delete",
    "profiles", "add", "remove", "doctor", "completion", "bash", "zsh", "fish", "main", "pac", "nope", "1", "12345",
]
FLAGS = [
    "--json",
    "-q",
    "--quiet",
    "--dry-run",
    "--verify",
    "--no-verify",
    "--client-order-id",
    "--stop",
    "--exclude-reduce-only",
    "--close-positions",
    "--debug",
    "--version",
    "--help",
    "--",
    "-",
    "--bogus",
    "-x",
]
SHORT_TIMEOUT = st.sampled_from(["0.3", "0.5", "0", "-1", "nan", "inf", "abc", "", "1e400", "3601", "0x1", "５"])
VALUES = {
    "--timeout": SHORT_TIMEOUT,
    "--reason": st.one_of(TEXT, WEIRD),
    "-p": st.one_of(st.sampled_from(["main", "pac", "missing", "main,pac"]), TEXT, WEIRD),
    "--profile": st.one_of(st.sampled_from(["main", "pac"]), TEXT),
    "--symbol": st.one_of(st.sampled_from(["BTC", "btcusd", "ETH"]), TEXT, WEIRD),
    "--max-slippage": st.one_of(st.sampled_from(["0.5", "0", "-1", "100", "nan", "1e9"]), TEXT),
    "--venue": st.one_of(st.sampled_from(["gemini", "pacifica", "kraken"]), TEXT),
    "--base-url": st.one_of(
        st.sampled_from(["http://127.0.0.1:9", "https://x.invalid", "ftp://x", "http://[::1"]), TEXT
    ),
    "--environment": st.one_of(st.sampled_from(["production", "sandbox", "mainnet", "testnet"]), TEXT),
    "--account": st.one_of(TEXT, WEIRD),
    "-n": st.one_of(st.sampled_from(["1", "0", "-1", "99999999999999999999"]), TEXT),
}
ITEM = st.one_of(
    st.sampled_from(WORDS).map(lambda w: [w]),
    st.sampled_from(FLAGS).map(lambda w: [w]),
    st.one_of(TEXT, WEIRD).map(lambda w: [w]),
    st.sampled_from(sorted(VALUES)).flatmap(lambda o: VALUES[o].map(lambda v: [o, v])),
    st.sampled_from(sorted(VALUES)).flatmap(lambda o: VALUES[o].map(lambda v: [f"{o}={v}"])),
)
ARGV = st.lists(ITEM, max_size=6).map(lambda items: [w for item in items for w in item])
LONG_RUNNING = {"heartbeat", "deadman", "sim", "demo", "set"}

HOSTILE_PATHS = ["/dev/zero", "/dev/null", "/nonexistent/x", "/", "/etc/hostname", "/proc/self/mem", ""]
ENV_VALUES = st.one_of(TEXT, WEIRD, st.sampled_from(HOSTILE_PATHS))
ENV = st.fixed_dictionaries(
    {},
    optional={
        "CANCELCTL_TIMEOUT": SHORT_TIMEOUT,
        "CANCELCTL_PROFILE": st.one_of(st.sampled_from(["main", "pac", "main,pac", "missing", ","]), TEXT),
        "CANCELCTL_DEBUG": st.one_of(st.sampled_from(["0", "1", "2", "yes", "no", "maybe"]), TEXT),
        "CANCELCTL_MAIN_API_KEY": st.one_of(st.just(GEMINI_KEY), TEXT, WEIRD),
        "CANCELCTL_MAIN_API_SECRET": st.one_of(st.just(GEMINI_SECRET), TEXT, WEIRD),
        "CANCELCTL_MAIN_API_KEY_FILE": ENV_VALUES,
        "CANCELCTL_PAC_PRIVATE_KEY": st.one_of(TEXT, WEIRD),
        "CANCELCTL_PAC_PRIVATE_KEY_FILE": ENV_VALUES,
        "CANCELCTL_KEYRING_PASSPHRASE_FILE": ENV_VALUES,
        "CANCELCTL_NOTIFY_URLS": st.one_of(TEXT, st.sampled_from(["json://127.0.0.1:9", "nope://", ",,,"])),
        "HTTPS_PROXY": st.one_of(
            TEXT, st.sampled_from(["socks5://127.0.0.1:1", "gopher://x", "http://[::1", "http://127.0.0.1:9", ":::"])
        ),
        "ALL_PROXY": st.one_of(TEXT, st.sampled_from(["http://[::1", "ftp://x", "socks4://x:1"])),
        "NO_PROXY": st.one_of(TEXT, st.just("*")),
    },
)


def no_bug(code: int, out: str, err: str, what) -> None:
    assert code != 70, (what, err)
    assert "Traceback" not in err and "Traceback" not in out, (what, err)
    assert isinstance(code, int) and 0 <= code < 256, (what, code)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(argv=ARGV, environment=ENV)
def test_fuzz_command_line_and_environment_in_process(tmp_path, capsys, argv, environment):
    if LONG_RUNNING & set(argv):
        return
    # Fuzzed values are not added to conftest.SECRETS_USED: "9" * 40 is an order ID elsewhere in the suite.
    cli = InProcess(tmp_path, capsys)
    code, out, err = cli(*argv, config=CONFIG, env={"CANCELCTL_TIMEOUT": "0.3", **environment})
    no_bug(code, out, err, (argv, environment))


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    argv=st.sampled_from(
        [
            ["cancel", "all", "--json"],
            ["panic", "--json"],
            ["orders"],
            ["doctor", "--json"],
            ["cancel", "order", "5", "--dry-run"],
        ]
    ),
    environment=st.fixed_dictionaries(
        {},
        optional={
            "SSL_CERT_FILE": ENV_VALUES,
            "SSL_CERT_DIR": ENV_VALUES,
            "HTTPS_PROXY": st.sampled_from(
                ["socks5://127.0.0.1:1", "gopher://x", "http://[::1", "::", "http://127.0.0.1:9"]
            ),
            "CANCELCTL_DEBUG": st.sampled_from(["1", "2", "x"]),
            "CANCELCTL_MAIN_API_KEY_FILE": ENV_VALUES,
            "CANCELCTL_TIMEOUT": SHORT_TIMEOUT,
        },
    ),
)
def test_fuzz_environment_real_process(tmp_path_factory, argv, environment):
    from conftest import Env

    root = tmp_path_factory.mktemp("fuzz")
    (root / "home").mkdir()
    env = Env(root)
    env.config_dir.mkdir(parents=True)
    (env.config_dir / "config.toml").write_text(CONFIG)
    extra = {
        "CANCELCTL_MAIN_API_KEY": GEMINI_KEY,
        "CANCELCTL_MAIN_API_SECRET": GEMINI_SECRET,
        "CANCELCTL_TIMEOUT": "0.5",
        **environment,
    }
    if "CANCELCTL_MAIN_API_KEY_FILE" in environment:
        del extra["CANCELCTL_MAIN_API_KEY"]
    proc = env.run(*argv, extra_env=extra, timeout=30)
    no_bug(proc.returncode, proc.stdout, proc.stderr, (argv, environment))


def test_fuzz_can_fail(tmp_path, capsys, monkeypatch):
    """The check above is not vacuous: a command that crashes is caught as exit 70 with no traceback shown."""
    from cancelctl.cli import completion

    def boom(shell: str) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr(completion, "completion", boom, raising=False)
    monkeypatch.setattr("cancelctl.cli.COMMANDS", {"completion": ("cancelctl.cli.completion", "completion")})
    cli = InProcess(tmp_path, capsys)
    code, out, err = cli("completion", "bash", config=CONFIG)
    assert code == 70
    with pytest.raises(AssertionError):
        no_bug(code, out, err, "boom")
