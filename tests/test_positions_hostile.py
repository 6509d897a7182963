"""Closing positions against a venue that lies or lags (found by the adversarial pass on issue 14).

Each test runs the real ``cancelctl`` process against the scripted loopback venue (``tests/hostile.py``).
"""

from __future__ import annotations

import json
import signal
import time
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hostile import P, reply

from conftest import audit_lines, collect, parse_json


def ok(data: object):
    return reply(200, {"success": True, "data": data, "error": None, "code": None})


def gemini_position(quantity: str) -> list[dict]:
    return [
        {
            "symbol": "btcgusdperp",
            "instrument_type": "perp",
            "quantity": quantity,
            "notional_value": "1",
            "realised_pnl": "0",
            "unrealised_pnl": "0",
            "average_cost": "60000",
            "mark_price": "60000",
        }
    ]


@pytest.fixture
def gem(gem):
    """The shared Gemini profile (tests/hostile.py) with a venue that has no order and trades btcgusdperp."""
    gem.script(
        "/v1/order/cancel/all", reply(200, {"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}})
    )
    gem.script("/v1/orders", reply(200, []))
    gem.script(
        "/v1/symbols/details/btcgusdperp",
        reply(200, {"symbol": "BTCGUSDPERP", "status": "open", "quote_increment": 0.5, "tick_size": 0.0001}),
    )
    gem.script("/v1/pubticker/btcgusdperp", reply(200, {"bid": "60000", "ask": "60010", "last": "60005"}))
    return gem


@pytest.fixture
def pac(pac):
    """The shared Pacifica profile (tests/hostile.py) with a venue that has no order and a BTC market."""
    pac.script(P + "/orders/cancel_all", ok({"cancelled_count": 0}))
    pac.script(P + "/orders", ok([]))
    pac.script(P + "/orders/twap", ok([]))
    pac.script(P + "/info", ok([{"symbol": "BTC", "tick_size": "1", "lot_size": "0.001", "min_order_size": "0.001"}]))
    pac.script(P + "/orders/create_market", ok({"order_id": 777}))
    return pac


def sold(venue, path: str) -> float:
    return sum(float(r["body"]["amount"]) for r in venue.requests(path))


@pytest.mark.parametrize("listed_twice", [False, True])
def test_gemini_closes_never_add_up_to_more_than_the_position(gem, env, listed_twice):
    # The IOC close is answered filled, but every read still shows long 1 (a lagging read or a lying venue):
    # without a reduce-only flag, two more full-size sells would flip the position short.
    gem.script("/v1/positions", reply(200, gemini_position("1") * (2 if listed_twice else 1)))
    gem.script(
        "/v1/order/new",
        reply(
            200,
            {
                "order_id": "9001",
                "executed_amount": "1",
                "remaining_amount": "0",
                "is_cancelled": False,
                "is_live": False,
                "original_amount": "1",
            },
        ),
    )
    proc = env.run("close-positions", "--json", "--timeout", "4")
    assert proc.returncode == 3, proc.stderr
    assert sold(gem, "/v1/order/new") == 1.0
    assert parse_json(proc)["results"][0]["positions"][0]["size"] == "1"


@pytest.mark.parametrize("success", [None, "false", 0])
def test_pacifica_position_list_without_success_is_not_read_as_flat(pac, env, success):
    position = {"symbol": "BTC", "side": "bid", "amount": "1", "entry_price": "60000"}
    pac.script(
        P + "/positions", ok([position]), reply(200, {"success": success, "data": [], "error": "database timeout"})
    )
    proc = env.run("panic", "--close-positions", "--json", "--timeout", "4")
    r = parse_json(proc)["results"][0]
    assert proc.returncode == 5, proc.stderr
    assert r["positions_error"] is not None


@pytest.mark.parametrize("lot_size", ["1e-1000000", "1e+1000000"])
def test_absurd_venue_numbers_are_unreadable_never_an_internal_error(pac, env, lot_size):
    pac.script(P + "/info", ok([{"symbol": "BTC", "tick_size": "1", "lot_size": lot_size, "min_order_size": "0.001"}]))
    pac.script(P + "/positions", ok([{"symbol": "BTC", "side": "bid", "amount": "1", "entry_price": "60000"}]))
    proc = env.run("panic", "--close-positions", "--json", "--timeout", "3")
    assert proc.returncode not in (0, 70), proc.stderr
    assert "internal error" not in proc.stderr
    assert pac.requests(P + "/orders/create_market") == []


def test_close_positions_leaves_an_audit_line_when_it_fails_early(env, tmp_path):
    env.write_config({"g": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    proc = env.run("close-positions", "-p", "nosuch", "--json")
    assert proc.returncode == 78, proc.stderr
    audit = (env.state_dir / "audit.jsonl").read_text().splitlines()
    assert len(audit) == 1 and '"exit_code":78' in audit[0].replace(" ", "")


def test_a_position_symbol_cannot_write_escapes_or_lines_to_the_terminal(pac, env):
    symbol = "BTC\x1b]0;PWNED\x07\x1b[2J\ncancelctl: all flat, exit 0"
    pac.script(P + "/positions", ok([{"symbol": symbol, "side": "bid", "amount": "1", "entry_price": "60000"}]))
    proc = env.run("panic", "--close-positions", "--timeout", "3")
    assert "\x1b" not in proc.stderr + proc.stdout
    assert not any(line.startswith("cancelctl: all flat") for line in proc.stderr.splitlines()), proc.stderr


# -- the second adversarial pass on closing (issue 14): each test fails without its fix ----------------------------

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema" / "cancelctl-1.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())


def schema_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def pac_position(amount: str = "1", side: str = "bid", symbol: str = "BTC") -> dict:
    return {"symbol": symbol, "side": side, "amount": amount, "entry_price": "60000"}


def gemini_order(quantity_executed: str, *, live: bool, order_id: str = "9001"):
    """Gemini's answer to /v1/order/new naming the client order ID that was sent."""

    def answer(request: dict):
        return reply(
            200,
            {
                "order_id": order_id,
                "client_order_id": request["body"].get("client_order_id"),
                "symbol": "btcgusdperp",
                "executed_amount": quantity_executed,
                "original_amount": request["body"].get("amount"),
                "remaining_amount": "0",
                "is_live": live,
                "is_cancelled": not live,
            },
        )

    return answer


def wait_for(venue, path: str, n: int = 1, within: float = 8.0) -> None:
    end = time.monotonic() + within
    while len(venue.requests(path)) < n:
        assert time.monotonic() < end, f"no request to {path}"
        time.sleep(0.02)


def interrupted(proc, sig=signal.SIGINT) -> tuple[int, dict]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    collect("interrupted close", out + err)
    assert "Traceback" not in err, err
    return proc.returncode, json.loads(out)


# 1. An IOC close the venue says is live rested on the book: it is cancelled by order_id, never counted as filled.
@pytest.mark.parametrize("executed", ["0", "1"])
def test_1_gemini_ioc_close_answered_live_is_cancelled_and_not_filled(gem, env, executed):
    gem.script("/v1/positions", reply(200, gemini_position("1")))
    gem.script("/v1/order/new", gemini_order(executed, live=True))
    gem.script(
        "/v1/order/cancel",
        reply(200, {"order_id": "9001", "is_live": False, "is_cancelled": True, "executed_amount": "0"}),
    )
    proc = env.run("close-positions", "--json", "--timeout", "4")
    doc = parse_json(proc)
    closed = doc["results"][0]["closed"]
    assert [r["body"]["order_id"] for r in gem.requests("/v1/order/cancel")][:1] == [9001], proc.stderr
    assert closed and all(row["status"] != "filled" for row in closed), closed
    assert "rested" in closed[0]["reason"], closed[0]
    assert proc.returncode == 3, proc.stderr
    assert not schema_errors(doc)


def test_1_gemini_ioc_close_live_whose_cancel_fails_is_unknown(gem, env):
    gem.script("/v1/positions", reply(200, gemini_position("1")))
    gem.script("/v1/order/new", gemini_order("0", live=True))
    gem.script("/v1/order/cancel", reply(500, raw=b""))
    proc = env.run("close-positions", "--json", "--timeout", "3")
    closed = parse_json(proc)["results"][0]["closed"]
    assert closed[0]["status"] == "unknown", closed
    assert proc.returncode == 5, proc.stderr


# 2. Exit 0 with --close-positions needs the book seen with no open order, --no-verify or not.
def test_2_close_positions_no_verify_never_claims_an_unread_book(gem, env):
    gem.script("/v1/positions", reply(200, []))
    gem.script(
        "/v1/orders",
        reply(200, [{"order_id": "555", "symbol": "btcusd", "side": "buy", "price": "1", "remaining_amount": "1"}]),
    )
    gem.script("/v1/order/cancel", reply(400, {"result": "error", "reason": "OrderNotFound", "message": "nope"}))
    proc = env.run("panic", "--close-positions", "--no-verify", "--json", "--timeout", "3")
    assert proc.returncode != 0, proc.stderr
    assert gem.requests("/v1/orders"), "the book was never read"


# 3 and 4. Ctrl-C while a closing order is in flight, or between it and the read back: every close keeps its row.
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_3_interrupt_while_a_pacifica_close_is_in_flight_keeps_its_row(pac, env, sig, code):
    pac.script(P + "/positions", ok([pac_position()]))
    pac.script(P + "/orders/create_market", reply(200, {"success": True, "data": {"order_id": 777}}, delay=6))
    proc = env.popen("panic", "--close-positions", "--json", "--timeout", "8")
    wait_for(pac, P + "/orders/create_market")
    rc, doc = interrupted(proc, sig)
    assert rc == code
    (row,) = doc["results"][0]["closed"]
    assert row["status"] == "unknown" and row["symbol"] == "BTC", row
    assert not schema_errors(doc)
    (line,) = audit_lines(env)
    assert [c["status"] for c in line["results"][0]["closed"]] == ["unknown"]


def test_4_interrupt_between_a_close_and_the_read_back_leaves_schema_rows(pac, env):
    pac.script(P + "/positions", ok([pac_position()]), reply(200, {"success": True, "data": []}, delay=6))
    proc = env.popen("panic", "--close-positions", "--json", "--timeout", "8")
    wait_for(pac, P + "/positions", 2)
    rc, doc = interrupted(proc)
    assert rc == 130
    (row,) = doc["results"][0]["closed"]
    assert row["status"] == "unknown" and row["order_id"] == "777", row
    assert not schema_errors(doc)
    (line,) = audit_lines(env)
    assert "slippage" not in line["results"][0]["closed"][0]


# 5. A closing order refused for its credentials or URL: 4 or 78, as on the cancel path.
@pytest.mark.parametrize(
    "answer, code",
    [
        (reply(400, raw=b'"Verification failed"'), 4),
        (reply(403, {"error": "Agent not authorized for account"}), 4),
        (reply(404, raw=b"<html>not found</html>"), 78),
    ],
)
def test_5_pacifica_close_refused_for_credentials_or_url(pac, env, answer, code):
    pac.script(P + "/positions", ok([pac_position()]))
    pac.script(P + "/orders/create_market", answer)
    proc = env.run("close-positions", "--json", "--timeout", "4")
    assert proc.returncode == code, proc.stderr


@pytest.mark.parametrize(
    "reason, code", [("InvalidSignature", 4), ("MissingRole", 4), ("EndpointNotFound", 78), ("MissingAccounts", 78)]
)
def test_5_gemini_close_refused_for_credentials_or_url(gem, env, reason, code):
    gem.script("/v1/positions", reply(200, gemini_position("1")))
    gem.script("/v1/order/new", reply(400, {"result": "error", "reason": reason, "message": reason}))
    proc = env.run("panic", "--close-positions", "--json", "--timeout", "4")
    assert proc.returncode == code, proc.stderr


# 6. Sizes of many digits are never rounded up: a close is never larger than the position.
def test_6_a_28_digit_pacifica_size_is_rounded_down(pac, env):
    pac.script(P + "/positions", ok([pac_position("0.99999999999999999999999999999")]))
    env.run("close-positions", "--json", "--timeout", "3")
    assert [r["body"]["amount"] for r in pac.requests(P + "/orders/create_market")][:1] == ["0.999"]


def test_6_a_28_digit_gemini_size_is_never_rounded_up(gem, env):
    gem.script("/v1/positions", reply(200, gemini_position("0.99999999999999999999999999999")))
    gem.script("/v1/order/new", gemini_order("0", live=False))
    env.run("close-positions", "--json", "--timeout", "3")
    amounts = [Decimal(r["body"]["amount"]) for r in gem.requests("/v1/order/new")]
    assert amounts and all(a <= Decimal("0.99999999999999999999999999999") for a in amounts), amounts


# 7. A rate-limited close keeps time for the final read of the positions.
def test_7_a_rate_limited_close_still_reads_the_positions_back(pac, env):
    pac.script(P + "/positions", ok([pac_position()]))
    pac.script(P + "/orders/create_market", reply(429, {"success": False, "error": "rate limited"}))
    proc = env.run("close-positions", "--json", "--timeout", "3")
    r = parse_json(proc)["results"][0]
    assert "positions_error" not in r, r
    assert [(p["symbol"], p["side"], p["size"]) for p in r["positions"] or ()] == [("BTC", "long", "1")], r
    assert proc.returncode == 3, proc.stderr


# 8. A failing positions endpoint never holds a plain panic for the whole --timeout.
def test_8_a_failing_position_read_does_not_hold_the_panic(pac, env):
    pac.script(P + "/positions", reply(500, {"success": False, "error": "database timeout"}))
    start = time.monotonic()
    proc = env.run("panic", "--json", "--timeout", "12")
    took = time.monotonic() - start
    r = parse_json(proc)["results"][0]
    assert proc.returncode == 0, proc.stderr
    assert r["positions_error"] is not None and r["positions"] is None
    assert took < 8, took


# 9. A dry run that could not read the positions does not claim success.
def test_9_close_positions_dry_run_with_unread_positions_is_not_0(pac, env):
    pac.script(P + "/positions", reply(500, {"success": False, "error": "database timeout"}))
    proc = env.run("close-positions", "--dry-run", "--json", "--timeout", "3")
    assert proc.returncode == 5, proc.stderr
    assert pac.requests(P + "/orders/create_market") == []


# 10. A position the venue gave in an undocumented shape makes the read an error, never a bad row.
@pytest.mark.parametrize("symbol", ["", "   ", None, 5, "x" * 300, ".."])
def test_10_a_position_without_a_usable_symbol_is_a_read_error(pac, gem, env, symbol):
    pac.script(P + "/positions", ok([pac_position(symbol=symbol)]))
    gem.script("/v1/positions", reply(200, [dict(gemini_position("1")[0], symbol=symbol)]))
    env.write_config(
        {"g": {"venue": "gemini", "base_url": gem.url}, "p": {"venue": "pacifica", "base_url": gem.url + P}}
    )
    proc = env.run("positions", "-p", "g", "-p", "p", "--json", "--timeout", "3")
    doc = parse_json(proc)
    assert not schema_errors(doc)
    assert proc.returncode == 5, proc.stderr
    assert all(r["positions"] is None and r["error"] is not None for r in doc["results"]), doc


# 11. A close's row says what the read back showed: no fill, a flip or a position that grew is never "filled".
@pytest.mark.parametrize(
    "after, status, words",
    [
        ([pac_position("1")], "rejected", "still long 1"),
        ([pac_position("1.5")], "unknown", "grew"),
        ([pac_position("0.5", side="ask")], "unknown", "short 0.5"),
        ([pac_position("0.4")], "partial", "long 0.4 left"),
        ([], "filled", None),
    ],
)
def test_11_a_close_row_words_what_was_observed(pac, env, after, status, words):
    pac.script(P + "/positions", ok([pac_position("1")]), ok(after))
    pac.script(P + "/orders/create_market", ok({"order_id": 777}), reply(422, {"success": False, "error": "halted"}))
    proc = env.run("close-positions", "--json", "--timeout", "3")
    first = parse_json(proc)["results"][0]["closed"][0]
    assert first["status"] == status, first
    if words is None:
        assert first["reason"] in (None, "the position closed"), first
    else:
        assert words in first["reason"], first


# -- own hostile pass on the closing path: wrong IDs, wrong shapes, huge and crawling answers ----------------------


def test_a_pacifica_close_answer_naming_another_order_is_settled_by_the_read_back(pac, env):
    pac.script(P + "/positions", ok([pac_position()]), ok([pac_position()]))
    pac.script(P + "/orders/create_market", ok({"order_id": 777, "client_order_id": "not-the-one-sent"}))
    proc = env.run("close-positions", "--json", "--timeout", "3")
    (row, *_) = parse_json(proc)["results"][0]["closed"]
    assert row["status"] == "rejected" and row["order_id"] is None, row
    assert "another order" in row["reason"] and "still long 1" in row["reason"], row
    assert proc.returncode == 3, proc.stderr


@pytest.mark.parametrize(
    "answer",
    [
        {"order_id": "9001", "client_order_id": "another", "executed_amount": "1", "is_live": False},
        {"order_id": -1, "executed_amount": "1", "is_live": False},
        {"order_id": "9001", "executed_amount": "5", "is_live": False},  # more than was ordered
        {"order_id": "9001", "executed_amount": "-1", "is_live": False},
        {"order_id": "9001", "executed_amount": "lots", "is_live": False},
        ["9001"],
    ],
)
def test_a_gemini_close_answer_that_is_not_about_this_order_is_never_filled(gem, env, answer):
    gem.script("/v1/positions", reply(200, gemini_position("1")))
    gem.script("/v1/order/new", reply(200, answer))
    proc = env.run("close-positions", "--json", "--timeout", "3")
    doc = parse_json(proc)
    closed = doc["results"][0]["closed"]
    assert closed and all(row["status"] != "filled" for row in closed), closed
    assert proc.returncode in (3, 5), proc.stderr
    assert all("answer" in row["reason"] for row in closed), closed
    assert not schema_errors(doc)


def test_a_huge_position_list_is_a_list_not_read(pac, env):
    pac.script(P + "/positions", reply(200, raw=b'{"success":true,"data":[' + b" " * (5 << 20) + b"]}"))
    proc = env.run("close-positions", "--json", "--timeout", "4")
    r = parse_json(proc)["results"][0]
    assert proc.returncode == 5, proc.stderr
    assert r["positions_error"] is not None and pac.requests(P + "/orders/create_market") == []


def test_a_crawling_close_answer_still_ends_with_a_read_back(pac, env):
    pac.script(P + "/positions", ok([pac_position()]), ok([]))
    pac.script(P + "/orders/create_market", reply(200, raw=b" " * 4000 + b'{"success":true}', trickle=0.05))
    start = time.monotonic()
    proc = env.run("close-positions", "--json", "--timeout", "4")
    took = time.monotonic() - start
    r = parse_json(proc)["results"][0]
    (row,) = r["closed"]
    assert r["positions"] == [] and row["status"] == "filled" and "still arriving" in row["reason"], r
    assert proc.returncode == 0, proc.stderr
    assert took < 6, took
