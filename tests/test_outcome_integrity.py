"""Issue 11, one test (or a small table) per numbered case: never a false "done", never a jammed button.

Every test runs the real ``cancelctl`` process, against the simulator or a
hostile loopback venue (``tests/hostile.py``) that answers what the test says.
"""

from __future__ import annotations

import json
import time

import pytest
from hostile import PAC_ACCOUNT, PAC_PRIVATE, P, reply

from conftest import GEMINI_KEY, GEMINI_SECRET, parse_json

G_CANCEL, G_ALL, G_ORDERS = "/v1/order/cancel", "/v1/order/cancel/all", "/v1/orders"


def result_of(proc) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 70, proc.stderr
    (r,) = parse_json(proc)["results"]
    return r


def rows(r: dict) -> dict[str, str]:
    """ID -> row (cancelled / rejected / unknown); fails when an ID has two rows."""
    out: dict[str, str] = {}
    for kind, ids in (
        ("cancelled", r["cancelled"]),
        ("rejected", [x["id"] for x in r["rejected"]]),
        ("unknown", r["unknown"]),
    ):
        for i in ids:
            assert i not in out, f"{i} has two rows: {out[i]} and {kind}"
            out[i] = kind
    return out


def audit(env) -> list[dict]:
    path = env.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- 2. a Pacifica single or stop cancel: only an explicit success is a cancel ----------------------

PAC_SINGLE = [
    ({"success": True}, 0, "cancelled"),
    ({"success": True, "data": None, "error": None, "code": None}, 0, "cancelled"),
    ({"success": None, "error": "Order not found"}, 1, "rejected"),
    ({}, 5, "unknown"),
    ([], 5, "unknown"),
    ({"result": "error"}, 5, "unknown"),
    ({"success": "true"}, 5, "unknown"),
    ({"success": True, "data": {"order_id": 999}}, 5, "unknown"),  # an answer about another order
]


CASES_2 = [(b, c, r, False) for b, c, r in PAC_SINGLE] + [(b, c, r, True) for b, c, r in PAC_SINGLE[2:5]]


@pytest.mark.parametrize(
    "body, code, row, stop", CASES_2, ids=[json.dumps(b) + ("-stop" if st else "") for b, _, _, st in CASES_2]
)
def test_2_pacifica_single_cancel_needs_an_explicit_success(pac, env, body, code, row, stop):
    pac.script(P + ("/orders/stop/cancel" if stop else "/orders/cancel"), reply(200, body))
    proc = env.run(
        "cancel", "order", "42", "--symbol", "BTC", *(["--stop"] if stop else []), "--json", "--timeout", "3"
    )
    r = result_of(proc)
    assert proc.returncode == code, proc.stderr
    assert rows(r) == {"42": row}
    if row == "rejected":
        assert r["rejected"][0]["reason"] == "Order not found"


# -- 3. Gemini: the row belongs to the ID that was asked for ---------------------------------------


@pytest.mark.parametrize("named", ["999", None, 1e20, -5])
def test_3_gemini_answer_about_another_order_leaves_the_asked_id_unknown(gem, env, named):
    gem.script(G_CANCEL, reply(200, {"order_id": named, "is_live": False, "is_cancelled": True, "reason": "Requested"}))
    proc = env.run("cancel", "order", "123", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 5
    assert rows(r) == {"123": "unknown"}
    assert "999" not in proc.stdout.replace("elapsed", "")


def test_3_gemini_the_asked_order_cancelled(gem, env):
    gem.script(G_CANCEL, reply(200, {"order_id": "123", "is_live": False, "is_cancelled": True, "reason": "Requested"}))
    proc = env.run("cancel", "order", "123", "--json", "--timeout", "3")
    assert proc.returncode == 0 and rows(result_of(proc)) == {"123": "cancelled"}


# -- 4. Pacifica batch results are matched by order_id when the venue gives it ---------------------


def batch(*results) -> dict:
    return {"success": True, "data": {"results": list(results)}, "error": None, "code": None}


def test_4_batch_results_naming_other_orders_are_unknown(pac, env):
    pac.script(
        P + "/orders/batch", reply(200, batch(*({"success": True, "order_id": i, "error": None} for i in (7, 8, 9))))
    )
    proc = env.run("cancel", "order", "1", "2", "3", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 5
    assert rows(r) == {"1": "unknown", "2": "unknown", "3": "unknown"}


def test_4_batch_results_are_matched_by_id_not_position(pac, env):
    pac.script(
        P + "/orders/batch",
        reply(
            200,
            batch(
                {"success": False, "order_id": 3, "error": "Order not found"},
                {"success": True, "order_id": 2},
                {"success": True, "order_id": 1},
            ),
        ),
    )
    proc = env.run("cancel", "order", "1", "2", "3", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 3
    assert rows(r) == {"1": "cancelled", "2": "cancelled", "3": "rejected"}


def test_4_batch_results_without_ids_go_by_position_and_missing_ones_are_unknown(pac, env):
    pac.script(
        P + "/orders/batch", reply(200, batch({"success": True}, {"success": False, "error": "Failed to cancel order"}))
    )
    proc = env.run("cancel", "order", "1", "2", "3", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 5
    assert rows(r) == {"1": "cancelled", "2": "rejected", "3": "unknown"}


# -- 5. a book that cannot be read whole is a book not read ------------------------------------------

ALL_OK = {"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}}


@pytest.mark.parametrize(
    "book",
    [
        [333, "444", None],
        [{"order_id": "1", "symbol": "btcusd"}, {"symbol": "btcusd"}],
        [{"order_id": None}],
        [{"order_id": 1e20}],
        [{"order_id": "abc"}],
        {"orders": []},
    ],
    ids=["bare-ids", "missing-id", "null-id", "float-id", "text-id", "object"],
)
def test_5_gemini_unreadable_book_is_exit_5(gem, env, book):
    gem.script(G_ALL, reply(200, ALL_OK))
    gem.script(G_ORDERS, reply(200, book))
    proc = env.run("cancel", "all", "--verify", "--json", "--timeout", "2")
    r = result_of(proc)
    assert proc.returncode == 5, proc.stderr
    assert r["verify_error"]["kind"] == "unknown"
    assert "verified" not in proc.stderr


def test_5_gemini_unreadable_book_keeps_the_rows_already_known(gem, env):
    gem.script(G_CANCEL, reply(200, {"order_id": "123", "is_live": False, "is_cancelled": True}))
    gem.script(G_ORDERS, reply(200, [{"order_id": "abc", "symbol": "btcusd"}]))
    proc = env.run("cancel", "order", "123", "--verify", "--json", "--timeout", "2")
    r = result_of(proc)
    assert proc.returncode == 5
    assert rows(r) == {"123": "cancelled"}


@pytest.mark.parametrize(
    "book",
    [
        [{"symbol": "BTC", "side": "bid"}],
        [{"order_id": 5}],
        [{"order_id": 5, "symbol": None}],
        [7],
        [{"order_id": "x", "symbol": "BTC"}],
    ],
    ids=["no-id", "no-symbol", "null-symbol", "bare-id", "text-id"],
)
def test_5_pacifica_unreadable_book_is_exit_5(pac, env, book):
    pac.script(P + "/orders/cancel_all", reply(200, {"success": True, "data": {"cancelled_count": 1}}))
    pac.script(P + "/orders", reply(200, {"success": True, "data": book, "error": None, "code": None}))
    pac.script(P + "/orders/twap", reply(200, {"success": True, "data": [], "error": None, "code": None}))
    proc = env.run("cancel", "all", "--verify", "--json", "--timeout", "2")
    r = result_of(proc)
    assert proc.returncode == 5, proc.stderr
    assert r["verify_error"] is not None


# -- 6. answers outside the documented shape are unknown, never 70, never invented IDs ----------------

DEEP = b"[" * 100_000 + b"]" * 100_000
GEMINI_WIDE = [
    ({"result": "ok", "details": {"cancelledOrders": 5, "cancelRejects": []}}, None),
    ({"result": "ok", "details": {"cancelledOrders": "12345", "cancelRejects": []}}, None),
    ({"result": "ok", "details": {"cancelledOrders": [True, None, 1.5], "cancelRejects": []}}, None),
    ({"result": "ok", "details": {"cancelRejects": []}}, None),
    ({"result": "ok", "details": {"cancelledOrders": [1, 2], "cancelRejects": "x"}}, None),
    (None, DEEP),
    (None, b'{"result":"ok","details":' * 50_000),
]


@pytest.mark.parametrize(
    "body, raw", GEMINI_WIDE, ids=["count", "digits", "junk", "missing", "bad-rejects", "deep", "deep-truncated"]
)
def test_6_gemini_wide_cancel_outside_the_shape_is_unknown(gem, env, body, raw):
    gem.script(G_ALL, reply(200, body, raw=raw))
    proc = env.run("cancel", "all", "--json", "--timeout", "2.5")
    r = result_of(proc)
    assert proc.returncode == 5, proc.stderr
    assert r["cancelled"] == [] and r["rejected"] == []
    assert audit(env)[-1]["exit_code"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {"success": True, "data": {"cancelled_count": -3}},
        {"success": True, "data": {"cancelled_count": 10**30}},
        {"success": True, "data": None},
        {"cancelled_count": 2.5},
        {"cancelled_count": True},
        {"success": False, "data": {"cancelled_count": 3}},
        {"success": True},
    ],
    ids=["negative", "huge", "data-null", "fraction", "bool", "success-false", "no-count"],
)
def test_6_pacifica_cancel_all_count_outside_the_shape_is_unknown(pac, env, body):
    pac.script(P + "/orders/cancel_all", reply(200, body))
    proc = env.run("cancel", "pacifica", "--json", "--timeout", "4")
    r = result_of(proc)
    assert proc.returncode in (5, 1), proc.stderr  # success:false carries no reason: refused (1); the rest unknown (5)
    assert r["cancelled_count"] in (0, None)


def test_6_deep_json_order_answer_is_unknown(gem, env):
    gem.script(G_CANCEL, reply(200, raw=b'{"a":' * 100_000))
    proc = env.run("cancel", "order", "5", "--json", "--timeout", "2.5")
    assert proc.returncode == 5 and rows(result_of(proc)) == {"5": "unknown"}


# -- 7. Pacifica: "not found" after a lost answer is not a rejection -------------------------------


def test_7_not_found_after_a_lost_answer_checks_the_book(pac, env):
    pac.script(
        P + "/orders/cancel",
        reply(drop=True),
        reply(422, {"success": False, "error": "Order not found for x: 42", "code": 5}),
    )
    pac.script(P + "/orders", reply(200, {"success": True, "data": [], "error": None, "code": None}))
    pac.script(P + "/orders/twap", reply(200, {"success": True, "data": [], "error": None, "code": None}))
    proc = env.run("cancel", "order", "42", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    assert rows(r) == {"42": "cancelled"}
    assert len(pac.requests(P + "/orders/cancel")) == 2


def test_7_not_found_after_a_lost_answer_but_still_open_is_unknown(pac, env):
    pac.script(
        P + "/orders/cancel", reply(drop=True), reply(422, {"success": False, "error": "Order not found", "code": 5})
    )
    pac.script(P + "/orders", reply(200, {"success": True, "data": [{"order_id": 42, "symbol": "BTC"}]}))
    pac.script(P + "/orders/twap", reply(200, {"success": True, "data": [], "error": None, "code": None}))
    proc = env.run("cancel", "order", "42", "--symbol", "BTC", "--json", "--timeout", "3")
    assert proc.returncode == 5 and rows(result_of(proc)) == {"42": "unknown"}


def test_7_not_found_on_the_first_attempt_is_still_rejected(pac, env):
    pac.script(P + "/orders/cancel", reply(422, {"success": False, "error": "Order not found", "code": 5}))
    proc = env.run("cancel", "order", "42", "--symbol", "BTC", "--json", "--timeout", "3")
    assert proc.returncode == 1 and rows(result_of(proc)) == {"42": "rejected"}


def test_7_simulator_reset_after_cancelling(sim, env):
    """The simulator cancels, then drops the connection; the retry hears "Order not found"."""
    sim.pacifica.add_account(PAC_PRIVATE)
    env.write_config({"p": {"venue": "pacifica", "base_url": sim.url + P}})
    env.secret("p", "private_key", PAC_PRIVATE)
    a, b = sim.pacifica.add_order(PAC_ACCOUNT, "BTC"), sim.pacifica.add_order(PAC_ACCOUNT, "BTC")
    sim.fail(P + "/orders/batch", "reset", times=1)
    proc = env.run("cancel", "order", str(a), str(b), "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    assert rows(r) == {str(a): "cancelled", str(b): "cancelled"}
    assert sim.pacifica.open_orders(PAC_ACCOUNT) == []


# -- 8. verification is paced over the deadline --------------------------------------------------------


def test_8_an_order_released_a_second_later_is_still_caught(gem, env):
    cancelled_at: list[float] = []

    def cancel_all(request):
        cancelled_at.append(time.monotonic())
        return reply(200, ALL_OK)

    def book(request):  # the matching engine lets go of order 77 1.2 s after the cancel-all
        held = not cancelled_at or time.monotonic() < cancelled_at[0] + 1.2
        return reply(200, [{"order_id": "77", "symbol": "btcusd"}] if held else [])

    gem.script(G_ALL, cancel_all)
    gem.script(G_ORDERS, book)
    gem.script(G_CANCEL, reply(200, {"order_id": "77", "is_live": True, "is_cancelled": False}))
    proc = env.run("panic", "--json", "--timeout", "10")
    r = result_of(proc)
    assert proc.returncode == 0, (proc.stderr, r)
    assert r["remaining"] == []
    reads = [q["time"] for q in gem.requests(G_ORDERS)]
    assert reads[-1] - reads[0] >= 1.0
    assert len(reads) <= 12  # paced, not spun


# -- 9. the same ID twice is one order ---------------------------------------------------------------


def test_9_gemini_duplicate_ids_are_sent_once(gem, env):
    gem.script(
        G_CANCEL,
        reply(200, {"order_id": "123", "is_live": False, "is_cancelled": True}),
        reply(404, {"result": "error", "reason": "OrderNotFound", "message": "x"}),
    )
    proc = env.run("cancel", "order", "123", "123", "--json", "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    assert rows(result_of(proc)) == {"123": "cancelled"}
    assert len(gem.requests(G_CANCEL)) == 1


def test_9_pacifica_duplicate_client_ids_are_sent_once(pac, env):
    cloid = "0f1e2d3c-4b5a-4697-8877-665544332211"
    pac.script(P + "/orders/cancel", reply(200, {"success": True}))
    proc = env.run(
        "cancel", "order", cloid, cloid.upper(), "--client-order-id", "--symbol", "BTC", "--json", "--timeout", "3"
    )
    assert proc.returncode == 0, proc.stderr
    assert rows(result_of(proc)) == {cloid: "cancelled"}
    assert len(pac.requests(P + "/orders/cancel")) == 1 and not pac.requests(P + "/orders/batch")


# -- 10. a state directory that cannot be written does not jam the button ----------------------------


def run_limited(env, *args: str, fsize: int | None = None, umask: int | None = None, popen: bool = False):
    """The real process with a file-size limit (a full disk: writes fail with EFBIG) and/or a umask."""
    import os
    import resource
    import subprocess
    import sys

    from conftest import collect

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if umask is not None:
            os.umask(umask)

    cmd = [sys.executable, "-m", "cancelctl", *args]
    if popen:
        return subprocess.Popen(
            cmd,
            env=env.environ(),
            preexec_fn=limit,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    proc = subprocess.run(
        cmd, env=env.environ(), preexec_fn=limit, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    collect(" ".join(args), proc.stdout + proc.stderr)
    return proc


@pytest.mark.parametrize("how", ["under-a-file", "nonces-is-a-file", "disk-full"])
def test_10_unwritable_state_dir_still_cancels(gemini, env, how):
    orders = [gemini.add_order("primary", "UI") for _ in range(3)]
    if how == "under-a-file":
        (env.root / "blocker").write_text("not a directory")
        env.vars["CANCELCTL_STATE_DIR"] = str(env.root / "blocker" / "state")
    elif how == "nonces-is-a-file":
        env.state_dir.mkdir(parents=True)
        (env.state_dir / "nonces").write_text("not a directory")
    args = ("cancel", "order", *map(str, orders), "--json", "--timeout", "5")
    proc = run_limited(env, *args, fsize=0) if how == "disk-full" else env.run(*args)
    assert proc.returncode == 0, proc.stderr
    assert gemini.open_orders() == []
    assert sorted(parse_json(proc)["results"][0]["cancelled"]) == sorted(map(str, orders))
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not write" in lines[0] and "Fix:" in lines[0], proc.stderr
    assert "nonce" in lines[0]
    if how != "nonces-is-a-file":
        assert "audit line is missing" in lines[0]
        assert "CANCELCTL_STATE_DIR" in lines[0] or "sudo chown" in lines[0]


def test_10_in_memory_nonces_never_go_down(gemini, env, sim):
    """The clock-based nonces of one process keep rising across requests (the simulator refuses any that does not)."""
    orders = [gemini.add_order("primary", "UI") for _ in range(6)]
    (env.root / "blocker").write_text("x")
    env.vars["CANCELCTL_STATE_DIR"] = str(env.root / "blocker" / "state")
    proc = env.run("cancel", "order", *map(str, orders), "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    seen = [int(r["nonce"]) for r in sim.requests("/v1/order/cancel")]
    assert len(seen) == 6 and all(b > a for a, b in zip(seen, seen[1:]))


# -- 11. profiles sharing one master key queue fairly, lock per request --------------------------------


def test_11_a_slow_profile_does_not_lock_out_its_sibling(venue, env):
    master = "master-TESTKEYabcdefghij12"
    profiles = {
        "a": {"venue": "gemini", "base_url": venue.url, "account": "alpha"},
        "b": {"venue": "gemini", "base_url": venue.url, "account": "beta"},
    }
    env.write_config(profiles)
    for name in profiles:
        env.secret(name, "api_key", master)
        env.secret(name, "api_secret", GEMINI_SECRET)

    slow: list[str] = []

    def cancel_all(
        request,
    ):  # the sub-account that sends first answers after 1.5 s, "busy", every time; the other at once
        account = request["body"].get("account")
        if not slow:
            slow.append(account)
        if account == slow[0]:
            time.sleep(1.5)
            return reply(503, {"result": "error", "reason": "System", "message": "busy"})
        return reply(200, ALL_OK)

    venue.script(G_ALL, cancel_all)
    venue.script(G_ORDERS, reply(200, []))
    t0 = time.monotonic()
    proc = env.run("panic", "--json", "--timeout", "4")
    took = time.monotonic() - t0
    by = {r["profile"]: r for r in parse_json(proc)["results"]}
    slow_profile, quick_profile = ("a", "b") if slow == ["alpha"] else ("b", "a")
    assert by[quick_profile]["status"] == "ok", by[quick_profile]
    assert (
        by[quick_profile]["elapsed_ms"] < 3500
    )  # behind one of the slow profile's requests at most, not all its retries
    assert by[slow_profile]["status"] != "ok"
    assert proc.returncode == 3
    assert took < 4 + 1.0
    quick = [r for r in venue.requests(G_ALL) if r["body"]["account"] != slow[0]]
    slows = [r for r in venue.requests(G_ALL) if r["body"]["account"] == slow[0]]
    assert len(quick) == 1 and len(slows) >= 2  # the slow one kept retrying; the other got its turn in between


def test_11_fair_lock_hands_over_in_arrival_order():
    import threading

    from cancelctl.nonce import FairLock

    lock, order = FairLock(), []
    assert lock.acquire(1)
    threads = []
    for n in range(5):
        t = threading.Thread(target=lambda n=n: (lock.acquire(5), order.append(n), lock.release()))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # arrive one after the other
    lock.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]
    assert lock.acquire(0.1)  # released by the last one: free again
    busy = FairLock()
    busy.acquire(1)
    t0 = time.monotonic()
    assert busy.acquire(0.2) is False and time.monotonic() - t0 >= 0.19


# -- 12. panic and deadman take every profile whatever CANCELCTL_PROFILE says --------------------------


def two_gemini(sim, env, names=("a", "b")) -> None:
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    env.write_config({n: {"venue": "gemini", "base_url": sim.url} for n in names}, default=names[0])
    for n in names:
        env.secret(n, "api_key", GEMINI_KEY)
        env.secret(n, "api_secret", GEMINI_SECRET)


def test_12_panic_ignores_cancelctl_profile_and_default_profile(sim, env):
    two_gemini(sim, env)
    proc = env.run("panic", "--json", "--timeout", "5", extra_env={"CANCELCTL_PROFILE": "a"})
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["profile"] for r in parse_json(proc)["results"]) == ["a", "b"]


@pytest.mark.parametrize("command", ["panic", "deadman"])
def test_12_help_says_every_profile(env, command):
    proc = env.run(command, "--help")
    text = " ".join(proc.stdout.replace("│", " ").split())
    assert "every configured profile" in text and "CANCELCTL_PROFILE" in text
    assert "Else $CANCELCTL_PROFILE" not in text


# -- 13. a broken profile never disarms the others -----------------------------------------------------

BROKEN = {
    "typo-venue": ({"venue": "gemeni"}, "venue"),
    "typo-key": ({"venue": "gemini", "base_ulr": "https://api.gemini.com"}, "base_ulr"),
}


def test_13_broken_profiles_get_their_own_rows(gemini, env):
    order = gemini.add_order("primary", "UI")
    url = gemini_url(env)
    env.write_config(
        {
            "main": {"venue": "gemini", "base_url": url},
            **{n: t for n, (t, _) in BROKEN.items()},
            "nosecret": {"venue": "gemini", "base_url": url},
        }
    )
    proc = env.run("panic", "--json", "--timeout", "5")
    assert proc.returncode == 3, proc.stderr
    by = {r["profile"]: r for r in parse_json(proc)["results"]}
    assert by["main"]["status"] == "ok" and gemini.open_orders() == []
    for name, (_, word) in BROKEN.items():
        assert by[name]["status"] == "failed" and by[name]["exit_code"] == 78
        assert word in by[name]["error"]["message"]
    assert by["nosecret"]["exit_code"] == 78 and "keys set nosecret" in by["nosecret"]["error"]["message"]
    assert audit(env)[-1]["exit_code"] == 3
    assert str(order) in by["main"]["cancelled"]


def gemini_url(env) -> str:
    import tomllib

    return tomllib.loads((env.config_dir / "config.toml").read_text())["profiles"]["main"]["base_url"]


@pytest.mark.parametrize("command", [["panic"], ["cancel", "all"]])
def test_13_named_good_profile_never_reads_the_broken_one(gemini, env, command):
    gemini.add_order("primary", "UI")
    env.write_config(
        {"main": {"venue": "gemini", "base_url": gemini_url(env)}, **{n: t for n, (t, _) in BROKEN.items()}}
    )
    proc = env.run(*command, "-p", "main", "--json", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert [r["profile"] for r in parse_json(proc)["results"]] == ["main"]
    assert proc.stderr == ""


# -- 14. deadman runs the firing path's checks before it says "armed" -----------------------------------


def test_14_deadman_refuses_nan_timeout(gemini, env):
    proc = env.run("deadman", "--ttl", "5", "--timeout", "nan", timeout=20)
    assert proc.returncode == 2 and "deadman armed" not in proc.stderr, proc.stderr


def test_14_deadman_refuses_a_damaged_pacifica_key(env, tmp_path):
    env.write_config({"p": {"venue": "pacifica", "base_url": "http://127.0.0.1:9/api/v1"}})
    import base58

    raw = bytearray(base58.b58decode(PAC_PRIVATE))
    raw[40] ^= 0xFF  # the public half no longer matches the seed
    env.secret("p", "private_key", base58.b58encode(bytes(raw)).decode())
    proc = env.run("deadman", "--ttl", "5", "--file", str(tmp_path / "alive"), timeout=20)
    assert proc.returncode == 78, proc.stderr
    assert "deadman not armed" in proc.stderr and "damaged" in proc.stderr
    assert "deadman armed" not in proc.stderr


def test_14_deadman_refuses_a_master_key_without_account(env, tmp_path):
    env.write_config({"m": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    env.secret("m", "api_key", "master-TESTKEYabcdefghij12")
    env.secret("m", "api_secret", GEMINI_SECRET)
    proc = env.run("deadman", "--ttl", "5", "--file", str(tmp_path / "alive"), timeout=20)
    assert proc.returncode == 78 and "sub-account" in proc.stderr, proc.stderr
    assert "deadman armed" not in proc.stderr  # refused before arming, not when firing


def test_14_deadman_files_are_private_whatever_the_umask_and_a_future_check_in_does_not_blind_it(gemini, env):
    import os
    import stat

    gemini.add_order("primary", "UI")
    proc = run_limited(env, "deadman", "--ttl", "1", "--json", "--timeout", "5", umask=0, popen=True)
    alive = env.state_dir / "deadman.alive"
    t0 = time.monotonic()
    while not alive.exists() and time.monotonic() - t0 < 15:
        time.sleep(0.05)
    assert alive.exists(), "deadman never armed"
    time.sleep(0.3)
    assert stat.S_IMODE(env.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(alive.stat().st_mode) == 0o600
    future = time.time() + 3600
    os.utime(alive, (future, future))  # a check-in dated an hour ahead
    t_future = time.monotonic()
    out, err = proc.communicate(timeout=20)
    fired_after = time.monotonic() - t_future
    assert proc.returncode == 0, err
    assert "in the future" in err and "panic" in err
    assert fired_after < 1 + 2.5  # TTL after the (future) check-in, counted as now
    assert gemini.open_orders() == []
    assert json.loads(out)["results"][0]["status"] == "ok"


# -- 1. symbols are matched to the venue's markets; a non-market is never "done" --------------------


@pytest.fixture
def pac_sim(sim, env):
    sim.pacifica.add_account(PAC_PRIVATE)
    env.write_config({"p": {"venue": "pacifica", "base_url": sim.url + P}})
    env.secret("p", "private_key", PAC_PRIVATE)
    return sim


@pytest.mark.parametrize("typed, market", [("btc", "BTC"), ("KBONK", "kBONK"), ("BTC", "BTC")])
def test_1_symbol_in_any_case_is_sent_in_the_venues_spelling(pac_sim, env, typed, market):
    target = pac_sim.pacifica.add_order(PAC_ACCOUNT, market)
    other = pac_sim.pacifica.add_order(PAC_ACCOUNT, "ETH")
    proc = env.run("cancel", "pacifica", "--symbol", typed, "--verify", "--json", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert {o.order_id for o in pac_sim.pacifica.open_orders(PAC_ACCOUNT)} == {other}
    (sent,) = pac_sim.requests(P + "/orders/cancel_all")
    assert target and parse_json(proc)["results"][0]["cancelled_count"] == 1 and sent["status"] == 200
    assert len(pac_sim.requests(P + "/info")) == 1  # looked up once, before the cancel


def test_1_a_symbol_that_is_no_market_is_exit_2_naming_close_matches(pac_sim, env):
    pac_sim.pacifica.add_order(PAC_ACCOUNT, "BTC")
    proc = env.run("cancel", "pacifica", "--symbol", "BTCX", "--verify", "--json", "--timeout", "5")
    assert proc.returncode == 2, proc.stderr
    assert "not a Pacifica market" in proc.stderr and "BTC" in proc.stderr
    assert pac_sim.requests(P + "/orders/cancel_all") == []
    assert parse_json(proc)["results"][0]["status"] == "failed"


def test_1_all_symbols_never_looks_markets_up(pac_sim, env):
    pac_sim.pacifica.add_order(PAC_ACCOUNT, "BTC")
    for command in (["panic"], ["cancel", "pacifica"]):
        proc = env.run(*command, "--json", "--timeout", "5")
        assert proc.returncode == 0, proc.stderr
    assert pac_sim.requests(P + "/info") == []


@pytest.mark.parametrize("count, code", [(0, 5), (2, 0)])
def test_1_unreadable_market_list_sends_as_typed_and_never_calls_zero_done(pac, env, count, code):
    pac.script(P + "/info", reply(500, raw=b"<html>down</html>"))
    pac.script(P + "/orders/cancel_all", reply(200, {"success": True, "data": {"cancelled_count": count}}))
    proc = env.run("cancel", "pacifica", "--symbol", "btc", "--json", "--timeout", "4")
    assert proc.returncode == code, proc.stderr
    (sent,) = pac.requests(P + "/orders/cancel_all")
    assert sent["body"]["symbol"] == "btc"


# -- 15. "flat" means no position: the order book is "no open orders" -----------------------------------


def test_15_flat_is_only_ever_about_positions(gemini, env):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    texts = {
        str(p.relative_to(root)): p.read_text()
        for p in [root / "README.md", *sorted((root / "docs").rglob("*.md")), *sorted((root / "docs").rglob("*.json"))]
    }
    for command in (["panic", "--help"], ["deadman", "--help"], ["orders"], ["panic"], ["cancel", "all", "--verify"]):
        proc = env.run(*command)
        assert proc.returncode == 0, proc.stderr
        texts[" ".join(command)] = proc.stdout + proc.stderr
    assert "no open orders" in texts["orders"]
    import re

    for where, text in texts.items():
        for line in text.splitlines():
            if re.search(r"\bflat(ten\w*)?\b", line, re.I):
                assert "position" in line.lower(), f"{where}: {line.strip()}"


def test_10_heartbeat_goes_on_with_an_unwritable_state_dir(sim, env):
    import signal

    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, heartbeat=True)
    env.write_config({"hb": {"venue": "gemini", "base_url": sim.url}})
    env.secret("hb", "api_key", GEMINI_KEY)
    env.secret("hb", "api_secret", GEMINI_SECRET)
    (env.root / "blocker").write_text("x")
    proc = env.popen(
        "heartbeat", "--interval", "1", extra_env={"CANCELCTL_STATE_DIR": str(env.root / "blocker" / "state")}
    )
    try:
        t0 = time.monotonic()
        while len(sim.requests("/v1/heartbeat")) < 2 and time.monotonic() - t0 < 15:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert len(sim.requests("/v1/heartbeat")) >= 2 and all(r["status"] == 200 for r in sim.requests("/v1/heartbeat"))
    assert err.count("could not write") == 1 and "Fix:" in err


# -- found by the adversarial pass: one row per ID, and a session check confirms only what it covers -----


def test_session_cancel_with_an_unreadable_answer_is_never_confirmed_by_an_empty_check(gem, env):
    # The answer names no orders, so the check covers none: an order open in the book says nothing about
    # the session, and the run must not say done (it said exit 0, "no open orders", before).
    gem.script("/v1/order/cancel/session", reply(200, {"result": "ok"}))
    gem.script(G_ORDERS, reply(200, [{"order_id": "41", "symbol": "btcusd", "side": "buy"}]))
    proc = env.run("cancel", "session", "--verify", "--json", "--timeout", "2")
    r = result_of(proc)
    assert proc.returncode == 5, proc.stderr
    assert r["status"] == "unknown" and r["error"]["kind"] == "unknown"
    assert audit(env)[-1]["exit_code"] == 5


def test_an_order_answered_cancelled_but_still_listed_has_one_row_open(gem, env):
    gem.script(G_CANCEL, reply(200, {"order_id": "5", "is_live": False, "is_cancelled": True}))
    gem.script(G_ORDERS, reply(200, [{"order_id": "5", "symbol": "btcusd", "side": "buy"}]))
    proc = env.run("cancel", "order", "5", "--verify", "--json", "--timeout", "1.5")
    r = result_of(proc)
    assert proc.returncode == 3, proc.stderr
    assert r["remaining"] == ["5"] and rows(r) == {}  # open, and in no other list
    tsv = env.run("cancel", "order", "5", "--verify", "--timeout", "1.5")
    lines = [line.split("\t") for line in tsv.stdout.splitlines() if line.strip()]
    assert [(f[3], f[4]) for f in lines] == [("5", "open")], tsv.stdout
    assert tsv.returncode == 3, tsv.stderr  # whether or not the key's pacing let a second read go out


def test_a_rejected_order_still_listed_has_one_row_saying_both(gem, env):
    gem.script(G_CANCEL, reply(400, {"result": "error", "reason": "InvalidOrder", "message": "cannot cancel"}))
    gem.script(G_ORDERS, reply(200, [{"order_id": "6", "symbol": "btcusd", "side": "buy"}]))
    proc = env.run("cancel", "order", "6", "--verify", "--timeout", "1.5")
    lines = [line.split("\t") for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0][3:5] == ["6", "rejected"], proc.stdout
    assert "still open after verification" in lines[0][5]


def test_10_a_file_size_limit_below_the_state_width_never_lowers_the_stored_nonce(gemini, env, sim):
    """A file-size limit (a quota, RLIMIT_FSIZE) smaller than a state file's padded width but large enough for a
    few bytes: a short write must not leave a truncated counter behind while the run says nothing. Either the
    file still holds at least the nonce sent, or the run says in one line that it could not write it; and the next
    process, unlimited, still sends a higher nonce (the simulator's record of the key, like Gemini's, refuses any
    that does not rise) above the counter as it was."""
    import hashlib
    import time

    orders = [gemini.add_order("primary", "UI") for _ in range(2)]
    nonces = env.state_dir / "nonces"
    nonces.mkdir(parents=True)
    path = nonces / (hashlib.sha256(GEMINI_KEY.encode()).hexdigest()[:24] + ".last")
    ahead = time.time_ns() // 1_000_000 + 3_600_000  # the last run's nonce, an hour ahead of this clock (NTP step)
    path.write_bytes(str(ahead).encode().ljust(64))
    proc = run_limited(env, "cancel", "order", str(orders[0]), "--json", "--timeout", "5", fsize=10)
    assert proc.returncode == 0, proc.stderr
    sent = [int(r["nonce"]) for r in sim.requests("/v1/order/cancel")]
    assert len(sent) == 1 and sent[0] > ahead
    stored = int(path.read_bytes().strip() or 0)
    assert stored >= ahead, stored  # never lowered (a truncated or half-new counter)
    assert stored >= sent[0] or "nonce" in proc.stderr, (stored, sent, proc.stderr)
    assert "audit line is missing" in proc.stderr, proc.stderr  # the audit line did not fit either: said, not cut
    assert not (env.state_dir / "audit.jsonl").exists() or (env.state_dir / "audit.jsonl").read_bytes() == b""
    proc = env.run("cancel", "order", str(orders[1]), "--json", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    sent = [int(r["nonce"]) for r in sim.requests("/v1/order/cancel")]
    assert sent[-1] > sent[0] > ahead, sent  # (the first run could not record its nonce: the venue may refuse it once)


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_10_a_fifo_or_symlink_at_the_state_file_s_temporary_name_never_jams_the_cancel(gemini, env, tmp_path, kind):
    """The first write of a key's nonce counter goes through ``<file>.tmp``: a FIFO there (opening it to write would
    wait for a reader for ever, the key's lock held, before the first cancel) or a symlink (the write would go
    wherever it points) must not stop the cancel: it goes out, and the run says in one line what it could not
    write."""
    import hashlib
    import os

    order = gemini.add_order("primary", "UI")
    nonces = env.state_dir / "nonces"
    nonces.mkdir(parents=True)
    tmp = nonces / (hashlib.sha256(GEMINI_KEY.encode()).hexdigest()[:24] + ".last.tmp")
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    if kind == "fifo":
        os.mkfifo(tmp)
    else:
        tmp.symlink_to(target)
    proc = env.run("cancel", "order", str(order), "--json", "--timeout", "5", timeout=15)
    assert proc.returncode == 0, proc.stderr
    assert gemini.open_orders() == []
    assert target.read_text() == "untouched"
    assert len(proc.stderr.strip().splitlines()) <= 1, proc.stderr


def test_an_answer_nobody_asked_for_is_never_the_next_request_s_answer(env):
    """A keep-alive venue (or a middlebox) writes a second answer right after the cancel-all's, in the same write:
    "no open orders". cancelctl's HTTP client kept the connection with those bytes buffered and read them as the
    answer to its next request, the verification's listing: exit 0, "seen with no open orders", while the venue's own
    answer to that listing shows order 77 still open (and the positions request then got the listing). A connection
    with bytes after its answer is not reused: the listing gets its own answer, order 77 is still open, exit 3."""
    import socket
    import threading

    import h11

    still_open = {
        "order_id": "77", "id": "77", "symbol": "btcusd", "exchange": "gemini", "avg_execution_price": "0.00",
        "side": "buy", "type": "exchange limit", "timestamp": "1796031498", "timestampms": 1796031498949,
        "is_live": True, "is_cancelled": False, "is_hidden": False, "was_forced": False, "executed_amount": "0",
        "remaining_amount": "0.01", "original_amount": "0.01", "price": "50000.00", "client_order_id": None,
    }  # fmt: skip

    def answer(doc: object) -> bytes:
        body = json.dumps(doc).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    answers = {
        "/v1/order/cancel/all": answer({"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}})
        + answer([]),  # the second answer nobody asked for
        "/v1/orders": answer([still_open]),
        "/v1/positions": answer([]),
    }
    seen: list[str] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def connection(sock: socket.socket) -> None:
        sock.settimeout(10)
        http, path = h11.Connection(h11.SERVER), ""
        try:
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    if not data:
                        return
                    http.receive_data(data)
                elif isinstance(event, h11.Request):
                    path = event.target.decode()
                elif isinstance(event, h11.EndOfMessage):
                    seen.append(path)
                    sock.sendall(answers.get(path, answer({})))
                    http = h11.Connection(h11.SERVER)  # the next request on this connection
                else:
                    return
        except (OSError, h11.ProtocolError):
            return
        finally:
            sock.close()

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=connection, args=(sock,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        env.write_config({"main": {"venue": "gemini", "base_url": f"http://127.0.0.1:{listener.getsockname()[1]}"}})
        env.secret("main", "api_key", GEMINI_KEY)
        env.secret("main", "api_secret", GEMINI_SECRET)
        proc = env.run("panic", "--json", "--timeout", "5")
    finally:
        listener.close()
    assert "/v1/orders" in seen, seen
    doc = parse_json(proc)
    assert proc.returncode == 3 and doc["exit_code"] == 3, proc.stderr
    assert doc["results"][0]["remaining"] == ["77"], doc["results"][0]
