"""Bad input, property-based: whatever the user types or configures, one stderr line and the contract's code.

Most examples run in-process through ``cancelctl.main.run(argv)`` (a
process per example would be too slow), with the environment, config file
and keyring (the fail backend) set for each example; a few nasty inputs run
through the real process at the end. Every run is checked the same way: no
traceback, never 70, the expected code (2 usage, 78 configuration), one
``cancelctl: error:`` line on stderr when it fails, and with ``--json``
exactly one JSON document carrying the same code. Nothing is ever sent:
cancels run with ``--dry-run``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import base58
import nacl.signing
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cancelctl import cli as cancelctl_cli
from cancelctl import main, redact

from conftest import GEMINI_KEY, GEMINI_SECRET, SECRETS_USED, collect

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PAC_SEED = bytes(range(7, 39))
PAC_KEY = nacl.signing.SigningKey(PAC_SEED)
PAC_PRIVATE = base58.b58encode(PAC_SEED + bytes(PAC_KEY.verify_key)).decode()
SECRETS_USED.add(PAC_PRIVATE)

# Text a real argv or environment can carry: anything but NUL (and no surrogates, hypothesis's default).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
WEIRD = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "1\n2",
        "\t7",
        "١٢٣",
        "１２",
        "0",
        "01",
        "-1",
        "+1",
        "1e3",
        "0x10",
        "9" * 19,
        "9" * 40,
        "1 2",
        "²",
        "--",
        "-",
        "nan",
    ]
)
ORDER_ID = re.compile(r"[1-9][0-9]{0,18}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


#: Each command's click tree, converted from the typer app once for all in-process runs of this test process, as
#: ``cancelctl guard`` does (``cancelctl.cli.prepared``): typer's conversion is about half of a run's CPU here (40 to
#: 65 ms), and it is the same tree every time. Set only for the duration of a call.
PREPARED: dict = {}
COMMANDS = cancelctl_cli.COMMANDS  # a test that replaces the command table (test_fuzz_can_fail) gets no cached tree


class InProcess:
    """``cancelctl.main.run`` in this process with its own config, state and environment per call (the command
    trees converted once: :data:`PREPARED`)."""

    def __init__(self, root: Path, capsys) -> None:
        import keyring
        from keyring.backends import fail

        keyring.set_keyring(fail.Keyring())  # never the developer's keyring, whatever ran before
        self.root = root
        self.capsys = capsys

    def __call__(self, *argv: str, config: bytes | str | None = None, env: dict | None = None) -> tuple[int, str, str]:
        config_dir, state_dir = self.root / "config", self.root / "state"
        shutil.rmtree(config_dir, ignore_errors=True)
        config_dir.mkdir(parents=True)
        if isinstance(config, bytes):
            (config_dir / "config.toml").write_bytes(config)
        elif config is not None:
            (config_dir / "config.toml").write_text(config)
        saved, prepared = dict(os.environ), cancelctl_cli.prepared
        try:
            for name in [n for n in os.environ if n.startswith("CANCELCTL_")]:
                del os.environ[name]
            os.environ.update(CANCELCTL_CONFIG_DIR=str(config_dir), CANCELCTL_STATE_DIR=str(state_dir), NO_COLOR="1")
            os.environ.update(env or {})
            self.capsys.readouterr()
            redact.SECRETS.clear()
            cancelctl_cli.prepared = PREPARED if cancelctl_cli.COMMANDS is COMMANDS else None
            code = main.run(list(argv))
            out, err = self.capsys.readouterr()
        finally:
            cancelctl_cli.prepared = prepared
            os.environ.clear()
            os.environ.update(saved)
        collect(" ".join(map(repr, argv)), out + err)
        return code, out, err


@pytest.fixture
def cli(tmp_path, capsys) -> InProcess:
    return InProcess(tmp_path, capsys)


def contract(code: int, out: str, err: str, argv: tuple[str, ...], allowed: set[int]) -> None:
    assert "Traceback" not in err and code != 70, err
    assert code in allowed, (code, err)
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cancelctl: error: "), err
    if "--json" in argv:
        doc = json.loads(out)
        assert doc["exit_code"] == code and doc["schema"] == "cancelctl/1"


GEMINI_CONFIG = '[profiles.main]\nvenue = "gemini"\nbase_url = "http://127.0.0.1:9"\n'
GEMINI_ENV = {"CANCELCTL_MAIN_API_KEY": GEMINI_KEY, "CANCELCTL_MAIN_API_SECRET": GEMINI_SECRET}
PACIFICA_CONFIG = '[profiles.main]\nvenue = "pacifica"\nbase_url = "http://127.0.0.1:9/api/v1"\n'
PACIFICA_ENV = {"CANCELCTL_MAIN_PRIVATE_KEY": PAC_PRIVATE}


def gemini_id_ok(text: str) -> bool:
    text = text.strip()
    return bool(ORDER_ID.fullmatch(text)) and int(text) < 2**63


# -- order IDs --------------------------------------------------------------------------------


@SETTINGS
@given(
    ids=st.lists(st.one_of(TEXT, WEIRD, st.integers(-(10**30), 10**30).map(str)), min_size=1, max_size=4),
    separator=st.booleans(),
)
@example(ids=["12\n"], separator=True)
@example(ids=["١٢٣"], separator=True)
@example(ids=["9223372036854775808"], separator=True)
@example(ids=["-5"], separator=False)
def test_gemini_order_ids(cli, ids, separator):
    argv = ("cancel", "order", "--dry-run", "--json", *(["--"] if separator else []), *ids)
    code, out, err = cli(*argv, config=GEMINI_CONFIG, env=GEMINI_ENV)
    if not separator and any(i.startswith("-") for i in ids):
        contract(code, out, err, argv, {0, 2})  # an option to the parser, or "--" itself
        return
    # commas separate IDs (issue 15): what a comma leaves empty is nothing, but no ID at all is a usage error
    parts = [p for i in ids for p in (i.split(",") if "," in i else [i]) if p.strip() or "," not in i]
    contract(code, out, err, argv, {0 if parts and all(gemini_id_ok(p) for p in parts) else 2})


@SETTINGS
@given(
    ids=st.lists(st.one_of(TEXT, WEIRD, st.uuids().map(str)), min_size=1, max_size=3),
    symbol=st.one_of(TEXT, st.sampled_from(["BTC", "kBONK", "btc-perp", "BTC USD", ""])),
    cloid=st.booleans(),
)
def test_pacifica_order_ids_and_symbols(cli, ids, symbol, cloid):
    argv = (
        "cancel",
        "order",
        "--dry-run",
        "--json",
        "--symbol",
        symbol,
        *(["--client-order-id"] if cloid else []),
        "--",
        *ids,
    )
    code, out, err = cli(*argv, config=PACIFICA_CONFIG, env=PACIFICA_ENV)
    stripped = [p.strip() for i in ids for p in (i.split(",") if "," in i else [i]) if p.strip() or "," not in i]
    if not stripped:
        ids_ok = False  # only commas: no order ID given
    elif cloid:
        ids_ok = all(UUID.fullmatch(i) for i in stripped)
    else:
        ids_ok = all(gemini_id_ok(i) for i in stripped)
    contract(code, out, err, argv, {0 if ids_ok and SYMBOL.fullmatch(symbol) else 2})


# -- profile names ----------------------------------------------------------------------------


@SETTINGS
@given(
    name=st.one_of(TEXT, st.sampled_from(["main", "main\n", " main", "MAIN", "-p", "a" * 65, "a.b_c-d", "x/y", "ü"]))
)
@example(name="main\n")
@example(name="main, main")
@example(name=",")
@example(name="main,other")
def test_profile_names_on_the_command_line(cli, name):
    argv = ("cancel", "all", "--dry-run", "--json", "-p", name)
    code, out, err = cli(*argv, config=GEMINI_CONFIG, env=GEMINI_ENV)
    if name.startswith("-"):
        contract(code, out, err, argv, {2, 78})  # taken as an option, or as the name
        return
    if "," in name:  # `-p a,b` is a and b, as CANCELCTL_PROFILE=a,b (no profile name has a comma); `-p ,` names none
        parts = [p.strip() for p in name.split(",") if p.strip()]
        contract(code, out, err, argv, {2 if not parts else 0 if all(p == "main" for p in parts) else 78})
        return
    contract(code, out, err, argv, {0 if name == "main" else 78})


@SETTINGS
@given(value=st.one_of(TEXT, st.sampled_from(["main", "main,main", " main , ", ",", "main,other", "other"])))
def test_profile_names_in_the_environment(cli, value):
    argv = ("cancel", "all", "--dry-run", "--json")
    code, out, err = cli(*argv, config=GEMINI_CONFIG, env={**GEMINI_ENV, "CANCELCTL_PROFILE": value})
    names = [p.strip() for p in value.split(",") if p.strip()]
    contract(code, out, err, argv, {0 if all(n == "main" for n in names) else 78})


@SETTINGS
@given(name=st.one_of(TEXT, st.sampled_from(["ok", "ok\n", "a" * 64, "a" * 65, ".x", "x.", "ü"])))
@example(name="ok\n")
def test_profiles_add_names(cli, name):
    argv = ("profiles", "add", "--venue", "gemini", "--", name)
    code, out, err = cli(*argv, config=None)
    contract(code, out, err, argv, {0 if PROFILE.fullmatch(name) else 2})


# -- config files -------------------------------------------------------------------------------


@SETTINGS
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        TEXT,
        st.sampled_from(
            [b"\xff\xfe", b"[profiles.x\nvenue=", b"profiles = 3", b"[profiles]\nmain = 1", b"default_profile = 1"]
        ),
    )
)
def test_config_file_arbitrary_bytes(cli, raw):
    argv = ("cancel", "all", "--dry-run", "--json")
    code, out, err = cli(
        *argv, config=raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"), env=GEMINI_ENV
    )
    contract(code, out, err, argv, {78})  # nothing there makes a usable profile


SCALARS = st.one_of(
    TEXT,
    st.integers(),
    st.booleans(),
    st.floats(),
    st.sampled_from(
        [
            "gemini",
            "pacifica",
            "production",
            "sandbox",
            "mainnet",
            "testnet",
            "time-based",
            "milliseconds",
            "http://127.0.0.1:9",
            "ftp://x",
            PAC_PRIVATE[:44],
        ]
    ),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=2))
FIELDS = st.sampled_from(["venue", "environment", "account", "base_url", "nonce", "agent_wallet"]) | st.text(max_size=8)


@st.composite
def configs(draw) -> dict:
    venue = draw(st.one_of(st.sampled_from(["gemini", "pacifica"]), VALUES))
    table = {"venue": venue, **draw(st.dictionaries(FIELDS, VALUES, max_size=3))}
    if draw(st.booleans()):
        table["venue"] = venue  # the dictionary may have replaced it
    name = draw(st.one_of(st.just("main"), TEXT.filter(bool)))
    doc = {"profiles": {name: table}}
    if draw(st.booleans()):
        doc["default_profile"] = draw(VALUES)
    return doc


@SETTINGS
@given(doc=configs())
@example(doc={"profiles": {"main": {"venue": ["gemini"]}}})
@example(doc={"profiles": {"main": {"venue": {"x": 1}}}})
@example(doc={"profiles": {"main": {"venue": "gemini", "environment": "mainnet"}}})
@example(doc={"profiles": {"main": {"venue": "kraken"}}})
def test_config_wrong_types_for_every_field(cli, doc):
    import tomli_w

    from cancelctl.credentials import env_var

    (name,) = doc["profiles"]
    env = {
        env_var(name, "api_key"): GEMINI_KEY,
        env_var(name, "api_secret"): GEMINI_SECRET,
        env_var(name, "private_key"): PAC_PRIVATE,
    }
    argv = ("cancel", "all", "--dry-run", "--json")
    code, out, err = cli(*argv, config=tomli_w.dumps(doc), env=env)
    contract(code, out, err, argv, {0, 78})
    table = doc["profiles"][name]
    if table.get("venue") not in ("gemini", "pacifica") or not all(isinstance(v, str) for v in table.values()):
        assert code == 78


# -- secrets in the environment -------------------------------------------------------------------


def clean(value: str) -> str | None:
    """What the contract accepts as a secret: surrounding white space dropped, nothing odd inside."""
    value = value.strip()
    if not value or any(c.isspace() for c in value) or not value.isprintable() or not value.isascii():
        return None
    return value


def with_space_inside(text: str) -> st.SearchStrategy[str]:
    return st.tuples(st.integers(1, len(text) - 1), st.sampled_from([" ", "\n", "\t", "\r\n", "\u00a0"])).map(
        lambda t: text[: t[0]] + t[1] + text[t[0] :]
    )


@SETTINGS
@given(
    key=st.one_of(
        TEXT,
        st.just(GEMINI_KEY),
        with_space_inside(GEMINI_KEY),
        st.just(f" {GEMINI_KEY}\n"),
        st.just("master-" + GEMINI_KEY),
    ),
    secret=st.one_of(TEXT, st.just(GEMINI_SECRET), with_space_inside(GEMINI_SECRET), st.just(GEMINI_SECRET + "\n")),
)
@example(key=GEMINI_KEY, secret="requests")
def test_gemini_secrets_in_the_environment(cli, key, secret):
    # A "secret" of 8 characters or more inside the document's constant schema name ("cancelct", which hypothesis
    # takes from this module's literals) is scrubbed there too: secrecy wins over the constant, so the contract's
    # schema check cannot hold for it (no real key or secret is a piece of "cancelctl/1").
    assume(not any(len(v.strip()) >= 8 and v.strip() in "cancelctl/1" for v in (key, secret)))
    argv = ("cancel", "all", "--dry-run", "--json")
    code, out, err = cli(
        *argv, config=GEMINI_CONFIG, env={"CANCELCTL_MAIN_API_KEY": key, "CANCELCTL_MAIN_API_SECRET": secret}
    )
    k, s = clean(key), clean(secret)
    ok = k is not None and s is not None and not k.startswith("master-")
    contract(code, out, err, argv, {0 if ok else 78})
    # a value that is one of cancelctl's own words (a "secret" of "requests", a JSON key of every dry run) is in the
    # output of the same run with other credentials too: only an occurrence the value itself brought is a leak
    # (the usual run has a key and secret of its own, so a real leak of the generated ones can never hide in it)
    if not USUAL_RUN:  # the same for every example: run once
        usual = {
            "CANCELCTL_MAIN_API_KEY": "account-USUALkey0000000000",
            "CANCELCTL_MAIN_API_SECRET": "USUALsecret000000",
        }
        USUAL_RUN.append(cli(*argv, config=GEMINI_CONFIG, env=usual))
    _, usual_out, usual_err = USUAL_RUN[0]
    for value in (key.strip(), secret.strip()):
        if len(value) >= 8:
            assert (out + err).count(value) <= (usual_out + usual_err).count(value), value


USUAL_RUN: list[tuple[int, str, str]] = []  # test_gemini_secrets_in_the_environment's run with the usual credentials


def pacifica_ok(text: str) -> bool:
    """Independent of cancelctl: a base58 64-byte Solana secret key whose second half is its first half's public key."""
    try:
        raw = base58.b58decode(text.strip())
    except ValueError:
        return False
    if clean(text) is None or len(raw) != 64:
        return False
    return bytes(nacl.signing.SigningKey(raw[:32]).verify_key) == raw[32:]


PACIFICA_KEYS = st.one_of(
    TEXT,
    st.binary(max_size=100).map(lambda b: base58.b58encode(b).decode()),  # base58, any length
    st.just(PAC_PRIVATE),
    st.just(f"  {PAC_PRIVATE}\n"),
    with_space_inside(PAC_PRIVATE),
    st.just(base58.b58encode(PAC_SEED).decode()),  # 32 bytes: a seed, not a secret key
    st.just(base58.b58encode(PAC_SEED + bytes(32)).decode()),  # second half is not the public key
    st.just(json.dumps(list(PAC_SEED + bytes(PAC_KEY.verify_key)))),  # Solana CLI key file
    st.just(PAC_PRIVATE.replace(PAC_PRIVATE[5], "0", 1)),  # 0 is not base58
)


@SETTINGS
@given(key=PACIFICA_KEYS)
@example(key="8")  # a one-character "secret" once turned every 8 of the JSON document into <redacted>
def test_pacifica_private_key_in_the_environment(cli, key):
    argv = ("cancel", "all", "--dry-run", "--json")
    code, out, err = cli(*argv, config=PACIFICA_CONFIG, env={"CANCELCTL_MAIN_PRIVATE_KEY": key})
    contract(code, out, err, argv, {0 if pacifica_ok(key) else 78})
    assert PAC_PRIVATE not in out + err and PAC_PRIVATE[:20] not in out + err


@SETTINGS
@given(
    value=st.one_of(
        TEXT,
        st.floats().map(str),
        st.sampled_from(["nan", "inf", "-1", "0", "0.1", "3600", "3601", "1e400", " 2 ", "1_0", "５"]),
    )
)
@example(value="nan")
def test_timeout_from_the_environment(cli, value):
    argv = ("cancel", "all", "--dry-run", "--json")
    code, out, err = cli(*argv, config=GEMINI_CONFIG, env={**GEMINI_ENV, "CANCELCTL_TIMEOUT": value})
    try:
        number = float(value)
    except ValueError:
        number = None
    if value == "":
        contract(code, out, err, argv, {0})  # an empty variable is no setting: the default
    elif number is None or not (0.1 <= number <= 3600):
        contract(code, out, err, argv, {2})
    else:
        contract(code, out, err, argv, {0})


# -- a few through the real process -----------------------------------------------------------------

REAL = [
    (("cancel", "order", "--dry-run", "--", "1\n2"), GEMINI_CONFIG, {}, 2),
    (("cancel", "order", "--dry-run", "--", "١٢٣"), GEMINI_CONFIG, {}, 2),
    (("cancel", "order", "--dry-run", "--", "9" * 40), GEMINI_CONFIG, {}, 2),
    (("cancel", "order", "--dry-run", "-5"), GEMINI_CONFIG, {}, 2),
    (("cancel", "all", "--dry-run", "-p", "main\nother"), GEMINI_CONFIG, {}, 78),
    (("cancel", "all", "--dry-run"), b"\xff\xfe[profiles", {}, 78),
    (("cancel", "all", "--dry-run"), '[profiles.main]\nvenue = ["gemini"]\n', {}, 78),
    (("cancel", "all", "--dry-run", "--timeout", "nan"), GEMINI_CONFIG, {}, 2),
    (("cancel", "all", "--dry-run"), GEMINI_CONFIG, {"CANCELCTL_MAIN_API_SECRET": "two\nlines"}, 78),
    (
        ("cancel", "all", "--dry-run"),
        PACIFICA_CONFIG,
        {"CANCELCTL_MAIN_PRIVATE_KEY": base58.b58encode(PAC_SEED).decode()},
        78,
    ),
    (("profiles", "add", "--venue", "gemini", "--", "ok\n"), None, {}, 2),
]


@pytest.mark.parametrize("argv, config, env_vars, code", REAL, ids=[f"{i}" for i in range(len(REAL))])
def test_real_process_bad_input(env, argv, config, env_vars, code):
    env.config_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(config, bytes):
        (env.config_dir / "config.toml").write_bytes(config)
    elif config is not None:
        (env.config_dir / "config.toml").write_text(config)
    venue_env = GEMINI_ENV if config == GEMINI_CONFIG else PACIFICA_ENV if config == PACIFICA_CONFIG else {}
    for name, value in {**venue_env, **env_vars}.items():
        env.vars[name] = value
        if len(value) >= 8:
            SECRETS_USED.add(value)
    proc = env.run(*argv, "--json") if argv[0] == "cancel" and "--" not in argv else env.run(*argv)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("cancelctl: error: ")


def test_a_hand_off_s_state_ends_with_its_run(cli):
    """The hand-off's kept signal and the time the cold path took over belong to the one command handed off: a
    later run in the same process (an in-process caller; the tests) counted its --timeout from that old time and
    failed "the deadline passed while reading credentials" (seen in CI after an in-process try_guard). main.run
    forgets them as it ends."""
    from cancelctl import handoff

    handoff.resumed = __import__("time").monotonic() - 60  # the cold path "took over" a minute ago: no time left
    code, out, err = cli("cancel", "all", "--dry-run", "--json", config=GEMINI_CONFIG, env=GEMINI_ENV)
    assert "the deadline passed while reading credentials" in err, (code, err)  # that run had no time left
    assert handoff.resumed is None
    code, out, err = cli("cancel", "all", "--dry-run", "--json", config=GEMINI_CONFIG, env=GEMINI_ENV)
    assert code == 0 and json.loads(out)["results"][0]["error"] is None and "deadline" not in err, (code, err)
