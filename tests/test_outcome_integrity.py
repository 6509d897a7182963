"""Issue 11, one test (or a small table) per numbered case: never a false "done", never a jammed button.

Every test runs the real ``cancelctl`` process, against the simulator or a
hostile loopback venue (``tests/hostile.py``) that answers what the test says.
"""

from __future__ import annotations

import json
import time

import pytest

from cancelctl.sim.pacifica import solana_keypair
from conftest import GEMINI_KEY, GEMINI_SECRET, parse_json
from hostile import HostileVenue, reply

PAC_PRIVATE, PAC_ACCOUNT = solana_keypair(bytes(range(151, 183)))
G_CANCEL, G_ALL, G_ORDERS = "/v1/order/cancel", "/v1/order/cancel/all", "/v1/orders"
P = "/api/v1"


@pytest.fixture
def venue():
    with HostileVenue(lifetime=60) as v:
        yield v


@pytest.fixture
def gem(venue, env):
    """Profile ``g``: a Gemini account key on the hostile venue."""
    env.write_config({"g": {"venue": "gemini", "base_url": venue.url}})
    env.secret("g", "api_key", GEMINI_KEY)
    env.secret("g", "api_secret", GEMINI_SECRET)
    return venue


@pytest.fixture
def pac(venue, env):
    """Profile ``p``: a Pacifica main-wallet key on the hostile venue."""
    env.write_config({"p": {"venue": "pacifica", "base_url": venue.url + P}})
    env.secret("p", "private_key", PAC_PRIVATE)
    return venue


def result_of(proc) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 70, proc.stderr
    (r,) = parse_json(proc)["results"]
    return r


def rows(r: dict) -> dict[str, str]:
    """ID -> row (cancelled / rejected / unknown); fails when an ID has two rows."""
    out: dict[str, str] = {}
    for kind, ids in (("cancelled", r["cancelled"]), ("rejected", [x["id"] for x in r["rejected"]]), ("unknown", r["unknown"])):
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


@pytest.mark.parametrize("stop", [False, True], ids=["order", "stop"])
@pytest.mark.parametrize("body, code, row", PAC_SINGLE, ids=[json.dumps(b) for b, _, _ in PAC_SINGLE])
def test_2_pacifica_single_cancel_needs_an_explicit_success(pac, env, body, code, row, stop):
    pac.script(P + ("/orders/stop/cancel" if stop else "/orders/cancel"), reply(200, body))
    proc = env.run("cancel", "order", "42", "--symbol", "BTC", *(["--stop"] if stop else []), "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == code, proc.stderr
    assert rows(r) == {"42": row}
    if row == "rejected":
        assert r["rejected"][0]["reason"] == "Order not found"


# -- 3. Gemini: the row belongs to the ID that was asked for ---------------------------------------


@pytest.mark.parametrize("named", ["999", 999, None, 1e20, -5, "123abc", True])
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
    pac.script(P + "/orders/batch", reply(200, batch(*({"success": True, "order_id": i, "error": None} for i in (7, 8, 9)))))
    proc = env.run("cancel", "order", "1", "2", "3", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 5
    assert rows(r) == {"1": "unknown", "2": "unknown", "3": "unknown"}


def test_4_batch_results_are_matched_by_id_not_position(pac, env):
    pac.script(
        P + "/orders/batch",
        reply(200, batch({"success": False, "order_id": 3, "error": "Order not found"}, {"success": True, "order_id": 2}, {"success": True, "order_id": 1})),
    )
    proc = env.run("cancel", "order", "1", "2", "3", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 3
    assert rows(r) == {"1": "cancelled", "2": "cancelled", "3": "rejected"}


def test_4_batch_results_without_ids_go_by_position_and_missing_ones_are_unknown(pac, env):
    pac.script(P + "/orders/batch", reply(200, batch({"success": True}, {"success": False, "error": "Failed to cancel order"})))
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
    [[{"symbol": "BTC", "side": "bid"}], [{"order_id": 5}], [{"order_id": 5, "symbol": None}], [7], [{"order_id": "x", "symbol": "BTC"}]],
    ids=["no-id", "no-symbol", "null-symbol", "bare-id", "text-id"],
)
def test_5_pacifica_unreadable_book_is_exit_5(pac, env, book):
    pac.script(P + "/orders/cancel_all", reply(200, {"success": True, "data": {"cancelled_count": 1}}))
    pac.script(P + "/orders", reply(200, {"success": True, "data": book, "error": None, "code": None}))
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


@pytest.mark.parametrize("body, raw", GEMINI_WIDE, ids=["count", "digits", "junk", "missing", "bad-rejects", "deep", "deep-truncated"])
def test_6_gemini_wide_cancel_outside_the_shape_is_unknown(gem, env, body, raw):
    gem.script(G_ALL, reply(200, body, raw=raw))
    proc = env.run("cancel", "all", "--json", "--timeout", "4")
    r = result_of(proc)
    assert proc.returncode == 5, proc.stderr
    assert r["cancelled"] == [] and r["rejected"] == []
    assert audit(env)[-1]["exit_code"] == 5


@pytest.mark.parametrize(
    "body",
    [{"success": True, "data": {"cancelled_count": -3}}, {"success": True, "data": {"cancelled_count": 10**30}}, {"success": True, "data": None},
     {"cancelled_count": 2.5}, {"cancelled_count": True}, {"success": False, "data": {"cancelled_count": 3}}, {"success": True}],
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
    proc = env.run("cancel", "order", "5", "--json", "--timeout", "4")
    assert proc.returncode == 5 and rows(result_of(proc)) == {"5": "unknown"}


# -- 7. Pacifica: "not found" after a lost answer is not a rejection -------------------------------


def test_7_not_found_after_a_lost_answer_checks_the_book(pac, env):
    pac.script(P + "/orders/cancel", reply(drop=True), reply(422, {"success": False, "error": "Order not found for x: 42", "code": 5}))
    pac.script(P + "/orders", reply(200, {"success": True, "data": [], "error": None, "code": None}))
    proc = env.run("cancel", "order", "42", "--symbol", "BTC", "--json", "--timeout", "3")
    r = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    assert rows(r) == {"42": "cancelled"}
    assert len(pac.requests(P + "/orders/cancel")) == 2


def test_7_not_found_after_a_lost_answer_but_still_open_is_unknown(pac, env):
    pac.script(P + "/orders/cancel", reply(drop=True), reply(422, {"success": False, "error": "Order not found", "code": 5}))
    pac.script(P + "/orders", reply(200, {"success": True, "data": [{"order_id": 42, "symbol": "BTC"}]}))
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

    def cancel_all():
        cancelled_at.append(time.monotonic())
        return reply(200, ALL_OK)

    def book():  # the matching engine lets go of order 77 1.2 s after the cancel-all
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
    gem.script(G_CANCEL, reply(200, {"order_id": "123", "is_live": False, "is_cancelled": True}), reply(404, {"result": "error", "reason": "OrderNotFound", "message": "x"}))
    proc = env.run("cancel", "order", "123", "123", "--json", "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    assert rows(result_of(proc)) == {"123": "cancelled"}
    assert len(gem.requests(G_CANCEL)) == 1


def test_9_pacifica_duplicate_client_ids_are_sent_once(pac, env):
    cloid = "0f1e2d3c-4b5a-4697-8877-665544332211"
    pac.script(P + "/orders/cancel", reply(200, {"success": True}))
    proc = env.run("cancel", "order", cloid, cloid.upper(), "--client-order-id", "--symbol", "BTC", "--json", "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    assert rows(result_of(proc)) == {cloid: "cancelled"}
    assert len(pac.requests(P + "/orders/cancel")) == 1 and not pac.requests(P + "/orders/batch")
