"""panic, --verify, orders, the audit log, heartbeat and deadman: the real process against the simulator."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import GEMINI_KEY, GEMINI_SECRET, SECRETS_USED, audit_lines, collect, pacifica_keypair, parse_json


@pytest.fixture
def four(sim, env):
    """Two Gemini and two Pacifica profiles on the simulator, each with resting orders."""
    profiles = {}
    g = sim.gemini
    for i, name in enumerate(("g1", "g2")):
        key, secret, account = f"account-PANIC{i}", f"panic-secret-{i}", f"acct-{i}"
        g.add_key(key, secret, account=account)
        for symbol in ("btcusd", "ethusd"):
            g.add_order(account, key, symbol=symbol)
            g.add_order(account, "UI", symbol=symbol)
        profiles[name] = {"venue": "gemini", "base_url": sim.url}
        env.secret(name, "api_key", key)
        env.secret(name, "api_secret", secret)
    p = sim.pacifica
    for i, name in enumerate(("p1", "p2")):
        private, pub = pacifica_keypair(10 + i)
        assert p.add_account(private) == pub
        for symbol in ("BTC", "ETH", "SOL"):
            p.add_order(pub, symbol)
        p.add_order(pub, "BTC", reduce_only=True)
        p.add_order(pub, "ETH", stop=True)
        profiles[name] = {"venue": "pacifica", "base_url": sim.url + "/api/v1"}
        env.secret(name, "private_key", private)
    env.write_config(profiles)
    return sim


def open_count(sim) -> int:
    return len(sim.gemini.open_orders()) + len(sim.pacifica.open_orders())


def test_panic_cancels_every_profile(four, env):
    assert open_count(four) == 18
    proc = env.run("panic", "--json", "--reason", "drill")
    assert proc.returncode == 0, proc.stderr
    doc = parse_json(proc)
    assert sorted(r["profile"] for r in doc["results"]) == ["g1", "g2", "p1", "p2"]
    assert all(r["remaining"] == [] and r["status"] == "ok" for r in doc["results"])
    assert open_count(four) == 0
    (line,) = audit_lines(env)
    assert line["reason"] == "drill" and line["exit_code"] == 0 and len(line["results"]) == 4
    assert stat.S_IMODE(os.stat(env.state_dir / "audit.jsonl").st_mode) == 0o600
    # the state dir (created first by the nonce store) and everything in it: the owner's alone
    for path in [env.state_dir, *env.state_dir.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_panic_with_an_order_that_never_dies(four, env):
    stubborn = four.gemini.add_order("acct-0", "UI", refuse=100)
    proc = env.run("panic", "--json", "--timeout", "3")
    assert proc.returncode == 3
    doc = parse_json(proc)
    by = {r["profile"]: r for r in doc["results"]}
    assert by["g1"]["remaining"] == [str(stubborn)] and by["g1"]["status"] == "partial"
    assert all(by[p]["status"] == "ok" for p in ("g2", "p1", "p2"))
    assert open_count(four) == 1


def test_panic_retries_an_order_refusing_once(four, env):
    once = four.gemini.add_order("acct-1", "UI", refuse=1)
    proc = env.run("panic", "-p", "g2", "--json")
    assert proc.returncode == 0, proc.stderr
    r = parse_json(proc)["results"][0]
    assert str(once) in r["cancelled"] and r["remaining"] == [] and r["rejected"] == []


def test_panic_with_one_venue_down(four, env):
    profiles = {
        "g1": {"venue": "gemini", "base_url": four.url},
        "p1": {"venue": "pacifica", "base_url": four.url + "/api/v1"},
        "down": {"venue": "gemini", "base_url": "http://127.0.0.1:9"},  # nothing listens there
    }
    env.write_config(profiles)
    env.secret("down", "api_key", GEMINI_KEY)
    env.secret("down", "api_secret", GEMINI_SECRET)
    proc = env.run("panic", "--json", "--timeout", "2")
    assert proc.returncode == 3  # some 0, some not
    by = {r["profile"]: r for r in parse_json(proc)["results"]}
    assert by["g1"]["status"] == "ok" and by["p1"]["status"] == "ok"
    assert by["down"]["exit_code"] == 75 and by["down"]["error"]["kind"] == "unavailable"
    assert not [o for o in four.gemini.open_orders() if o.account == "acct-0"]
    assert len(audit_lines(env)) == 1


def test_unreadable_book_after_cancel_is_exit_5(gemini, env, sim):
    gemini.add_order("primary", "UI")
    sim.fail("/v1/orders", "status", status=500, body="html", times=-1)
    proc = env.run("cancel", "all", "--verify", "--json", "--timeout", "2")
    assert proc.returncode == 5
    r = parse_json(proc)["results"][0]
    assert r["status"] == "unknown" and r["verify_error"]["kind"] == "unknown"
    assert gemini.open_orders() == []


def test_verify_scoped_to_given_ids(gemini, env):
    a = gemini.add_order("primary", "UI", refuse=100)
    b = gemini.add_order("primary", "UI")  # not named: out of scope
    proc = env.run("cancel", "order", str(a), "--verify", "--json", "--timeout", "2")
    assert proc.returncode == 3
    r = parse_json(proc)["results"][0]
    assert r["remaining"] == [str(a)]
    assert {o.order_id for o in gemini.open_orders()} == {a, b}


def test_orders_lists_read_only(four, env):
    proc = env.run("orders", "-p", "g1", "-p", "p1", "--json")
    assert proc.returncode == 0, proc.stderr
    by = {r["profile"]: r for r in parse_json(proc)["results"]}
    assert len(by["g1"]["orders"]) == 4 and len(by["p1"]["orders"]) == 5
    assert open_count(four) == 18
    assert audit_lines(env) == []


def test_audit_log_under_concurrent_runs(gemini, env):
    for _ in range(8):
        gemini.add_order("primary", "UI")
    with ThreadPoolExecutor(8) as pool:
        procs = list(pool.map(lambda i: env.run("cancel", "all", "--reason", f"run-{i}", "-q"), range(8)))
    assert all(p.returncode == 0 for p in procs), [p.stderr for p in procs]
    lines = audit_lines(env)  # json.loads of every line: none torn or interleaved
    assert sorted(line["reason"] for line in lines) == sorted(f"run-{i}" for i in range(8))
    assert sum(r["cancelled_count"] for line in lines for r in line["results"]) == 8
    text = (env.state_dir / "audit.jsonl").read_text()
    assert not any(s in text for s in SECRETS_USED)


def test_audit_line_written_when_the_run_fails(gemini, env):
    env.secret("main", "api_secret", "wrong-secret")
    proc = env.run("cancel", "all", "--reason", "oops")
    assert proc.returncode == 4
    (line,) = audit_lines(env)
    assert line["exit_code"] == 4 and line["reason"] == "oops" and line["results"][0]["error"]["kind"] == "auth"
    assert "wrong-secret" not in (env.state_dir / "audit.jsonl").read_text()


def test_heartbeat_keeps_the_session_alive_past_the_window(sim, env):
    """The real process against a simulator whose window is 3 s instead of Gemini's 30 s (the same code path)."""
    window = 3.0
    sim.gemini.heartbeat_timeout = window
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, heartbeat=True)
    order = sim.gemini.add_order("primary", GEMINI_KEY)
    env.write_config({"hb": {"venue": "gemini", "base_url": sim.url}})
    env.secret("hb", "api_key", GEMINI_KEY)
    env.secret("hb", "api_secret", GEMINI_SECRET)
    proc = env.popen("heartbeat", "--interval", "1")
    try:
        time.sleep(window + 1.5)
        with sim.lock:
            sim.gemini.expire_heartbeats()
            assert sim.gemini.orders[order].live, "the session expired although heartbeats were sent"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    collect("heartbeat", out + err)
    assert proc.returncode == 0, err
    beats = len(sim.requests("/v1/heartbeat"))
    assert beats >= window
    # Stopped: once the window passes without a call, the simulator cancels the session's orders.
    with sim.lock:
        sim.gemini.expire_heartbeats(now=time.monotonic() + window + 1)
        assert not sim.gemini.orders[order].live


class FakeClock:
    """A monotonic clock that only moves when the heartbeat loop waits (s)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return False  # never stopped


def test_heartbeat_exits_non_zero_when_the_window_is_missed():
    from cancelctl.cli.watch import HEARTBEAT_WINDOW_S, keep_alive
    from cancelctl.errors import NotSent

    clock, said, beats = FakeClock(), [], []

    def beat(name: str, seconds: float) -> None:
        beats.append((name, clock.now, seconds))
        raise NotSent("Gemini unreachable")

    code = keep_alive(["hb"], beat, interval=29, wait=clock.wait, clock=clock, say=said.append)
    assert code == 1
    # At 0 and 29 s; the second may take only the 1 s left of the window; the miss is reported at 30 s, not 58.
    assert beats == [("hb", 1000.0, 10.0), ("hb", 1029.0, 1.0)]
    assert any("heartbeat failed" in s for s in said) and "no heartbeat for 30 s" in said[-1]
    assert clock.now - 1000.0 == HEARTBEAT_WINDOW_S


def test_heartbeat_loop_survives_failures_inside_the_window_and_stops_cleanly():
    from cancelctl.cli.watch import keep_alive
    from cancelctl.errors import OutcomeUnknown

    clock, said = FakeClock(), []
    fail = {1000.0 + 14 * n for n in (1, 3)}  # every other beat fails: never 30 s without a good one (28 s at most)
    stops = iter([False] * 10 + [True])

    def beat(name: str, seconds: float) -> None:
        if clock.now in fail:
            raise OutcomeUnknown("no answer")

    def wait(seconds: float) -> bool:
        clock.wait(seconds)
        return next(stops)

    assert keep_alive(["a", "b"], beat, interval=14, wait=wait, clock=clock, say=said.append) == 0
    assert sum("heartbeat failed" in s for s in said) == 4  # two profiles, two failed rounds
    assert said[-1].startswith("heartbeat stopped")


def test_deadman_fires_within_ttl_plus_one_second_and_not_before(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    order = sim.gemini.add_order("primary", "UI")
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    alive = env.root / "bot.alive"
    proc = env.popen("deadman", "--ttl", "2", "--file", str(alive), "--json")
    deadline = time.time() + 10
    while not alive.exists() and time.time() < deadline:
        time.sleep(0.05)
    stop = threading.Event()

    def bot():
        while not stop.wait(0.5):
            alive.touch()

    t = threading.Thread(target=bot, daemon=True)
    t.start()
    time.sleep(5)  # 2.5 TTLs of healthy check-ins: must not fire
    assert proc.poll() is None and sim.requests("/v1/order/cancel") == []
    stop.set()
    t.join()
    last_checkin = alive.stat().st_mtime
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    (first_cancel,) = sim.requests("/v1/order/cancel/all")
    fired_after = first_cancel["time"] - last_checkin
    assert 2.0 <= fired_after <= 3.0, fired_after
    assert not sim.gemini.orders[order].live
    assert json.loads(out)["results"][0]["remaining"] == []
    (line,) = audit_lines(env)
    assert line["reason"].startswith("deadman: no check-in")
