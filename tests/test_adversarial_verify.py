"""Adversarial review of the verification and reporting path: never a "done", nor a row, that was not observed.

Each test runs the real ``cancelctl`` process against the scripted hostile venue (``tests/hostile.py``):
one row per asked ID (cancelled, rejected, unknown or open, never two), nothing not asked for reported
cancelled, and exit 0 only when the last read of the book in scope listed nothing.
"""

from __future__ import annotations

import threading

import pytest
from hostile import HostileVenue, P, reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    from test_outcome_integrity import result_of

    return result_of(proc)


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


@pytest.fixture(scope="module")
def module_venue():
    with HostileVenue(lifetime=300) as v:
        yield v


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
    proc = env.run(*CLOID, "--json", "--timeout", "2.5")
    r = one_result(proc)
    assert proc.returncode == 3, proc.stderr
    assert rows(r) == {UUID: "open"}, r  # never "cancelled" for an order every read listed
    tsv = env.run(*CLOID, "--timeout", "2.5")
    assert tsv_rows(tsv) == [(UUID, "open")], tsv.stdout
    assert tsv.returncode == 3


def test_client_order_id_of_unknown_fate_still_listed_is_never_said_not_open(pac, env):
    pac_cloid(pac, [reply(200, {}), reply(200, {"success": True})], [reply(200, envelope([porder(77, UUID)]))])
    proc = env.run(*CLOID, "--json", "--timeout", "2.5")
    r = one_result(proc)
    assert proc.returncode == 3, proc.stderr
    assert rows(r) == {UUID: "open"}, r
    assert "not open at verification" not in proc.stdout


def test_an_order_the_book_lists_twice_has_one_row(gem, env):
    gem.script(G_ALL, reply(200, {"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}}))
    gem.script(G_ORDERS, reply(200, [gorder(5), gorder(5)]))
    gem.script(G_CANCEL, reply(400, {"result": "error", "reason": "Nope", "message": "no"}))
    proc = env.run("cancel", "all", "--verify", "--json", "--timeout", "2.5")
    r = one_result(proc)
    assert proc.returncode == 3
    assert r["remaining"] == ["5"] and rows(r) == {"5": "open"}


def test_a_read_that_fails_after_one_listing_the_order_leaves_it_one_row_open(gem, env):
    # answered "cancelled", listed by the next read, cancelled again, then the book is no longer read in time
    gem.script(G_CANCEL, reply(200, gcancelled(5)))
    gem.script(G_ORDERS, reply(200, [gorder(5)]), reply(200, [gorder(5)], delay=4))
    proc = env.run("cancel", "order", "5", "--verify", "--json", "--timeout", "2.5")
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



def test_a_gemini_answer_that_says_cancelled_and_live_is_no_cancel(gem, env):
    """The documented success is the order status with ``is_cancelled: true`` and ``is_live: false``
    (https://docs.gemini.com/rest/orders, "Cancel Order"); an answer that says the order is cancelled and still live
    contradicts itself: the order's fate is unknown, never "cancelled" (exit 0)."""
    gem.script(G_CANCEL, reply(200, {**gcancelled(5), "is_live": True}))
    proc = env.run("cancel", "order", "5", "--json", "--timeout", "3")
    assert rows(one_result(proc)) == {"5": "unknown"}
    assert proc.returncode == 5



@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_pacifica_success_that_carries_an_error_is_no_cancel(pac, env, batch):
    """``{"success": true, "error": "Order not found"}`` says two things: the order's fate is unknown, never
    "cancelled" (the documented success has ``error: null``,
    https://docs.pacifica.fi/api-documentation/api/rest-api/orders/cancel-order)."""
    both = {"success": True, "error": "Order not found"}
    if batch:
        pac.script(P + "/orders/batch", reply(200, envelope({"results": [both, {"success": True, "error": None}]})))
        ids = ["42", "43"]
    else:
        pac.script(P + "/orders/cancel", reply(200, both))
        ids = ["42"]
    proc = env.run("cancel", "order", *ids, "--symbol", "BTC", "--json", "--timeout", "3")
    r = one_result(proc)
    assert rows(r)["42"] == "unknown", r
    assert proc.returncode == 5


# -- properties: generated sequences of reads of the book, per-order answers ------------------------------------
#
# Each order's cancel answer is the same every time it is asked (by order_id or client order ID), so an order the
# venue answered "cancelled" was answered so before the first read: if any read lists it, its word is worth
# nothing. Then exit 0 is possible only when the last read the venue served listed none of the asked orders.

FAIL = "fail"
#: few examples: each is a real process that may verify until its --timeout
SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
KINDS = ["cancelled", "not found", "unknown", "other order"]


def served_reads(venue, path: str, reads: list, reply_of) -> list:
    """Script ``path`` to serve ``reads`` in turn (the last repeats); the returned list fills with what each read
    got."""
    served: list = []
    lock = threading.Lock()

    def answer(request):
        with lock:
            step = reads[min(len(served), len(reads) - 1)]
            served.append(step)
        if step == FAIL:
            return reply(500, {"result": "error", "reason": "System", "message": "busy"})
        return reply_of(step)

    venue.script(path, answer)
    return served


def run_hostile(venue, profiles: dict, *args: str) -> tuple[object, dict]:
    """The real process with ``--json --timeout 3`` (room for start-up on a loaded machine: a run that sends nothing
    proves nothing) in a fresh config and state dir; (process, its one JSON document), checked against its audit
    line (tests/test_hostile_venue.py's ``run``)."""
    from test_hostile_venue import run

    proc, doc, _ = run(venue, profiles, *args, timeout="3")
    assert doc["ok"] == (proc.returncode == 0)
    return proc, doc


def checked(proc, doc: dict, asked: list[str], served: list, listed) -> dict:
    """The invariants every example keeps; the one result."""
    (r,) = doc["results"]
    assert set(rows(r)) == set(asked), r  # one row per asked ID (rows() fails on two)
    last = served[-1] if served else None
    if proc.returncode == 0:
        assert last is not None and last != FAIL and not listed(last), (served, r)
    if last == FAIL:
        assert proc.returncode == 5, (served, r)
    if last not in (None, FAIL) and listed(last):
        assert proc.returncode != 0 and r["remaining"], (served, r)
    return r


@SETTINGS
@given(
    kinds=st.fixed_dictionaries({i: st.sampled_from(KINDS) for i in ("101", "102", "103")}),
    reads=st.lists(st.one_of(st.just(FAIL), st.lists(st.sampled_from(["101", "102", "103"]), max_size=4)),
                   min_size=1, max_size=4),
)
def test_gemini_verification_over_a_book_that_comes_and_goes(module_venue, kinds, reads):
    module_venue.reset()

    def cancel(request):
        oid = str(request["body"].get("order_id"))
        kind = kinds.get(oid, "not found")
        if kind == "cancelled":
            return reply(200, gcancelled(int(oid)))
        if kind == "unknown":
            return reply(200, {})
        if kind == "other order":
            return reply(200, gcancelled(999))
        return reply(404, {"result": "error", "reason": "OrderNotFound", "message": "not found"})

    module_venue.script(G_CANCEL, cancel)
    served = served_reads(module_venue, G_ORDERS, reads, lambda ids: reply(200, [gorder(int(i)) for i in ids]))
    asked = ["101", "102"]
    proc, doc = run_hostile(module_venue, {"g": {"venue": "gemini", "base_url": module_venue.url}},
                               "cancel", "order", *asked, "--verify")
    assert module_venue.requests(G_CANCEL), proc.stderr  # a run that sent nothing would prove nothing
    r = checked(proc, doc, asked, served, lambda ids: bool(set(ids) & set(asked)))
    said = [*r["cancelled"], *(x["id"] for x in r["rejected"]), *r["unknown"], *(r["remaining"] or ())]
    assert "103" not in said, r  # an order nobody asked about is never a row


@SETTINGS
@given(
    kind=st.sampled_from(["success", "refused", "unknown"]),
    reads=st.lists(
        st.one_of(st.just(FAIL), st.lists(st.sampled_from(["mine", "MINE", "other", "none"]), max_size=2, unique=True)),
        min_size=1, max_size=4),
)
def test_pacifica_client_order_id_verification_rows_stay_the_asked_ids(module_venue, kind, reads):
    module_venue.reset()
    other = "11111111-2222-4333-8444-555555555555"

    def cancel(request):
        if kind == "success":
            return reply(200, {"success": True})
        if kind == "unknown":
            return reply(200, {})
        return reply(422, {"success": False, "error": "boom", "code": 9})

    def book(entries):
        orders = {"mine": porder(77, UUID), "MINE": porder(77, UUID.upper()), "other": porder(79, other),
                  "none": porder(80)}
        return reply(200, envelope([orders[e] for e in entries]))

    module_venue.script(P + "/orders/cancel", cancel)
    module_venue.script(P + "/orders/twap", reply(200, envelope([])))
    served = served_reads(module_venue, P + "/orders", reads, book)
    proc, doc = run_hostile(module_venue, {"p": {"venue": "pacifica", "base_url": module_venue.url + P}},
                               "cancel", "order", UUID, "--client-order-id", "--symbol", "BTC", "--verify")
    assert module_venue.requests(P + "/orders/cancel"), proc.stderr  # a run that sent nothing would prove nothing
    r = checked(proc, doc, [UUID], served, lambda entries: bool({"mine", "MINE"} & set(entries)))
    said = [*r["cancelled"], *(x["id"] for x in r["rejected"]), *r["unknown"], *(r["remaining"] or ())]
    assert not {"77", "79", "80"} & set(said), r  # the venue's order_ids are never rows of their own
