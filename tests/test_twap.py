"""Pacifica TWAP orders: not in ``GET /orders``, not stopped by ``cancel_all_orders`` (undocumented: assumed not).

``panic`` and ``cancel all`` list them (``GET /orders/twap``) and cancel each
(``POST /orders/twap/cancel``, ``cancel_twap_order``) after the first cancel
has gone out; verification and ``orders`` see them; rows say which were TWAPs.
Sources: Pacifica's python-sdk ``rest/get_open_twap_order.py`` and
``rest/cancel_twap_order.py``; docs "Get open TWAP orders".
"""

from __future__ import annotations

import pytest
from test_pacifica_cli import MAIN, MAIN_PRIVATE

from conftest import parse_json


@pytest.fixture
def pac(sim, env):
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("pac", "private_key", MAIN_PRIVATE)
    return sim.pacifica


@pytest.mark.parametrize("command", [["panic"], ["cancel", "all"]])
def test_panic_and_cancel_all_stop_running_twaps(pac, env, sim, command):
    pac.add_order(MAIN, "BTC")
    twaps = [pac.add_twap(MAIN, "BTC"), pac.add_twap(MAIN, "ETH", side="ask", reduce_only=True)]
    proc = env.run(*command, "--json")
    assert proc.returncode == 0, proc.stderr
    assert pac.open_twaps() == [] and pac.open_orders() == []
    r = parse_json(proc)["results"][0]
    assert sorted(r["twap"]) == sorted(map(str, twaps)) and set(map(str, twaps)) <= set(r["cancelled"])
    assert r["cancelled_count"] == 1  # the venue's count of the cancel-all; TWAPs are rows by ID
    log = [(e["method"], e["path"]) for e in sim.requests("/api/v1/")]
    # the first cancel goes out before any listing: the TWAP list is sent once the cancel-all was written whole,
    # on a connection of its own, so the simulator may log either first; nothing else may come before it
    first = log.index(("POST", "/api/v1/orders/cancel_all"))
    assert set(log[:first]) <= {("GET", "/api/v1/orders/twap")} and first <= 1, log
    assert log.count(("POST", "/api/v1/orders/twap/cancel")) == 2


def test_twap_rows_say_they_were_twaps(pac, env):
    twap = pac.add_twap(MAIN, "SOL")
    proc = env.run("cancel", "all")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert [r[2:6] for r in rows if r[3] == str(twap)] == [["cancel_twap_order", str(twap), "cancelled", "TWAP order"]]


def test_cancel_pacifica_is_the_venue_operation_alone(pac, env, sim):
    twap = pac.add_twap(MAIN, "BTC")
    pac.add_order(MAIN, "BTC")
    proc = env.run("cancel", "pacifica", "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [t.order_id for t in pac.open_twaps()] == [twap]  # documented: cancel all / panic stop TWAPs
    assert not sim.requests("/api/v1/orders/twap/cancel")


def test_verification_catches_a_twap_the_first_listing_missed(pac, env, sim):
    twap = pac.add_twap(MAIN, "BTC")
    sim.fail("/api/v1/orders/twap", status=503, body="none", times=1)  # the first TWAP listing fails
    sim.fail("/api/v1/orders/twap", status=500, body="html", times=1)  # and its retry
    proc = env.run("panic", "--json", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert pac.open_twaps() == []
    r = parse_json(proc)["results"][0]
    assert r["remaining"] == [] and str(twap) in r["twap"]


def test_a_twap_that_will_not_cancel_is_remaining(pac, env, sim):
    twap = pac.add_twap(MAIN, "BTC")
    sim.fail(
        "/api/v1/orders/twap/cancel",
        status=422,
        payload='{"success":false,"data":null,"error":"Failed to cancel order","code":0}',
        times=-1,
    )
    proc = env.run("panic", "--json", "--timeout", "3")
    assert proc.returncode == 3, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["remaining"] == [str(twap)] and r["twap"] == [str(twap)]
    tsv = env.run("panic", "--timeout", "3")
    # one row for the ID: the venue's refusal, which says the TWAP order is still open
    assert f"{twap}\trejected\tFailed to cancel order; still open after verification (TWAP order)" in tsv.stdout
    assert tsv.stdout.count(f"\t{twap}\t") == 1, tsv.stdout


def test_orders_lists_twaps(pac, env):
    order = pac.add_order(MAIN, "BTC")
    twap = pac.add_twap(MAIN, "ETH", amount="2")
    proc = env.run("orders", "--json")
    assert proc.returncode == 0, proc.stderr
    orders = {o["order_id"]: o for o in parse_json(proc)["results"][0]["orders"]}
    assert orders[str(order)]["twap"] is False
    assert (
        orders[str(twap)]["twap"] is True
        and orders[str(twap)]["amount"] == "2"
        and orders[str(twap)]["symbol"] == "ETH"
    )


def test_cancel_order_twap(pac, env, sim):
    twap = pac.add_twap(MAIN, "BTC")
    proc = env.run("cancel", "order", str(twap), "--twap", "--symbol", "BTC", "--json")
    assert proc.returncode == 0, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["action"] == "cancel_twap_order" and r["cancelled"] == [str(twap)] and r["twap"] == [str(twap)]
    assert pac.open_twaps() == []
    assert env.run("cancel", "order", "5", "--twap", "--stop", "--symbol", "BTC").returncode == 2


def test_twap_documents_match_the_schema(pac, env, sim):
    from test_json_schema import valid

    pac.add_twap(MAIN, "BTC")
    stuck = pac.add_twap(MAIN, "ETH")
    valid(env.run("orders", "--json"), 0)
    sim.fail(
        "/api/v1/orders/twap/cancel",
        status=422,
        payload='{"success":false,"error":"Failed to cancel order","code":0}',
        times=-1,
        key=None,
    )
    doc = valid(env.run("panic", "--json", "--timeout", "3"), 3)
    assert str(stuck) in doc["results"][0]["twap"]
    sim.faults.clear()
    doc = valid(env.run("cancel", "order", str(stuck), "--twap", "--symbol", "ETH", "--json"), 0)
    assert doc["results"][0]["action"] == "cancel_twap_order"


def test_unreadable_twap_list_is_a_book_not_read(pac, env, sim):
    pac.add_twap(MAIN, "BTC")
    sim.fail(
        "/api/v1/orders/twap",
        status=200,
        payload='{"success":true,"data":[{"symbol":"BTC"}],"error":null,"code":null}',
        times=-1,
    )
    proc = env.run("orders", "--json")
    assert proc.returncode == 5, proc.stderr


def test_the_demo_drill_stops_a_twap(env):
    proc = env.run("demo", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cancel_twap_order" in proc.stdout and "drill passed" in proc.stdout
