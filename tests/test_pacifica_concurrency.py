"""A Pacifica panic sends the requests that do not depend on each other together, and only those.

Which request waits for which (docs/performance.md, "A Pacifica panic's requests"):

* the TWAP listing goes out next to the cancel-all (once the cancel is on the wire), the TWAP cancels
  after the cancel-all was answered;
* verification reads the book (``GET /orders`` and ``GET /orders/twap`` together) only after every
  cancel was answered, and the order history next to it;
* the positions only after verification and the history.

The simulator proves "together" without a clock: a ``hold`` fault keeps one answer back until the
requests that must not wait for it have arrived (a client that waited would leave it held until the
fault gives up, and the test fails). "After" is read from the request log: a request that arrived after
another's answer was written.
"""

from __future__ import annotations

import threading
import time

import pytest
from test_pacifica_cli import AGENT, AGENT_PRIVATE, MAIN, MAIN_PRIVATE

from cancelctl.sim.server import round_trips
from cancelctl.transport import Deadline, Stopped

from conftest import parse_json

P = "/api/v1"
HOLD_S = 4.0  # the longest a held answer waits; a client that sends in sequence makes the test fail after it


@pytest.fixture
def pac(sim, env):
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + P}})
    env.secret("pac", "private_key", MAIN_PRIVATE)
    return sim.pacifica


def log(sim) -> list[dict]:
    return [e for e in sim.requests(P) if e["path"] != P + "/info"]


def one(entries: list[dict], method: str, path: str, n: int = 0) -> dict:
    hits = [e for e in entries if e["method"] == method and e["path"] == P + path]
    assert len(hits) > n, (method, path, [(e["method"], e["path"]) for e in entries])
    return hits[n]


def after(later: dict, earlier: dict) -> bool:
    """``later`` arrived once ``earlier``'s answer had been written."""
    return later["time"] >= earlier["answered"]


def test_twap_listing_goes_with_the_cancel_all_and_the_twap_cancel_after_its_answer(pac, env, sim):
    pac.add_order(MAIN, "BTC")
    twap = pac.add_twap(MAIN, "ETH")
    sim.fail(P + "/orders/cancel_all", "hold", until={P + "/orders/twap": 1}, seconds=HOLD_S)
    proc = env.run("panic", "--json")
    assert proc.returncode == 0, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["cancelled_count"] == 1 and r["cancelled"] == [str(twap)] and r["twap"] == [str(twap)]
    assert r["remaining"] == [] and pac.open_orders() == [] and pac.open_twaps() == []
    entries = log(sim)
    cancel_all = one(entries, "POST", "/orders/cancel_all")
    listing = one(entries, "GET", "/orders/twap")
    assert entries.index(cancel_all) <= entries.index(listing) + 1  # nothing before it but, maybe, the listing
    assert cancel_all["held"] is True  # the listing arrived while the cancel-all's answer was held back
    assert not after(listing, cancel_all)
    twap_cancel = one(entries, "POST", "/orders/twap/cancel")
    assert after(twap_cancel, cancel_all) and after(twap_cancel, listing)
    for path in ("/orders", "/orders/history"):  # verification, the history: after every cancel was answered
        assert after(one(entries, "GET", path), twap_cancel)
    assert after(one(entries, "GET", "/orders/twap", 1), twap_cancel)


def test_the_cancel_all_does_not_wait_for_the_twap_listing(pac, env, sim):
    """The listing goes out after the cancel was written: a slow listing never delays the cancel. (Two
    connections: the simulator may log the listing a moment before the cancel, never a second.)"""
    pac.add_order(MAIN, "BTC")
    sim.fail(P + "/orders/twap", "delay", exact=True, seconds=1.5, times=1)
    proc = env.run("panic", "--json")
    assert proc.returncode == 0, proc.stderr
    entries = log(sim)
    cancel_all, listing = one(entries, "POST", "/orders/cancel_all"), one(entries, "GET", "/orders/twap")
    assert cancel_all["time"] < listing["time"] + 0.5  # not after the listing's 1.5 s
    assert all(after(e, listing) for e in entries if e["path"] not in (P + "/orders/cancel_all", P + "/orders/twap"))


def test_the_book_s_two_halves_and_the_history_go_together_after_the_cancels(pac, env, sim):
    btc, eth = pac.add_order(MAIN, "BTC", amount="0.5"), pac.add_order(MAIN, "ETH", side="ask")
    # the verification's GET /orders is answered only once its TWAP half and the history read arrived
    sim.fail(
        P + "/orders",
        "hold",
        exact=True,
        until={P + "/orders/twap": 2, P + "/orders/history": 1},
        seconds=HOLD_S,
    )
    proc = env.run("panic", "--json")
    assert proc.returncode == 0, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["cancelled_count"] == 2 and r["remaining"] == [] and r["positions"] == []
    assert {o["order_id"] for o in r["cancelled_orders"]} == {str(btc), str(eth)}  # named by the history read
    entries = log(sim)
    cancel_all = one(entries, "POST", "/orders/cancel_all")
    book = one(entries, "GET", "/orders")
    book_twaps, history = one(entries, "GET", "/orders/twap", 1), one(entries, "GET", "/orders/history")
    assert book["held"] is True
    for read in (book, book_twaps, history):  # all three after the cancel-all's answer ...
        assert after(read, cancel_all)
    assert not after(book_twaps, book) and not after(history, book)  # ... and none waited for another
    positions = one(entries, "GET", "/positions")
    for read in (book, book_twaps, history):  # the positions after verification and the history (contract)
        assert after(positions, read)


def test_a_book_whose_twap_half_failed_is_a_book_not_read(pac, env, sim):
    pac.add_order(MAIN, "BTC")
    sim.fail(P + "/orders/twap", status=500, body="html", times=-1)
    proc = env.run("panic", "--json", "--timeout", "3")
    assert proc.returncode == 5, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["cancelled_count"] == 1 and pac.open_orders() == []
    assert r["verify_error"] is not None  # GET /orders came back empty; the TWAP half did not: not "no open orders"


def test_a_refused_agent_sends_no_cancel_and_no_read_after_the_refusal(sim, env):
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config(
        {"pac": {"venue": "pacifica", "base_url": sim.url + P, "account": MAIN, "agent_wallet": AGENT}}
    )
    env.secret("pac", "private_key", AGENT_PRIVATE)
    sim.pacifica.unbound_agent_answer = "json"
    sim.pacifica.add_twap(MAIN, "BTC")
    proc = env.run("panic", "--json")
    assert proc.returncode == 4, proc.stderr
    entries = log(sim)
    # at most the TWAP listing that went out next to the cancel, never a TWAP cancel, a book read or positions
    seen = [(e["method"], e["path"]) for e in entries]
    # the TWAP list is sent once the cancel-all was written whole, on a connection of its own, so the simulator
    # may log either first (as in test_twap.py); nothing else may come before the cancel-all
    first = seen.index(("POST", P + "/orders/cancel_all"))
    assert first <= 1 and set(seen[:first]) <= {("GET", P + "/orders/twap")}, seen
    assert set(seen[first + 1 :]) <= {("GET", P + "/orders/twap")}, seen
    assert len(sim.pacifica.open_twaps()) == 1


def test_a_part_of_a_deadline_shares_its_gate():
    whole = Deadline(10.0)
    part = whole.part(1.0)
    assert part.end <= whole.end and 0.5 < part.remaining() <= 1.0
    assert whole.part(60.0).end == whole.end  # never later than the whole
    with part.capped(0.1):  # the part's own clock: the whole's is untouched
        assert whole.remaining() > 9.0
    part.writing()
    assert whole.wrote  # a part's request counts as the whole's
    whole.close()
    assert part.closed and part.remaining() == 0.0
    with pytest.raises(Stopped):
        part.writing()


def test_round_trips_counts_requests_one_after_the_other():
    def e(t: float, answered: float) -> dict:
        return {"time": t, "answered": answered}

    assert round_trips([]) == 0
    assert round_trips([e(0, 1), e(0.1, 1.1), e(0.2, 1.2)]) == 1  # together
    assert round_trips([e(0, 1), e(1, 2), e(2, 3)]) == 3  # each after the last answer
    assert round_trips([e(0, 1), e(0.1, 1.1), e(1.1, 2), e(2.5, 3)]) == 3
    assert round_trips([e(0, 5), e(1, 2), e(2, 3)]) == 2  # the long one alone is one trip


def test_a_hold_gives_up_after_its_seconds(sim):
    def arrive() -> None:
        with sim.arrived:
            sim.log.append({"path": "/x"})
            sim.arrived.notify_all()

    threading.Timer(0.05, arrive).start()
    assert sim.hold({"/x": 1}, 2.0) is True
    started = time.monotonic()
    assert sim.hold({"/y": 1}, 0.2) is False
    assert 0.15 < time.monotonic() - started < 2.0
