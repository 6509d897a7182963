"""Adversarial review of the verification and reporting path: never a "done", nor a row, that was not observed.

Each test runs the real ``cancelctl`` process against the scripted hostile venue (``tests/hostile.py``):
one row per asked ID (cancelled, rejected, unknown or open, never two), nothing not asked for reported
cancelled, and exit 0 only when the last read of the book in scope listed nothing.
"""

from __future__ import annotations

from hostile import P, reply

from conftest import parse_json

G_CANCEL, G_ALL, G_ORDERS = "/v1/order/cancel", "/v1/order/cancel/all", "/v1/orders"
UUID = "0b7f5b1c-3c3a-4d7e-9f00-6a2b9c1d2e3f"


def envelope(data) -> dict:
    return {"success": True, "data": data, "error": None, "code": None}


def porder(oid: int, cloid: str | None = None, symbol: str = "BTC") -> dict:
    """A Pacifica open order as ``GET /orders`` lists it."""
    return {
        "order_id": oid,
        "client_order_id": cloid,
        "symbol": symbol,
        "side": "bid",
        "price": "1",
        "initial_amount": "1",
        "filled_amount": "0",
        "cancelled_amount": "0",
        "order_type": "limit",
        "reduce_only": False,
        "stop_price": None,
        "created_at": 1,
        "updated_at": 1,
    }


def gorder(oid: int) -> dict:
    """A Gemini open order as ``/v1/orders`` lists it."""
    return {"order_id": str(oid), "symbol": "btcusd", "side": "buy", "price": "1", "original_amount": "1",
            "remaining_amount": "1", "is_live": True, "is_cancelled": False}


def gcancelled(oid: int) -> dict:
    return {"order_id": str(oid), "symbol": "btcusd", "is_live": False, "is_cancelled": True, "reason": "Requested"}


def one_result(proc) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 70, proc.stderr
    (r,) = parse_json(proc)["results"]
    return r


def rows(r: dict) -> dict[str, str]:
    """ID -> its one row (cancelled / rejected / unknown / open); fails when an ID has two rows."""
    out: dict[str, str] = {}
    rejected = [x["id"] for x in r["rejected"]]
    for kind, ids in (
        ("cancelled", r["cancelled"]),
        ("rejected", rejected),
        ("unknown", r["unknown"]),
        ("open", [i for i in r["remaining"] or () if i not in rejected]),
    ):
        for i in ids:
            assert i not in out, f"{i} has two rows: {out[i]} and {kind}"
            out[i] = kind
    return out


def tsv_rows(proc) -> list[tuple[str, str]]:
    """(order ID, result) of each order row of the tab-separated output."""
    lines = [line.split("\t") for line in proc.stdout.splitlines() if line.strip()]
    return [(f[3], f[4]) for f in lines if f[3] != "-"]


def pac_cloid(pac, cancels, reads) -> None:
    pac.script(P + "/orders/cancel", *cancels)
    pac.script(P + "/orders", *reads)
    pac.script(P + "/orders/twap", reply(200, envelope([])))


CLOID = ("cancel", "order", UUID, "--client-order-id", "--symbol", "BTC", "--verify")


def test_client_order_id_straggler_cancelled_by_its_order_id_is_the_asked_ids_row(pac, env):
    # answered "cancelled", listed once (as order 77), cancelled again by its order_id, then gone
    ok = reply(200, {"success": True})
    pac_cloid(pac, [ok], [reply(200, envelope([porder(77, UUID)])), reply(200, envelope([]))])
    proc = env.run(*CLOID, "--json", "--timeout", "3")
    r = one_result(proc)
    assert rows(r) == {UUID: "cancelled"}, r  # not a second row for 77, an ID nobody asked about
    assert r["cancelled_count"] == 1 and proc.returncode == 0
    assert [q["body"].get("order_id") for q in pac.requests(P + "/orders/cancel")][1:] == [77]


def test_client_order_id_answered_cancelled_but_always_listed_is_open(pac, env):
    ok = reply(200, {"success": True})
    pac_cloid(pac, [ok], [reply(200, envelope([porder(77, UUID.upper())]))])  # the venue's spelling of the UUID
    proc = env.run(*CLOID, "--json", "--timeout", "1.5")
    r = one_result(proc)
    assert proc.returncode == 3, proc.stderr
    assert rows(r) == {UUID: "open"}, r  # never "cancelled" for an order every read listed
    tsv = env.run(*CLOID, "--timeout", "1.5")
    assert tsv_rows(tsv) == [(UUID, "open")], tsv.stdout
    assert tsv.returncode == 3


def test_client_order_id_of_unknown_fate_still_listed_is_never_said_not_open(pac, env):
    pac_cloid(pac, [reply(200, {}), reply(200, {"success": True})], [reply(200, envelope([porder(77, UUID)]))])
    proc = env.run(*CLOID, "--json", "--timeout", "1.5")
    r = one_result(proc)
    assert proc.returncode == 3, proc.stderr
    assert rows(r) == {UUID: "open"}, r
    assert "not open at verification" not in proc.stdout


def test_an_order_the_book_lists_twice_has_one_row(gem, env):
    gem.script(G_ALL, reply(200, {"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}}))
    gem.script(G_ORDERS, reply(200, [gorder(5), gorder(5)]))
    gem.script(G_CANCEL, reply(400, {"result": "error", "reason": "Nope", "message": "no"}))
    proc = env.run("cancel", "all", "--verify", "--json", "--timeout", "1.5")
    r = one_result(proc)
    assert proc.returncode == 3
    assert r["remaining"] == ["5"] and rows(r) == {"5": "open"}


def test_a_read_that_fails_after_one_listing_the_order_leaves_it_one_row_open(gem, env):
    # answered "cancelled", listed by the next read, cancelled again, then the book is no longer read in time
    gem.script(G_CANCEL, reply(200, gcancelled(5)))
    gem.script(G_ORDERS, reply(200, [gorder(5)]), reply(200, [gorder(5)], delay=4))
    proc = env.run("cancel", "order", "5", "--verify", "--json", "--timeout", "1.5")
    r = one_result(proc)
    assert proc.returncode == 5, proc.stderr
    assert r["verify_error"] is not None
    assert rows(r) == {"5": "open"}, r  # not "cancelled" and "open" both


def test_an_unchecked_symbol_is_not_made_done_by_verification(pac, env):
    # the market list cannot be read, the cancel-all cancels nothing: BTCX may be no market at all
    pac.script(P + "/info", reply(503, {"error": "down"}))
    pac.script(P + "/orders/cancel_all", reply(200, envelope({"cancelled_count": 0})))
    pac.script(P + "/orders", reply(200, envelope([])))
    pac.script(P + "/orders/twap", reply(200, envelope([])))
    plain = env.run("cancel", "pacifica", "--symbol", "BTCX", "--timeout", "3")
    verified = env.run("cancel", "pacifica", "--symbol", "BTCX", "--verify", "--timeout", "3")
    assert plain.returncode == 5, plain.stderr
    assert verified.returncode == 5, verified.stdout + verified.stderr


def test_a_key_refused_for_its_address_in_one_guarded_command_is_tried_again_in_the_next(gem, env):
    """A cold run that meets an IP allow-list refusal stops using the key for the rest of that process; a guard is
    one process for many commands: once the trader fixed the allow-list, its next command must still be sent."""
    from test_guard import ROOMY, Running

    refused = {"result": "error", "reason": "ApiKeyIpFilteringFailure", "message": "IP not allowed"}
    gem.script(G_CANCEL, reply(403, refused), reply(200, gcancelled(5)))
    env.vars.update(ROOMY)
    guard = Running(env)
    try:
        first = env.run("cancel", "order", "5", "--json", "--timeout", "3")
        second = env.run("cancel", "order", "5", "--json", "--timeout", "3")
    finally:
        _, err = guard.stop()
    assert err.count("ran cancel order") == 2, err  # both ran in the guard
    assert first.returncode == 4
    assert len(gem.requests(G_CANCEL)) == 2  # the second command was sent, as a cold run sends it
    assert second.returncode == 0 and rows(one_result(second)) == {"5": "cancelled"}


def test_the_verdict_of_a_scoped_check_does_not_say_the_account_has_no_open_orders(gem, env):
    """`cancel order 5 --verify` checks order 5 only: order 6 stays open, and the verdict must not say that no
    open orders are left on the account (a trader in a hurry reads it as "the account is clear")."""
    from test_terminal import run_pty, verdicts

    gem.script(G_CANCEL, reply(200, gcancelled(5)))
    gem.script(G_ORDERS, reply(200, [gorder(6)]))
    code, text = run_pty(env, "cancel", "order", "5", "--verify", "--timeout", "5")
    assert code == 0, text
    (found,) = verdicts(text)
    line = found.group(0)
    assert "no open orders left on" not in line, line
    assert "in scope" in line, line


def test_a_guarded_run_whose_audit_line_was_written_does_not_say_it_is_missing(pac, env):
    """What a run could not write to the state dir is said for that run: the guard (one process, many commands)
    went on saying "this run's audit line is missing" for every later command, whose line was written."""
    from test_guard import ROOMY, Running

    pac.script(P + "/orders/cancel_all", reply(200, envelope({"cancelled_count": 0})))
    pac.script(P + "/orders/twap", reply(200, envelope([])))
    env.vars.update(ROOMY)
    env.state_dir.mkdir(parents=True, exist_ok=True)
    blocker = env.state_dir / "audit.jsonl"  # a directory where the audit log goes: the line cannot be written
    guard = Running(env)
    try:
        blocker.mkdir()
        first = env.run("cancel", "all", "--timeout", "3")
        blocker.rmdir()
        second = env.run("cancel", "all", "--timeout", "3")
    finally:
        _, err = guard.stop()
    assert err.count("ran cancel all") == 2, err  # both ran in the guard
    assert first.returncode == second.returncode == 0
    assert "audit line is missing" in first.stderr, first.stderr
    assert len(blocker.read_text().splitlines()) == 1  # the second run's line was written...
    assert "could not write" not in second.stderr, second.stderr  # ...and nothing says otherwise
