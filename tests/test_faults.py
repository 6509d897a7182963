"""The fault matrix: the real cancelctl process against the simulator, one fault at a time.

Each case checks what docs/faults.md promises: the exit code (75 nothing
was sent, 5 outcome unknown, 1 or 4 refused), one line on stderr, the run's
audit line with the same code, retries only of what is safe to resend and
each re-signed (Gemini: a fresh, larger nonce; Pacifica: a fresh
timestamp), Retry-After and backoff visible in the simulator's request log,
and the process over within ``--timeout`` + 0.5 s, start-up included.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import zygote

from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, GEMINI_SECRET, audit_lines, closed_port, collect, parse_json

SLACK = 0.5  # the contract's bound past --timeout, start-up and exit included
PAC_PRIVATE, PAC_ACCOUNT = solana_keypair(bytes(range(101, 133)))
TESTS = Path(__file__).parent


# -- helpers -------------------------------------------------------------------


def timed(env, *args, **kw):
    """Run the real process; (CompletedProcess, seconds it took)."""
    t0 = time.monotonic()
    proc = env.run(*args, **kw)
    return proc, time.monotonic() - t0


def check(env, proc, elapsed: float, timeout: float, code: int) -> None:
    """The contract's promises for one run: code, one stderr line on error, the audit line, the deadline."""
    assert proc.returncode == code, (proc.returncode, proc.stderr, proc.stdout)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    if code:
        assert len(lines) == 1 and lines[0].startswith("cancelctl: error: "), proc.stderr
    else:
        assert lines == [], proc.stderr
    assert elapsed <= timeout + SLACK, f"took {elapsed:.2f} s with --timeout {timeout}"
    (line,) = audit_lines(env)
    assert line["exit_code"] == code and len(line["results"]) == 1


def nonces(sim, prefix: str) -> list[Decimal]:
    return [Decimal(r["nonce"]) for r in sim.requests(prefix)]


def assert_resigned(sim, prefix: str, *, field: str = "nonce") -> None:
    """Every attempt carried its own, larger nonce (Gemini) or timestamp (Pacifica)."""
    values = [Decimal(str(r[field])) for r in sim.requests(prefix)]
    assert len(values) >= 2, "expected retries"
    assert all(b > a for a, b in zip(values, values[1:])), values


def gaps(sim, prefix: str) -> list[float]:
    times = [r["time"] for r in sim.requests(prefix)]
    return [b - a for a, b in zip(times, times[1:])]


@pytest.fixture
def pac(sim, env):
    """One Pacifica profile ``pac`` with two resting BTC orders."""
    sim.pacifica.add_account(PAC_PRIVATE)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("pac", "private_key", PAC_PRIVATE)
    ids = [sim.pacifica.add_order(PAC_ACCOUNT, "BTC") for _ in range(2)]
    return ids


class Unaccepting:
    """A loopback listener whose accept queue is full: a connect to it times out (nothing is ever sent)."""

    def __enter__(self) -> str:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(0)
        port = self.server.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            self.fillers.append(c)
        time.sleep(0.1)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        for c in self.fillers:
            c.close()
        self.server.close()


# -- Gemini: HTTP answers --------------------------------------------------------

ALL = "/v1/order/cancel/all"

# (id, fault, --timeout, exit code, attempts: "one" | "retried")
GEMINI_STATUS = [
    ("429-rate-limited", dict(status=429, body="gemini", reason="RateLimited"), 1.0, 75, "retried"),
    ("429-bare", dict(status=429, body="none"), 1.0, 75, "retried"),
    ("500-system", dict(status=500, body="gemini", reason="System"), 1.0, 5, "retried"),
    ("500-html", dict(status=500, body="html"), 1.0, 5, "retried"),
    ("502-html-error-page", dict(status=502, body="html"), 1.0, 5, "retried"),
    ("503-bare", dict(status=503, body="none"), 1.0, 75, "retried"),
    ("503-maintenance", dict(status=503, body="gemini", reason="Maintenance"), 1.0, 75, "retried"),
    ("200-html", dict(status=200, body="html"), 1.0, 5, "retried"),
    ("400-html-refused", dict(status=400, body="html"), 1.0, 1, "one"),
    ("403-html-refused", dict(status=403, body="html"), 1.0, 4, "one"),
    ("400-invalid-signature", dict(status=400, body="gemini", reason="InvalidSignature"), 1.0, 4, "one"),
]


@pytest.mark.parametrize(
    "fault, timeout, code, attempts", [c[1:] for c in GEMINI_STATUS], ids=[c[0] for c in GEMINI_STATUS]
)
def test_gemini_status_faults(gemini, env, sim, fault, timeout, code, attempts):
    order = gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", times=-1, **fault)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", str(timeout))
    check(env, proc, elapsed, timeout, code)
    doc = parse_json(proc)
    assert doc["exit_code"] == code and doc["results"][0]["error"] is not None
    if attempts == "one":
        assert len(sim.requests(ALL)) == 1, "a refusal must not be resent"
    else:
        assert_resigned(sim, ALL)
    if fault["status"] != 200:
        assert gemini.orders[order].live  # every attempt was refused before the venue acted


def test_gemini_retry_after_is_honoured_then_succeeds(gemini, env, sim):
    order = gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=429, body="gemini", reason="RateLimited", retry_after=0.4, times=2)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "3")
    check(env, proc, elapsed, 3, 0)
    assert parse_json(proc)["results"][0]["cancelled"] == [str(order)]
    assert len(sim.requests(ALL)) == 3
    assert all(g >= 0.38 for g in gaps(sim, ALL)), gaps(sim, ALL)
    assert_resigned(sim, ALL)


def test_gemini_backoff_without_retry_after_doubles(gemini, env, sim):
    sim.fail(ALL, "status", status=429, body="none", times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--timeout", "1.5")
    check(env, proc, elapsed, 1.5, 75)
    g = gaps(sim, ALL)
    assert len(g) >= 3, g
    assert all(gap >= 0.09 * 2**i for i, gap in enumerate(g)), g  # 0.1 s, 0.2 s, 0.4 s...
    assert_resigned(sim, ALL)


def test_gemini_retry_after_beyond_the_deadline_gives_up_at_once(gemini, env, sim):
    sim.fail(ALL, "status", status=429, body="gemini", reason="RateLimited", retry_after=30, times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--timeout", "2")
    check(env, proc, elapsed, 2, 75)
    assert len(sim.requests(ALL)) == 1
    assert elapsed < 1.5, "waiting for a Retry-After past the deadline is pointless"


def test_gemini_maintenance_once_then_done(gemini, env, sim):
    order = gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=503, body="gemini", reason="Maintenance", times=1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "2")
    check(env, proc, elapsed, 2, 0)
    assert parse_json(proc)["results"][0]["cancelled"] == [str(order)]
    assert [r.get("status") for r in sim.requests(ALL)] == [None, 200]
    assert_resigned(sim, ALL)


def test_gemini_invalid_nonce_waits_for_the_clock_and_resigns(gemini, env, sim):
    """The key was used elsewhere with nonces 0.8 s ahead: each resend waits longer and carries a larger nonce."""
    a = gemini.add_order("primary", GEMINI_KEY)
    gemini.keys[GEMINI_KEY].last_nonce = int(time.time() * 1000) + 800
    proc, elapsed = timed(env, "cancel", "order", str(a), "--json", "--timeout", "3")
    check(env, proc, elapsed, 3, 0)
    seen = sim.requests("/v1/order/cancel")
    assert [r["status"] for r in seen][-1] == 200 and all(r["status"] == 400 for r in seen[:-1]) and len(seen) >= 2
    assert_resigned(sim, "/v1/order/cancel")
    assert all(g >= 0.045 * 2**i for i, g in enumerate(gaps(sim, "/v1/order/cancel"))), gaps(sim, "/v1/order/cancel")


# -- Gemini: connections -----------------------------------------------------------


def test_gemini_connection_refused(env):
    env.write_config({"main": {"venue": "gemini", "base_url": f"http://127.0.0.1:{closed_port()}"}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 75)
    assert parse_json(proc)["results"][0]["error"]["kind"] == "unavailable"
    assert "cannot reach" in proc.stderr


def test_gemini_unresolvable_host(env):
    # RFC 2606: .invalid never resolves. RES_OPTIONS bounds a resolver that would not answer.
    env.write_config({"main": {"venue": "gemini", "base_url": "https://cancelctl-test.invalid"}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    proc, elapsed = timed(
        env, "cancel", "all", "--json", "--timeout", "1", extra_env={"RES_OPTIONS": "timeout:1 attempts:1"}
    )
    check(env, proc, elapsed, 1, 75)
    assert parse_json(proc)["results"][0]["error"]["kind"] == "unavailable"


def test_gemini_connect_timeout_is_nothing_sent(env):
    with Unaccepting() as url:
        env.write_config({"main": {"venue": "gemini", "base_url": url}})
        env.secret("main", "api_key", GEMINI_KEY)
        env.secret("main", "api_secret", GEMINI_SECRET)
        proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 75)
    assert parse_json(proc)["results"][0]["error"]["kind"] == "unavailable"


def test_gemini_key_busy_until_the_deadline_is_nothing_sent(gemini, env, sim):
    """Another process holds the key's nonce lock: the deadline passes before the request could be sent."""
    from cancelctl.nonce import NonceSequence

    order = gemini.add_order("primary", "UI")
    with NonceSequence(env.state_dir, GEMINI_KEY).turn(5):
        proc, elapsed = timed(env, "cancel", "all", "--timeout", "1")
    check(env, proc, elapsed, 1, 75)
    assert "busy" in proc.stderr
    assert sim.requests() == [] and gemini.orders[order].live


@pytest.mark.parametrize("kind", ["late", "delay"])
def test_gemini_timeout_after_sending_is_unknown(gemini, env, sim, kind):
    """``late``: the venue acted, the answer never came; ``delay``: the request sits unprocessed. Both: unknown."""
    order = gemini.add_order("primary", "UI")
    sim.fail(ALL, kind, seconds=4, times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 5)
    r = parse_json(proc)["results"][0]
    assert r["status"] == "unknown" and r["error"]["kind"] == "unknown"
    assert len(sim.requests(ALL)) == 1  # no time left for a second attempt
    if kind == "late":
        assert not gemini.orders[order].live  # it did happen: "unknown" was the honest answer


def test_gemini_reset_mid_answer_every_time(gemini, env, sim):
    gemini.add_order("primary", "UI")
    sim.fail(ALL, "reset", times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 5)
    assert "failed mid-request" in proc.stderr or "no answer" in proc.stderr
    assert_resigned(sim, ALL)


def test_gemini_reset_once_then_the_retry_answers(gemini, env, sim):
    a = gemini.add_order("primary", GEMINI_KEY)
    sim.fail("/v1/order/cancel", "reset", times=1)
    proc, elapsed = timed(env, "cancel", "order", str(a), "--json", "--timeout", "2")
    check(env, proc, elapsed, 2, 0)
    assert parse_json(proc)["results"][0]["cancelled"] == [str(a)]
    assert_resigned(sim, "/v1/order/cancel")


@pytest.mark.parametrize("times, code", [(-1, 5), (1, 0)])
def test_gemini_truncated_json(gemini, env, sim, times, code):
    a = gemini.add_order("primary", GEMINI_KEY)
    sim.fail("/v1/order/cancel", "truncated", times=times)
    proc, elapsed = timed(env, "cancel", "order", str(a), "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, code)
    r = parse_json(proc)["results"][0]
    assert (r["unknown"], r["cancelled"]) == (([str(a)], []) if code else ([], [str(a)]))
    assert_resigned(sim, "/v1/order/cancel")


# -- the hard deadline ------------------------------------------------------------------


def test_gemini_trickling_answer_cannot_hold_the_run(gemini, env, sim):
    """One byte every 0.3 s never trips a per-read timeout: the run's own deadline ends it."""
    gemini.add_order("primary", "UI")
    sim.fail(ALL, "trickle", seconds=0.3, times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 5)
    r = parse_json(proc)["results"][0]
    assert r["status"] == "unknown" and "deadline" in r["error"]["message"]


def test_gemini_trickle_mid_list_keeps_every_id(gemini, env, sim):
    """The first ID's answer trickles past the deadline: it is unknown, the others are reported not sent, none is
    lost."""
    a, b, c = (gemini.add_order("primary", GEMINI_KEY) for _ in range(3))
    sim.fail("/v1/order/cancel", "trickle", seconds=0.3, times=1)
    proc, elapsed = timed(env, "cancel", "order", str(a), str(b), str(c), "--json", "--timeout", "1.5")
    check(env, proc, elapsed, 1.5, 5)
    r = parse_json(proc)["results"][0]
    assert r["unknown"] == [str(a)]
    assert {x["id"] for x in r["rejected"]} == {str(b), str(c)}
    assert all(x["reason"].startswith("not sent") for x in r["rejected"])
    assert gemini.orders[b].live and gemini.orders[c].live  # "not sent" is true
    assert len(sim.requests("/v1/order/cancel")) == 1


def test_gemini_book_trickling_during_verification(gemini, env, sim):
    """The cancel was answered; reading the book back trickles past the deadline: exit 5, the cancelled IDs kept."""
    a, b = (gemini.add_order("primary", "UI") for _ in range(2))
    gemini.add_order("primary", "UI", refuse=100)  # keeps the book non-empty: a long answer to trickle
    sim.fail("/v1/orders", "trickle", seconds=0.3, times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--verify", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 5)
    r = parse_json(proc)["results"][0]
    assert sorted(r["cancelled"]) == sorted([str(a), str(b)]) and len(r["rejected"]) == 1
    assert r["status"] == "unknown" and r["verify_error"]["kind"] == "unknown" and r["error"] is None
    assert "deadline" in r["verify_error"]["message"]


# -- Pacifica --------------------------------------------------------------------------

PAC_ALL = "/api/v1/orders/cancel_all"
BARE_400 = [
    ("Invalid signature", 4),
    ("Verification failed", 4),
    ("Invalid message", 4),
    ("Invalid public key", 4),
    ("Unauthorized", 4),
    ("Something the venue never documented", 1),
]


@pytest.mark.parametrize("message, code", BARE_400, ids=[m for m, _ in BARE_400])
def test_pacifica_bare_string_400(pac, env, sim, message, code):
    sim.fail(PAC_ALL, "status", status=400, body="text", reason=message, times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, code)
    err = parse_json(proc)["results"][0]["error"]
    assert err["venue_reason"] == message and err["kind"] == ("auth" if code == 4 else "refused")
    assert message in proc.stderr
    assert len(sim.requests(PAC_ALL)) == 1  # refusals are not resent
    assert len(sim.pacifica.open_orders(PAC_ACCOUNT)) == 2


PAC_STATUS = [
    ("429-retry-after", dict(status=429, body="text", reason="Too Many Requests", retry_after=0.3), 75),
    ("500-html", dict(status=500, body="html"), 5),
    ("502-html", dict(status=502, body="html"), 5),
    ("503-text", dict(status=503, body="text", reason="Service Unavailable"), 75),
]


@pytest.mark.parametrize("fault, code", [c[1:] for c in PAC_STATUS], ids=[c[0] for c in PAC_STATUS])
def test_pacifica_status_faults(pac, env, sim, fault, code):
    sim.fail(PAC_ALL, "status", times=-1, **fault)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, code)
    assert_resigned(sim, PAC_ALL, field="timestamp")
    if "retry_after" in fault:
        assert all(g >= 0.28 for g in gaps(sim, PAC_ALL)), gaps(sim, PAC_ALL)


def test_pacifica_rate_limited_once_then_done(pac, env, sim):
    sim.fail(PAC_ALL, "status", status=429, body="text", reason="Too Many Requests", retry_after=0.3, times=1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "2")
    check(env, proc, elapsed, 2, 0)
    assert parse_json(proc)["results"][0]["cancelled_count"] == 2
    assert gaps(sim, PAC_ALL)[0] >= 0.28
    assert_resigned(sim, PAC_ALL, field="timestamp")


def test_pacifica_connection_refused(env):
    env.write_config({"pac": {"venue": "pacifica", "base_url": f"http://127.0.0.1:{closed_port()}/api/v1"}})
    env.secret("pac", "private_key", PAC_PRIVATE)
    proc, elapsed = timed(env, "cancel", "all", "--timeout", "1")
    check(env, proc, elapsed, 1, 75)


@pytest.mark.parametrize("kind, code", [("late", 5), ("reset", 5), ("truncated", 5), ("trickle", 5)])
def test_pacifica_answer_faults(pac, env, sim, kind, code):
    sim.fail(PAC_ALL, kind, seconds=4 if kind == "late" else 0.3, times=-1)
    proc, elapsed = timed(env, "cancel", "all", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, code)
    assert parse_json(proc)["results"][0]["status"] == "unknown"


def test_pacifica_batch_in_flight_at_the_deadline(pac, env, sim):
    """Two IDs go in one batch request; its answer trickles: both unknown, neither dropped."""
    a, b = pac
    sim.fail("/api/v1/orders/batch", "trickle", seconds=0.3, times=-1)
    proc, elapsed = timed(env, "cancel", "order", str(a), str(b), "--symbol", "BTC", "--json", "--timeout", "1")
    check(env, proc, elapsed, 1, 5)
    r = parse_json(proc)["results"][0]
    assert sorted(r["unknown"]) == sorted([str(a), str(b)]) and r["rejected"] == []


# -- Ctrl-C ----------------------------------------------------------------------------


def wait_for(predicate, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out waiting for the simulator"
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen, label: str) -> tuple[str, str, float]:
    """SIGINT, then (stdout, stderr, seconds until the process ended); output collected for the secret search."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    collect(label, out + err)
    return out, err, time.monotonic() - t0


def test_ctrl_c_during_cancel_all(gemini, env, sim):
    gemini.add_order("primary", "UI")
    sim.fail(ALL, "late", seconds=8, times=-1)
    proc = env.popen("cancel", "all", "--json", "--timeout", "20")
    wait_for(lambda: sim.requests(ALL))
    time.sleep(0.1)
    out, err, took = interrupt(proc, "ctrl-c cancel all")
    assert proc.returncode == 130, err
    assert took < 1.5 and "Traceback" not in err
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["error"]["kind"] == "interrupted"
    (r,) = doc["results"]
    assert r["status"] == "unknown" and r["error"]["kind"] == "interrupted"
    (line,) = audit_lines(env)
    assert line["exit_code"] == 130 and line["results"][0]["status"] == "unknown"


def test_ctrl_c_during_cancel_order_reports_every_id(gemini, env, sim):
    a, b, c = (gemini.add_order("primary", GEMINI_KEY) for _ in range(3))
    sim.fail("/v1/order/cancel", "delay", seconds=0, times=1)  # the first cancel is answered
    sim.fail("/v1/order/cancel", "late", seconds=8, times=1)  # the second is processed, its answer never comes
    proc = env.popen("cancel", "order", str(a), str(b), str(c), "--timeout", "20")
    wait_for(lambda: len(sim.requests("/v1/order/cancel")) == 2)
    time.sleep(0.1)
    out, err, took = interrupt(proc, "ctrl-c cancel order")
    assert proc.returncode == 130, err
    assert took < 1.5 and "Traceback" not in err
    rows = {line.split("\t")[3]: line.split("\t")[4:] for line in out.strip().splitlines()}
    assert rows[str(a)][0] == "cancelled"
    assert rows[str(b)][0] == "unknown"
    assert rows[str(c)][0] == "rejected" and rows[str(c)][1].startswith("not sent")
    assert gemini.orders[c].live  # "not sent" was true, and stays true: the process is gone
    (line,) = audit_lines(env)
    r = line["results"][0]
    assert line["exit_code"] == 130 and r["unknown"] == [str(b)] and r["cancelled"] == [str(a)]


def test_ctrl_c_during_panic_keeps_the_finished_profiles(sim, env):
    for name in ("fast", "slow"):
        sim.gemini.add_key(f"account-{name.upper()}", f"{name}-secret", account=name)
        sim.gemini.add_order(name, "UI")
        env.secret(name, "api_key", f"account-{name.upper()}")
        env.secret(name, "api_secret", f"{name}-secret")
    env.write_config({name: {"venue": "gemini", "base_url": sim.url} for name in ("fast", "slow")})
    sim.fail(
        ALL, "late", seconds=8, times=-1, key="account-SLOW"
    )  # the slow account's cancel-all never gets its answer
    proc = env.popen("panic", "--json", "--timeout", "20")

    def ready() -> bool:
        slow_sent = any(r.get("key") == "account-SLOW" for r in sim.requests(ALL))
        fast_verified = any(
            r.get("key") == "account-FAST" and r.get("status") == 200 for r in sim.requests("/v1/orders")
        )
        return slow_sent and fast_verified

    wait_for(ready)
    time.sleep(0.2)
    out, err, took = interrupt(proc, "ctrl-c panic")
    assert proc.returncode == 130, err
    assert took < 1.5 and "Traceback" not in err
    doc = json.loads(out)
    assert doc["exit_code"] == 130
    by = {r["profile"]: r for r in doc["results"]}
    assert by["fast"]["status"] == "ok" and by["fast"]["remaining"] == []
    assert by["slow"]["status"] == "unknown" and by["slow"]["error"]["kind"] == "interrupted"
    assert not [o for o in sim.gemini.open_orders() if o.account == "fast"]
    (line,) = audit_lines(env)
    assert line["exit_code"] == 130 and {r["profile"]: r["status"] for r in line["results"]} == {
        "fast": "ok",
        "slow": "unknown",
    }


# -- many processes on one key ------------------------------------------------------------


def test_twenty_processes_on_one_key(gemini, env, sim):
    """Ten `cancel order` and ten `cancel all` at once on one key and state dir: nonces never collide."""
    ids = [gemini.add_order("primary", GEMINI_KEY) for _ in range(10)]
    commands = []
    for n, order_id in enumerate(ids):
        commands.append(("cancel", "order", str(order_id)))
        commands.append(("cancel", "all"))
    procs = [env.popen(*c, "--json", "--timeout", "20", "--reason", f"run-{n}") for n, c in enumerate(commands)]
    outs = [p.communicate(timeout=90) for p in procs]
    for c, (out, err) in zip(commands, outs):
        collect(" ".join(c), out + err)
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "InvalidNonce" not in out + err and "Traceback" not in err
        assert parse_json(subprocess.CompletedProcess([], 0, out, err))["exit_code"] == 0
    seen = [r for r in sim.requests("/v1/") if r.get("key") == GEMINI_KEY]
    assert len(seen) == 20 and all(r.get("status") == 200 for r in seen)  # no request was refused, none retried
    values = [Decimal(r["nonce"]) for r in seen]  # in arrival order
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert gemini.open_orders() == []
    text = (env.state_dir / "audit.jsonl").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 20
    lines = [json.loads(line) for line in text.splitlines()]
    assert sorted(line["reason"] for line in lines) == sorted(f"run-{n}" for n in range(20))
    for line in lines:
        assert {"time", "user", "host", "pid", "command", "exit_code", "results"} <= set(line)
        assert line["exit_code"] == 0 and line["results"][0]["profile"] == "main"
    assert len({line["pid"] for line in lines}) == 20


# -- never hangs ----------------------------------------------------------------------------


def detached(env, *args: str, unset: tuple[str, ...] = (), extra_env: dict | None = None, timeout: float = 30):
    """The real process with no terminal (its own session), stdin at /dev/null, and ``unset`` removed from its
    environment."""
    environ = env.environ()
    for name in unset:
        environ.pop(name, None)
    environ.update(extra_env or {})
    t0 = time.monotonic()
    proc = zygote.run(
        [sys.executable, "-m", "cancelctl", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        start_new_session=True,
    )
    collect(" ".join(args), proc.stdout + proc.stderr)
    return proc, time.monotonic() - t0


HEADLESS = ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY")


@pytest.mark.parametrize("command", [("cancel", "all"), ("panic",)])
def test_headless_without_credentials_names_the_fix(sim, env, command):
    """No keyring backend chosen, no D-Bus, no terminal, no secrets in the environment: 78 at once, saying what to
    do."""
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    proc, elapsed = detached(env, *command, unset=HEADLESS)
    assert proc.returncode == 78, proc.stderr
    assert elapsed < 5
    (line,) = proc.stderr.strip().splitlines()
    assert (
        "CANCELCTL_MAIN_API_KEY" in line and "CANCELCTL_MAIN_API_SECRET" in line and "cancelctl keys set main" in line
    )
    assert "Traceback" not in proc.stderr and sim.requests() == []
    (audit,) = audit_lines(env)
    assert audit["exit_code"] == 78


SLOW_KEYRING = {"PYTHON_KEYRING_BACKEND": "slow_keyring.SlowKeyring", "PYTHONPATH": str(TESTS)}


def test_blocked_keyring_cannot_hold_the_run(sim, env):
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    proc, elapsed = detached(env, "cancel", "all", "--json", "--timeout", "1", extra_env=SLOW_KEYRING)
    check(env, proc, elapsed, 1, 78)
    assert "did not answer" in proc.stderr and "CANCELCTL_MAIN_API_KEY" in proc.stderr
    assert parse_json(proc)["results"][0]["error"]["kind"] == "config"


def test_blocked_keyring_does_not_stop_the_other_profiles(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    order = sim.gemini.add_order("primary", "UI")
    env.write_config({"env": {"venue": "gemini", "base_url": sim.url}, "kr": {"venue": "gemini", "base_url": sim.url}})
    env.secret("env", "api_key", GEMINI_KEY)
    env.secret("env", "api_secret", GEMINI_SECRET)
    proc, elapsed = detached(env, "panic", "--json", "--timeout", "1.5", extra_env=SLOW_KEYRING)
    assert proc.returncode == 3, proc.stderr
    assert elapsed <= 1.5 + SLACK
    by = {r["profile"]: r for r in parse_json(proc)["results"]}
    assert by["env"]["status"] == "ok" and by["env"]["remaining"] == []
    assert by["kr"]["exit_code"] == 78 and "did not answer" in by["kr"]["error"]["message"]
    assert not sim.gemini.orders[order].live
    (line,) = audit_lines(env)
    assert line["exit_code"] == 3
