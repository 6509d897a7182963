"""The real cancelctl process against the real simulator: Gemini."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import GEMINI_KEY, GEMINI_SECRET, collect, parse_json


def seed(g, n_session=2, n_ui=2, account="primary"):
    mine = [g.add_order(account, GEMINI_KEY, symbol="btcusd") for _ in range(n_session)]
    ui = [g.add_order(account, "UI", symbol="ethusd") for _ in range(n_ui)]
    return mine, ui


def live(g):
    return {o.order_id for o in g.open_orders()}


def test_cancel_all_cancels_every_session_including_ui(gemini, env):
    mine, ui = seed(gemini)
    other = gemini.add_order("other-account", "UI")  # another account is out of reach
    proc = env.run("cancel", "all")
    assert proc.returncode == 0, proc.stderr
    assert live(gemini) == {other}
    lines = proc.stdout.strip().splitlines()
    assert sorted(line.split("\t")[3] for line in lines) == sorted(str(i) for i in mine + ui)
    assert all(line.split("\t")[4] == "cancelled" for line in lines)
    assert proc.stderr == ""


def test_cancel_session_leaves_ui_orders(gemini, env):
    mine, ui = seed(gemini)
    proc = env.run("cancel", "session", "--json")
    assert proc.returncode == 0, proc.stderr
    assert live(gemini) == set(ui)
    doc = parse_json(proc)
    assert doc["results"][0]["action"] == "cancel_session"
    assert sorted(doc["results"][0]["cancelled"]) == sorted(map(str, mine))


def test_cancel_order_three_ids_one_unknown(gemini, env):
    a, b = (gemini.add_order("primary", GEMINI_KEY) for _ in range(2))
    proc = env.run("cancel", "order", str(a), "999", str(b))
    assert proc.returncode == 3, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert {(r[3], r[4]) for r in rows} == {(str(a), "cancelled"), (str(b), "cancelled"), ("999", "rejected")}
    assert [r for r in rows if r[3] == "999"][0][5] == "OrderNotFound"
    assert live(gemini) == set()


def test_master_key_sends_account(sim, env):
    sim.gemini.add_key("master-KEY0001", "master-secret-1")
    sim.gemini.accounts.add("desk-2")
    on_desk = sim.gemini.add_order("desk-2", "UI")
    on_primary = sim.gemini.add_order("primary", "UI")
    env.write_config({"m": {"venue": "gemini", "account": "desk-2", "base_url": sim.url}})
    env.secret("m", "api_key", "master-KEY0001")
    env.secret("m", "api_secret", "master-secret-1")
    proc = env.run("cancel", "all", "-p", "m", "--json")
    assert proc.returncode == 0, proc.stderr
    assert parse_json(proc)["results"][0]["cancelled"] == [str(on_desk)]
    assert live(sim.gemini) == {on_primary}


def test_master_key_without_account_is_config_error(sim, env):
    sim.gemini.add_key("master-KEY0001", "master-secret-1")
    env.write_config({"m": {"venue": "gemini", "base_url": sim.url}})
    env.secret("m", "api_key", "master-KEY0001")
    env.secret("m", "api_secret", "master-secret-1")
    proc = env.run("cancel", "all")
    assert proc.returncode == 78
    assert "account" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sim.requests() == []


def test_wrong_secret_is_exit_4(gemini, env):
    seed(gemini)
    env.secret("main", "api_secret", "not-the-secret")
    proc = env.run("cancel", "all", "--json")
    assert proc.returncode == 4
    doc = parse_json(proc)
    assert doc["results"][0]["error"]["venue_reason"] == "InvalidSignature"
    assert doc["results"][0]["status"] == "failed"
    assert len(live(gemini)) == 4
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_missing_role_is_exit_4(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, roles=frozenset({"auditor"}))
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    proc = env.run("cancel", "all")
    assert proc.returncode == 4 and "Trader" in proc.stderr


def test_missing_credentials_names_the_fix(sim, env):
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    proc = env.run("cancel", "all")
    assert proc.returncode == 78
    assert "cancelctl keys set main" in proc.stderr
    assert "CANCELCTL_MAIN_API_KEY" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sim.requests() == []


def test_non_integer_id_is_usage_error_and_nothing_is_sent(gemini, env):
    a = gemini.add_order("primary", GEMINI_KEY)
    proc = env.run("cancel", "order", str(a), "12abc")
    assert proc.returncode == 2
    assert "12abc" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert gemini.keys[GEMINI_KEY].last_nonce is None  # nothing reached the simulator
    assert live(gemini) == {a}


def test_dry_run_sends_no_cancel_and_prints_no_secret(gemini, env, sim):
    a = gemini.add_order("primary", GEMINI_KEY, symbol="ethusd", price="2400.00")
    proc = env.run("cancel", "order", str(a), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    # the book is read (read-only: POST /v1/orders), no cancel goes out
    assert [r["path"] for r in sim.requests()] == ["/v1/orders"] and live(gemini) == {a}
    out = proc.stdout + proc.stderr
    assert GEMINI_SECRET not in out and GEMINI_KEY not in out
    assert "/v1/order/cancel" in out and str(a) in out and "<redacted>" in out
    # which order the real run would cancel, with its details, before the signed request
    row = proc.stdout.splitlines()[0].split("\t")
    assert row[3:5] == [str(a), "would cancel"] and row[5].startswith("ethusd buy") and "@ 2400.00" in row[5]


def test_dry_run_json(gemini, env):
    proc = env.run("cancel", "all", "--dry-run", "--json")
    doc = parse_json(proc)
    assert proc.returncode == 0 and doc["dry_run"] is True
    (req,) = doc["results"][0]["requests"]
    assert req["headers"]["X-GEMINI-SIGNATURE"] == "<redacted>"
    assert req["signed"]["request"] == "/v1/order/cancel/all"
    assert doc["results"][0]["status"] == "skipped"


def test_json_document_shape(gemini, env):
    mine, ui = seed(gemini, 1, 1)
    gemini.orders[ui[0]].refuse = 1
    proc = env.run("cancel", "all", "--json")
    assert proc.returncode == 3
    doc = parse_json(proc)
    assert set(doc) >= {"schema", "ok", "exit_code", "dry_run", "results"}
    assert doc["ok"] is False and doc["exit_code"] == 3
    (r,) = doc["results"]
    assert r["profile"] == "main" and r["venue"] == "gemini" and r["action"] == "cancel_all"
    assert r["status"] == "partial" and r["cancelled"] == [str(mine[0])] and r["cancelled_count"] == 1
    assert r["rejected"] == [{"id": str(ui[0]), "reason": "cancel rejected by Gemini"}]
    assert r["remaining"] is None and r["error"] is None and isinstance(r["elapsed_ms"], float)


def test_json_on_usage_error(gemini, env):
    proc = env.run("cancel", "order", "abc", "--json")
    assert proc.returncode == 2
    doc = parse_json(proc)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["error"]["kind"] == "usage"


def test_json_on_unknown_option(gemini, env):
    proc = env.run("cancel", "all", "--json", "--bogus")
    assert proc.returncode == 2
    assert parse_json(proc)["exit_code"] == 2


def test_quiet_prints_nothing_on_success(gemini, env):
    seed(gemini, 1, 0)
    proc = env.run("cancel", "all", "-q")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_ten_concurrent_processes_on_one_key_never_fail_on_nonce(gemini, env):
    ids = [gemini.add_order("primary", GEMINI_KEY) for _ in range(10)]
    procs = [env.popen("cancel", "order", str(i), "--json") for i in ids]
    outs = [p.communicate(timeout=60) for p in procs]
    for i, p, (out, err) in zip(ids, procs, outs):
        collect(f"cancel order {i} --json", out + err)
        assert p.returncode == 0, err
        assert "InvalidNonce" not in out + err
        assert json.loads(out)["results"][0]["cancelled"] == [str(i)]  # each process cancelled its own order
    assert live(gemini) == set()


def test_invalid_nonce_is_resigned_and_resent(gemini, env):
    a = gemini.add_order("primary", GEMINI_KEY)
    # Another tool used the key with a nonce far ahead of ours for a moment.
    gemini.keys[GEMINI_KEY].last_nonce = int(time.time() * 1000) + 300
    proc = env.run("cancel", "order", str(a))
    assert proc.returncode == 0, proc.stderr
    assert live(gemini) == set()


def test_time_based_nonce_key(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, time_based=True)
    a = sim.gemini.add_order("primary", GEMINI_KEY)
    env.write_config({"t": {"venue": "gemini", "nonce": "time-based", "base_url": sim.url}})
    env.secret("t", "api_key", GEMINI_KEY)
    env.secret("t", "api_secret", GEMINI_SECRET)
    proc = env.run("cancel", "all")
    assert proc.returncode == 0, proc.stderr
    assert live(sim.gemini) == set() and a


def test_bare_404_is_not_order_not_found(sim, env):
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url + "/wrong"}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    proc = env.run("cancel", "order", "5", "--json")
    doc = parse_json(proc)
    assert proc.returncode == 78 and doc["results"][0]["error"]["kind"] == "config"
    assert "OrderNotFound" not in proc.stdout and "base_url" in proc.stderr


def test_profile_selection_needs_a_choice(sim, env):
    env.write_config({"a": {"venue": "gemini", "base_url": sim.url}, "b": {"venue": "gemini", "base_url": sim.url}})
    proc = env.run("cancel", "all")
    assert proc.returncode == 78 and "a, b" in proc.stderr
    proc = env.run("cancel", "all", "-p", "nope")
    assert proc.returncode == 78 and "nope" in proc.stderr


def test_profile_from_environment_variable(gemini, env):
    env.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}, "x": {"venue": "gemini"}})
    proc = env.run("cancel", "all", "--dry-run", "--json", extra_env={"CANCELCTL_PROFILE": "main"})
    assert [r["profile"] for r in parse_json(proc)["results"]] == ["main"]


def test_two_profiles_run_together(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.gemini.add_key("account-SECOND", "second-secret", account="second")
    a = sim.gemini.add_order("primary", "UI")
    b = sim.gemini.add_order("second", "UI")
    env.write_config({"one": {"venue": "gemini", "base_url": sim.url}, "two": {"venue": "gemini", "base_url": sim.url}})
    for p, k, s in (("one", GEMINI_KEY, GEMINI_SECRET), ("two", "account-SECOND", "second-secret")):
        env.secret(p, "api_key", k)
        env.secret(p, "api_secret", s)
    proc = env.run("cancel", "all", "-p", "one", "-p", "two", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = parse_json(proc)
    assert {r["profile"]: r["cancelled"] for r in doc["results"]} == {"one": [str(a)], "two": [str(b)]}


def test_one_profile_failing_gives_partial(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    a = sim.gemini.add_order("primary", "UI")
    env.write_config(
        {"good": {"venue": "gemini", "base_url": sim.url}, "bad": {"venue": "gemini", "base_url": sim.url}}
    )
    env.secret("good", "api_key", GEMINI_KEY)
    env.secret("good", "api_secret", GEMINI_SECRET)
    env.secret("bad", "api_key", GEMINI_KEY)
    env.secret("bad", "api_secret", "wrong")
    proc = env.run("cancel", "all", "-p", "good", "-p", "bad", "--json")
    assert proc.returncode == 3
    doc = parse_json(proc)
    assert {r["profile"]: r["status"] for r in doc["results"]} == {"good": "ok", "bad": "failed"}
    assert live(sim.gemini) == set() and a
    assert json.dumps(doc).count("InvalidSignature") >= 1


def test_no_traceback_on_bad_config(env):
    env.config_dir.mkdir(parents=True)
    (env.config_dir / "config.toml").write_text("[profiles.x\nvenue=")
    proc = env.run("cancel", "all")
    assert proc.returncode == 78 and "not valid TOML" in proc.stderr and "Traceback" not in proc.stderr


def test_cancel_all_with_many_concurrent_on_one_key(gemini, env):
    seed(gemini, 5, 5)
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda _: env.run("cancel", "all", "--json"), range(4)))
    assert all(p.returncode == 0 for p in procs), [p.stderr for p in procs]
    cancelled = [i for p in procs for i in parse_json(p)["results"][0]["cancelled"]]
    assert len(cancelled) == 10 and len(set(cancelled)) == 10
