"""``cancelctl doctor``: the real process against the real simulator.

Every run goes through ``env.run`` (its output scanned by conftest.collect)
and every secret is registered with ``env.secret`` or SECRETS_USED.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zygote

from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, GEMINI_SECRET, SECRETS_USED, closed_port, collect

MAIN_PRIVATE, MAIN = solana_keypair(bytes(range(101, 133)))
AGENT_PRIVATE, AGENT = solana_keypair(bytes(range(133, 165)))
PER_PROFILE = ["profile", "secrets", "key", "reach", "auth", "clock"]
PUBLIC = {("GET", "/v1/symbols"), ("GET", "/api/v1/info")}
# The one signed read-only request per profile that proves the key (never a cancel).
SIGNED_READS = {("POST", "/v1/orders"), ("POST", "/api/v1/account/api_keys")}


def rows(proc) -> list[list[str]]:
    """The TSV rows: check, profile, status, detail."""
    out = [line.split("\t") for line in proc.stdout.splitlines()]
    assert all(len(r) == 4 for r in out), proc.stdout
    return out


def row(proc, check: str, profile: str = "-") -> list[str]:
    found = [r for r in rows(proc) if r[0] == check and r[1] == profile]
    assert len(found) == 1, proc.stdout
    return found[0]


def doc(proc) -> dict:
    d = json.loads(proc.stdout)
    assert (
        d["schema"] == "cancelctl-doctor/1" and d["exit_code"] == proc.returncode and d["ok"] == (proc.returncode == 0)
    )
    for c in d["checks"]:
        assert {"check", "profile", "status", "detail", "exit_code"} <= set(c) and c["status"] in ("ok", "warn", "fail")
    return d


def by_check(d: dict, check: str, profile: str = "-") -> dict:
    found = [c for c in d["checks"] if c["check"] == check and c["profile"] == profile]
    assert len(found) == 1
    return found[0]


def assert_public_gets_only(sim, signed: int = 0) -> None:
    """Doctor sent unsigned GETs of the public endpoints (no signature, no key, no body) and ``signed`` signed
    read-only requests (Gemini ``POST /v1/orders``, Pacifica ``list_api_keys``), never a cancel. A read the venue
    refused for its nonce is sent again with a fresh one (Gemini InvalidNonce), and counts once."""
    log = sim.requests()
    assert log, "doctor sent nothing at all"
    reads = [r for r in log if (r["method"], r["path"]) in SIGNED_READS]
    assert len({(r.get("key"), r.get("account")) for r in reads}) == signed, reads
    for r in log:
        assert "cancel" not in r["path"] and "/order/" not in r["path"], r
        if (r["method"], r["path"]) in SIGNED_READS:
            continue
        assert (r["method"], r["path"]) in PUBLIC, r
        assert not any(
            h.startswith("x-gemini") or "signature" in h or h in ("pf-api-key", "content-length") for h in r["headers"]
        ), r
        assert not {"key", "nonce", "account", "timestamp"} & set(r), r  # nothing signed was parsed out of it


@pytest.fixture
def both(sim, env):
    """A Gemini profile ``main`` and a Pacifica profile ``pac`` on the simulator, secrets in the environment."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config(
        {
            "main": {"venue": "gemini", "base_url": sim.url},
            "pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"},
        },
        default="main",
    )
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    env.secret("pac", "private_key", MAIN_PRIVATE)
    return sim


def test_all_green(both, env):
    sim = both
    open_order = sim.gemini.add_order("primary", GEMINI_KEY)
    proc = env.run("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    got = rows(proc)
    assert [(r[0], r[1]) for r in got] == [("config", "-"), ("keyring", "-")] + [
        (c, p) for p in ("main", "pac") for c in PER_PROFILE
    ]
    assert all(r[2] == "ok" for r in got), proc.stdout
    assert str(env.config_dir / "config.toml") in row(proc, "config")[3]
    assert "not needed" in row(proc, "keyring")[3] and "fail.Keyring" in row(proc, "keyring")[3]
    assert row(proc, "secrets", "main")[3] == "api_key=env  api_secret=env"
    assert row(proc, "secrets", "pac")[3] == "private_key=env"
    assert row(proc, "key", "main")[3].startswith("account key")
    assert MAIN in row(proc, "key", "pac")[3] and "agent_wallet unset" in row(proc, "key", "pac")[3]
    assert "/v1/symbols: HTTP 200" in row(proc, "reach", "main")[3]
    assert "/api/v1/info: HTTP 200" in row(proc, "reach", "pac")[3]
    assert row(proc, "auth", "main")[3].startswith("key accepted: signed POST /v1/orders answered (1 open order(s)")
    assert row(proc, "auth", "pac")[3] == f"key accepted: signed list_api_keys for account {MAIN} (its own key)"
    assert_public_gets_only(sim, signed=2)
    assert {r["path"] for r in sim.requests()} == {"/v1/symbols", "/api/v1/info"} | {p for _, p in SIGNED_READS}
    assert open_order in {o.order_id for o in sim.gemini.open_orders()}  # read, never cancelled


def test_json_document(both, env):
    proc = env.run("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    d = doc(proc)
    assert [c["status"] for c in d["checks"]] == ["ok"] * 14
    for name in ("main", "pac"):
        reach, clock = by_check(d, "reach", name), by_check(d, "clock", name)
        assert reach["http_status"] == 200 and 0 < reach["latency_ms"] < 5000
        assert isinstance(clock["skew_s"], float) and 0.5 <= clock["skew_uncertainty_s"] < 3
        # same machine: the true skew is 0, so it lies inside the reported interval
        assert abs(clock["skew_s"]) <= clock["skew_uncertainty_s"] + 0.05, clock
    assert by_check(d, "clock", "pac")["limit_s"] == 5.0
    assert by_check(d, "clock", "main")["limit_s"] is None and by_check(d, "clock", "main")["warn_s"] == 30.0
    assert by_check(d, "secrets", "main")["sources"] == {"api_key": "env", "api_secret": "env"}


def test_quiet_prints_nothing_on_success(both, env):
    proc = env.run("doctor", "-q")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_missing_secret_names_the_fix(sim, env):
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    proc = env.run("doctor", "-p", "main")
    assert proc.returncode == 78, proc.stdout + proc.stderr
    check, _, status, detail = row(proc, "secrets", "main")
    assert status == "fail"
    assert detail.startswith("api_key=env  api_secret=missing")
    assert "$CANCELCTL_MAIN_API_SECRET" in detail and "cancelctl keys set main" in detail
    assert row(proc, "keyring")[2] == "fail" and "main" in row(proc, "keyring")[3]  # the fail backend is needed here
    assert row(proc, "key", "main")[2] == "warn"
    assert row(proc, "reach", "main")[2] == "ok"  # the network checks still ran
    assert row(proc, "auth", "main")[2] == "warn"  # not proven: nothing signed without the secret
    errors = proc.stderr.strip().splitlines()
    assert any("profile main: secrets:" in e and "CANCELCTL_MAIN_API_SECRET" in e for e in errors)
    assert all(e.startswith("cancelctl: error: ") for e in errors) and "Traceback" not in proc.stderr
    assert_public_gets_only(sim)


def test_quiet_failure_goes_to_stderr_only(sim, env):
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    proc = env.run("doctor", "-q")
    assert proc.returncode == 78 and proc.stdout == ""
    assert "cancelctl keys set main" in proc.stderr


def test_secret_from_file_is_shown_as_file_never_its_value(both, env, tmp_path):
    secret = "FILESECRET-0123456789abcdef"
    SECRETS_USED.add(secret)
    (tmp_path / "secret").write_text(secret + "\n")
    del env.vars["CANCELCTL_MAIN_API_SECRET"]
    env.vars["CANCELCTL_MAIN_API_SECRET_FILE"] = str(tmp_path / "secret")
    both.gemini.add_key(GEMINI_KEY, secret)
    for args in (("doctor",), ("doctor", "--json"), ("--debug", "doctor", "-p", "main", "--json")):
        proc = env.run(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for value in (secret, GEMINI_SECRET, MAIN_PRIVATE, GEMINI_KEY):
            assert value not in proc.stdout + proc.stderr
    assert doc(proc)["checks"][3]["sources"] == {"api_key": "env", "api_secret": "file"}


@pytest.mark.parametrize(
    ("profile", "offset", "status", "code", "refused"),
    [
        # the signed read is refused as the cancel would be: expired ("Invalid message"), exit 4
        ({"venue": "pacifica"}, 120, "fail", 4, "Invalid message"),
        ({"venue": "pacifica"}, -120, "fail", 1, None),  # a timestamp ahead of the venue's clock is accepted
        ({"venue": "gemini", "nonce": "time-based"}, 120, "fail", 1, "InvalidNonce"),
        ({"venue": "gemini"}, 120, "warn", 0, None),  # millisecond nonces: Gemini does not check the time
        ({"venue": "pacifica"}, 3, "warn", 0, None),  # within the 5 s window, beyond the 2 s warning
    ],
    ids=["pacifica-ahead", "pacifica-behind", "gemini-time-based", "gemini-milliseconds", "pacifica-3s"],
)
def test_clock_skew(sim, env, profile, offset, status, code, refused):
    sim.clock_offset = offset
    base = sim.url + ("/api/v1" if profile["venue"] == "pacifica" else "")
    env.write_config({"x": {**profile, "base_url": base}})
    if profile["venue"] == "pacifica":
        sim.pacifica.add_account(MAIN_PRIVATE)
        env.secret("x", "private_key", MAIN_PRIVATE)
    else:
        sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, time_based=profile.get("nonce") == "time-based")
        env.secret("x", "api_key", GEMINI_KEY)
        env.secret("x", "api_secret", GEMINI_SECRET)
    proc = env.run("doctor", "--json")
    assert proc.returncode == code, proc.stdout + proc.stderr
    clock = by_check(doc(proc), "clock", "x")
    assert clock["status"] == status, clock
    assert abs(clock["skew_s"] - offset) <= clock["skew_uncertainty_s"] + 0.05, clock
    auth = by_check(doc(proc), "auth", "x")
    assert [c["check"] for c in doc(proc)["checks"] if c["status"] != "ok"] == ["auth", "clock"] if refused else [
        "clock"
    ]
    assert refused is None or auth["venue_reason"] == refused, auth
    if status == "fail":
        assert "sync this machine's clock" in clock["detail"]
        assert any(line.startswith("cancelctl: error: profile x: clock:") for line in proc.stderr.splitlines())
    assert_public_gets_only(sim, signed=1)


def test_skewed_venue_really_refuses_what_doctor_fails(sim, env):
    """The limits are the venue's: at 120 s the simulated Pacifica refuses a signed cancel as expired."""
    sim.clock_offset = 120
    sim.pacifica.add_account(MAIN_PRIVATE)
    order = sim.pacifica.add_order(MAIN, "BTC")
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("pac", "private_key", MAIN_PRIVATE)
    assert env.run("doctor", "-q").returncode == 4  # its signed read is refused as expired, as the cancel is
    cancel = env.run("cancel", "all", "-q", "--timeout", "3")
    assert cancel.returncode == 4 and "expired" in cancel.stderr  # Pacifica "Invalid message"
    assert order in {o.order_id for o in sim.pacifica.open_orders()}
    sim.clock_offset = 0
    assert env.run("doctor", "-q").returncode == 0


def test_unreachable_venue_is_75(sim, env):
    port = closed_port()
    env.write_config({"pac": {"venue": "pacifica", "base_url": f"http://127.0.0.1:{port}/api/v1"}})
    env.secret("pac", "private_key", MAIN_PRIVATE)
    started = time.monotonic()
    proc = env.run("doctor", "--timeout", "3")
    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert time.monotonic() - started < 15
    check, _, status, detail = row(proc, "reach", "pac")
    assert status == "fail" and f"127.0.0.1:{port}" in detail
    assert row(proc, "clock", "pac")[2] == "warn" and "not measured" in row(proc, "clock", "pac")[3]
    assert [r[0] for r in rows(proc) if r[2] == "fail"] == ["reach"]
    assert "profile pac: reach:" in proc.stderr


def test_unavailable_and_wrong_url(sim, env):
    """A 503 from the venue is 75 (try later); a 404 is a wrong base_url, 78."""
    sim.fail("/v1/symbols", status=503, times=-1)
    env.write_config(
        {"g": {"venue": "gemini", "base_url": sim.url}, "p": {"venue": "pacifica", "base_url": sim.url + "/wrong"}}
    )
    env.secret("g", "api_key", GEMINI_KEY)
    env.secret("g", "api_secret", GEMINI_SECRET)
    env.secret("p", "private_key", MAIN_PRIVATE)
    proc = env.run("doctor", "-p", "g", "--json")
    assert proc.returncode == 75
    assert by_check(doc(proc), "reach", "g")["http_status"] == 503
    assert by_check(doc(proc), "clock", "g")["status"] == "ok"  # a 503 still carries a Date
    proc = env.run("doctor", "--json")
    assert proc.returncode == 78  # configuration beats unavailability
    reach = by_check(doc(proc), "reach", "p")
    assert reach["status"] == "fail" and reach["http_status"] == 404 and "base_url" in reach["detail"]


def test_usage_error_is_one_json_document(env):
    proc = env.run("doctor", "--bogus", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["kind"] == "usage"


def test_missing_config_file(env):
    proc = env.run("doctor")
    assert proc.returncode == 78
    check, _, status, detail = rows(proc)[0]
    assert (check, status) == ("config", "fail")
    assert str(env.config_dir / "config.toml") in detail and "cancelctl profiles add" in detail
    assert [r[0] for r in rows(proc)] == ["config", "keyring"]


def test_invalid_profile_and_unknown_name(sim, env):
    env.config_dir.mkdir(parents=True)
    (env.config_dir / "config.toml").write_text(
        f'[profiles.good]\nvenue = "gemini"\nbase_url = "{sim.url}"\n[profiles.bad]\nvenue = "kraken"\n'
    )
    env.secret("good", "api_key", GEMINI_KEY)
    env.secret("good", "api_secret", GEMINI_SECRET)
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    proc = env.run("doctor")
    assert proc.returncode == 78
    assert row(proc, "config")[2] == "fail"  # every other command would refuse this file
    assert row(proc, "profile", "bad")[2] == "fail" and "venue must be one of" in row(proc, "profile", "bad")[3]
    assert [r[2] for r in rows(proc) if r[1] == "good"] == ["ok"] * 6  # the valid profile is still checked
    proc = env.run("doctor", "-p", "good", "-p", "nope")
    assert row(proc, "profile", "nope")[2] == "fail" and "choices: good, bad" in row(proc, "profile", "nope")[3]
    assert proc.returncode == 78


@pytest.mark.parametrize(
    ("profile", "secrets", "status", "words"),
    [
        (
            {"venue": "gemini"},
            {"api_key": "not-a-gemini-key", "api_secret": "SECRET-abcdefghijkl1"},
            "fail",
            "account-... or master-...",
        ),
        (
            {"venue": "gemini"},
            {"api_key": "SECRET-abcdefghijkl2", "api_secret": "account-swappedkey1"},
            "fail",
            "swapped",
        ),
        (
            {"venue": "gemini"},
            {"api_key": "master-KEY0001", "api_secret": "SECRET-abcdefghijkl3"},
            "fail",
            "MissingAccounts",
        ),
        (
            {"venue": "gemini", "account": "desk-2"},
            {"api_key": "account-KEY0001", "api_secret": "SECRET-abcdefghijkl4"},
            "fail",
            "AccountsOnGroupOnlyApi",
        ),
        (
            {"venue": "gemini", "account": "desk-2"},
            {"api_key": "master-KEY0001", "api_secret": "SECRET-abcdefghijkl5"},
            "ok",
            "master key for sub-account desk-2",
        ),
        ({"venue": "pacifica"}, {"private_key": MAIN_PRIVATE[:-3]}, "fail", "private_key"),
        ({"venue": "pacifica", "account": AGENT}, {"private_key": MAIN_PRIVATE}, "fail", "Verification failed"),
        (
            {"venue": "pacifica", "account": MAIN, "agent_wallet": AGENT},
            {"private_key": MAIN_PRIVATE},
            "fail",
            "agent wallet",
        ),
        (
            {"venue": "pacifica", "account": MAIN, "agent_wallet": AGENT},
            {"private_key": AGENT_PRIVATE},
            "ok",
            f"agent wallet {AGENT}, signing for account {MAIN}",
        ),
    ],
    ids=[
        "gemini-prefix",
        "gemini-swapped",
        "master-no-account",
        "account-key-with-account",
        "master-ok",
        "pacifica-damaged",
        "pacifica-wrong-account",
        "pacifica-not-agent-key",
        "pacifica-agent-ok",
    ],
)
def test_key_sanity_without_network(sim, env, profile, secrets, status, words):
    base = sim.url + ("/api/v1" if profile["venue"] == "pacifica" else "")
    env.write_config({"k": {**profile, "base_url": base}})
    for field, value in secrets.items():
        env.secret("k", field, value)
    if status == "ok":  # the venue knows this key, so its signed read is accepted too
        if profile["venue"] == "gemini":
            sim.gemini.add_key(secrets["api_key"], secrets["api_secret"], account="desk-2")
        else:
            sim.pacifica.bind_agent(MAIN, AGENT)
    proc = env.run("doctor", "--json")
    key = by_check(doc(proc), "key", "k")
    assert key["status"] == status and words in key["detail"], key
    assert proc.returncode == (78 if status == "fail" else 0), proc.stdout
    assert by_check(doc(proc), "auth", "k")["status"] == ("warn" if status == "fail" else "ok")
    for value in secrets.values():
        assert value not in proc.stdout + proc.stderr
    assert_public_gets_only(sim, signed=0 if status == "fail" else 1)


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("gemini-wrong-secret", 4, "InvalidSignature"),
        ("gemini-unknown-sub-account", 78, "InvalidAccountName"),
        ("pacifica-unknown-account", 78, "Account not found"),
        ("pacifica-unbound-agent", 4, "Unauthorized"),
    ],
)
def test_doctor_proves_the_key(sim, env, case, code, words):
    """Every local check passes, and the venue refuses the key: one signed read-only request says so, with the
    venue's reason and its fix, and the cancel that follows fails the same way. Never a cancel."""
    if case.startswith("gemini"):
        master = case == "gemini-unknown-sub-account"
        key = "master-PROVE0001" if master else GEMINI_KEY
        sim.gemini.add_key(key, GEMINI_SECRET, account="desk-1")
        env.write_config({"k": {"venue": "gemini", "base_url": sim.url, **({"account": "desk-9"} if master else {})}})
        env.secret("k", "api_key", key)
        env.secret("k", "api_secret", GEMINI_SECRET if master else "WRONG-secret-0123456789")
        order = sim.gemini.add_order("desk-1")
        book = sim.gemini.open_orders
    else:
        agent = case == "pacifica-unbound-agent"
        sim.pacifica.add_account(MAIN_PRIVATE)  # the venue knows MAIN; the agent is never bound
        table = {"account": MAIN, "agent_wallet": AGENT} if agent else {}
        env.write_config({"k": {"venue": "pacifica", "base_url": sim.url + "/api/v1", **table}})
        env.secret("k", "private_key", AGENT_PRIVATE)  # without agent_wallet: a wallet Pacifica does not know
        order = sim.pacifica.add_order(MAIN, "BTC")
        book = sim.pacifica.open_orders
    proc = env.run("doctor", "--json")
    d = doc(proc)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert by_check(d, "key", "k")["status"] == "ok"  # nothing local could tell
    auth = by_check(d, "auth", "k")
    assert auth["status"] == "fail" and auth["exit_code"] == code and words in auth["detail"], auth
    assert "(" in auth["detail"]  # the fix comes with it
    assert "cancelctl: error: profile k: auth: " in proc.stderr
    assert_public_gets_only(sim, signed=1)
    assert order in {o.order_id for o in book()}
    assert env.run("cancel", "all", "-q").returncode == code  # what doctor predicted


def test_stalled_keyring_is_bounded(sim, env):
    """A keyring that never answers: a fail row within --timeout, and the venue is still probed."""
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    started = time.monotonic()
    proc = env.run(
        "doctor",
        "--timeout",
        "2",
        extra_env={"PYTHON_KEYRING_BACKEND": "slow_keyring.SlowKeyring", "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert time.monotonic() - started < 10
    assert proc.returncode == 78, proc.stdout + proc.stderr
    assert row(proc, "keyring")[2] == "fail" and "did not answer" in row(proc, "keyring")[3]
    assert row(proc, "secrets", "main")[2] == "fail"
    assert row(proc, "reach", "main")[2] == "ok"


def test_table_on_a_terminal(both, env):
    """On a TTY: a rich table and the verdict line, no traceback."""
    import pty

    master, slave = pty.openpty()
    proc = zygote.Popen(  # forked from the zygote: a pseudo-terminal is only an fd to pass
        [sys.executable, "-m", "cancelctl", "doctor"],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**env.environ(), "COLUMNS": "200"},
        text=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    collect("doctor (tty)", text + proc.stderr.read())
    assert proc.returncode == 0, text
    assert "every check passed" in text and "clock" in text and "pac" in text
    assert "\t" not in text and "Traceback" not in text


@pytest.mark.parametrize("where", ["option", "environment"])
def test_a_timeout_that_is_not_a_number_is_a_usage_error(env, where):
    """click's FloatRange lets nan through; doctor must not turn it into an unreachable venue (75)."""
    env.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    if where == "option":
        proc = env.run("doctor", "--timeout", "nan")
    else:
        proc = env.run("doctor", extra_env={"CANCELCTL_TIMEOUT": "nan"})
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cancelctl: error: ") and "--timeout" in lines[0], proc.stderr


@pytest.mark.parametrize("payload", ["{}", "[]", '{"success": null, "data": []}', "7"])
def test_doctor_pacifica_200_without_success_is_not_key_accepted(sim, env, payload):
    """A 200 that does not say ``success: true`` is not the venue accepting the key: doctor never says so."""
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config({"k": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("k", "private_key", MAIN_PRIVATE)
    sim.fail("/api/v1/account/api_keys", status=200, payload=payload, content_type="application/json", times=-1)
    # an unreadable answer ("7") is read again until the deadline: 2 s, not the default 10 s, is enough to see it
    proc = env.run("doctor", "--json", extra_env={"CANCELCTL_TIMEOUT": "2"})
    auth = by_check(doc(proc), "auth", "k")
    assert auth["status"] != "ok" and "key accepted" not in auth["detail"], auth
    assert proc.returncode != 0 and "key accepted" not in proc.stdout + proc.stderr
