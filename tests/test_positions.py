"""Positions: read (both venues at once), reported after panic, closed on request. The real process against the
simulator."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancelctl import positions as pos
from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, GEMINI_SECRET, audit_lines, parse_json

PAC_PRIVATE, PAC = solana_keypair(bytes(range(201, 233)))


@pytest.fixture
def both(sim, env):
    """Gemini profile ``g`` (account key, account "primary") and Pacifica profile ``p`` on the simulator."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    assert sim.pacifica.add_account(PAC_PRIVATE) == PAC
    env.write_config(
        {"g": {"venue": "gemini", "base_url": sim.url}, "p": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}}
    )
    env.secret("g", "api_key", GEMINI_KEY)
    env.secret("g", "api_secret", GEMINI_SECRET)
    env.secret("p", "private_key", PAC_PRIVATE)
    return sim


def by_profile(doc: dict) -> dict:
    return {r["profile"]: r for r in doc["results"]}


def test_positions_reads_both_venues_as_decimal_strings(both, env):
    both.gemini.add_position("primary", "btcgusdperp", "0.5", average_cost="61200", mark_price="61000.5")
    both.gemini.add_position("primary", "ethgusdperp", "-2.25", average_cost="2400", mark_price="2390")
    both.pacifica.add_position(PAC, "SOL", "ask", "12.5", entry_price="140.25")
    both.pacifica.add_position(PAC, "BTC", "bid", "0.001")
    proc = env.run("positions", "--json")
    assert proc.returncode == 0, proc.stderr
    r = by_profile(parse_json(proc))
    g = {p["symbol"]: p for p in r["g"]["positions"]}
    assert g["btcgusdperp"] == {
        "symbol": "btcgusdperp",
        "side": "long",
        "size": "0.5",
        "entry_price": "61200",
        "mark_price": "61000.5",
        "unrealized_pnl": "-99.75",
    }
    assert g["ethgusdperp"]["side"] == "short" and g["ethgusdperp"]["size"] == "2.25"
    p = {x["symbol"]: x for x in r["p"]["positions"]}
    assert p["SOL"] == {
        "symbol": "SOL",
        "side": "short",
        "size": "12.5",
        "entry_price": "140.25",
        "mark_price": None,
        "unrealized_pnl": None,
    }
    assert p["BTC"]["side"] == "long"
    for result in r.values():
        assert result["action"] == "positions" and result["status"] == "ok"
        for x in result["positions"]:
            assert all(v is None or isinstance(v, str) for k, v in x.items())
    # read-only: nothing was sent but the two reads
    assert [q["path"] for q in both.requests() if not q["path"].endswith(("/positions",))] == []
    assert len(both.gemini.open_positions()) == 2 and len(both.pacifica.open_positions()) == 2


def test_positions_of_a_spot_only_account_and_the_bare_array_answer(both, env):
    both.gemini.positions_envelope = False  # the spec's example form: a bare array
    proc = env.run("positions", "--json")
    assert proc.returncode == 0, proc.stderr
    r = by_profile(parse_json(proc))
    assert r["g"]["positions"] == [] and r["p"]["positions"] == []
    proc = env.run("positions", "-p", "g")  # a pipe: TSV
    assert proc.returncode == 0
    assert proc.stdout.split("\n")[0].split("\t")[3:5] == ["-", "flat"]


def test_an_unreadable_position_entry_is_no_read_at_all(both, env):
    both.gemini.add_position("primary", "btcgusdperp", "0.5")
    both.gemini.positions[("primary", "btcgusdperp")].quantity = Decimal("NaN")
    proc = env.run("positions", "--json", "-p", "g", "--timeout", "2")
    assert proc.returncode == 5
    (r,) = parse_json(proc)["results"]
    assert r["positions"] is None and r["error"]["kind"] == "unknown"


def test_positions_tsv_in_a_pipe(both, env):
    both.pacifica.add_position(PAC, "SOL", "bid", "3", entry_price="150")
    proc = env.run("positions", "-p", "p")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.split("\t") == ["p", "pacifica", "positions", "SOL", "position", "SOL long 3 @ 150"]


# -- panic reports positions ----------------------------------------------------


def test_panic_reports_positions_without_changing_the_exit_code(both, env):
    both.gemini.add_order("primary", "UI")
    both.gemini.add_position("primary", "btcgusdperp", "0.5", average_cost="61200", mark_price="61000")
    both.pacifica.add_position(PAC, "SOL", "ask", "3")
    proc = env.run("panic", "--json")
    assert proc.returncode == 0, (
        proc.stderr
    )  # no open orders: positions do not change the code without --close-positions
    r = by_profile(parse_json(proc))
    assert r["g"]["remaining"] == [] and r["g"]["positions"][0]["symbol"] == "btcgusdperp"
    assert r["p"]["positions"] == [
        {
            "symbol": "SOL",
            "side": "short",
            "size": "3",
            "entry_price": "60000",
            "mark_price": None,
            "unrealized_pnl": None,
        }
    ]
    assert "closed" not in r["g"] and both.gemini.new_orders == [] and both.pacifica.market_orders == []
    # the positions are read after the book: never before the first cancel
    paths = [q["path"] for q in both.requests("/v1/")]
    assert paths.index("/v1/order/cancel/all") < paths.index("/v1/positions")
    # on a terminal-less run the table is TSV; the positions are there with the hint
    proc = env.run("panic", "-p", "g")
    assert proc.returncode == 0
    assert (
        "btcgusdperp long 0.5 @ 61200 (mark 61000, unrealized PnL -100) — not closed; use --close-positions"
        in proc.stdout
    )


def test_panic_says_a_failed_position_read_and_keeps_its_exit_code(both, env):
    both.gemini.add_order("primary", "UI")
    both.fail("/v1/positions", "status", status=500, body="html", times=-1)
    proc = env.run("panic", "--json", "-p", "g", "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    (r,) = parse_json(proc)["results"]
    assert r["positions"] is None and r["positions_error"]["kind"] == "unknown"
    assert "positions not read" in proc.stderr
    assert both.gemini.open_orders() == []


# -- closing ---------------------------------------------------------------------


def test_panic_close_positions_closes_both_venues(both, env):
    both.gemini.add_order("primary", "UI")
    both.pacifica.add_order(PAC, "BTC")
    both.gemini.add_position("primary", "btcgusdperp", "0.5", mark_price="60000")
    both.gemini.add_position("primary", "ethgusdperp", "-2", mark_price="2400")
    both.gemini.book("ethgusdperp").ask = Decimal("2401")
    both.pacifica.add_position(PAC, "SOL", "ask", "12.5")
    both.pacifica.add_position(PAC, "BTC", "bid", "0.25")
    proc = env.run("panic", "--close-positions", "--json", "--reason", "flatten")
    assert proc.returncode == 0, proc.stderr
    r = by_profile(parse_json(proc))
    assert r["g"]["positions"] == [] and r["p"]["positions"] == []
    assert sorted((c["symbol"], c["status"]) for c in r["g"]["closed"]) == [
        ("btcgusdperp", "filled"),
        ("ethgusdperp", "filled"),
    ]
    assert sorted((c["symbol"], c["side"], c["size"], c["status"]) for c in r["p"]["closed"]) == [
        ("BTC", "long", "0.25", "filled"),
        ("SOL", "short", "12.5", "filled"),
    ]
    # Gemini: IOC limit orders on the opposite side, priced 0.5 % through the mark price, on the tick
    orders = {o["symbol"]: o for o in both.gemini.new_orders}
    assert orders["btcgusdperp"]["side"] == "sell" and orders["btcgusdperp"]["price"] == "59700"
    assert (
        orders["ethgusdperp"]["side"] == "buy"
        and orders["ethgusdperp"]["price"] == "2412"
        and orders["ethgusdperp"]["amount"] == "2"
    )
    assert all(
        o["options"] == ["immediate-or-cancel"] and o["type"] == "exchange limit" and o["client_order_id"]
        for o in both.gemini.new_orders
    )
    # Pacifica: reduce-only market orders with the slippage bound
    assert all(o["reduce_only"] is True and o["slippage_percent"] == "0.5" for o in both.pacifica.market_orders)
    assert {o["symbol"]: o["side"] for o in both.pacifica.market_orders} == {"SOL": "bid", "BTC": "ask"}
    assert both.gemini.open_positions() == [] and both.pacifica.open_positions() == []
    assert both.gemini.open_orders() == [] and both.pacifica.open_orders() == []
    (line,) = audit_lines(env)
    assert line["reason"] == "flatten" and sum(len(x["closed"]) for x in line["results"]) == 4


def test_a_partial_fill_is_retried_at_most_twice_then_exit_3(both, env):
    both.gemini.add_position("primary", "btcgusdperp", "1", mark_price="60000")
    both.gemini.book("btcgusdperp").depth = Decimal("0.2")  # each IOC order fills 0.2 at most
    both.pacifica.add_position(PAC, "SOL", "bid", "1")
    both.pacifica.markets["SOL"].depth = Decimal("0.4")  # 0.4 + 0.4 + 0.2: flat after the second retry
    proc = env.run("close-positions", "-p", "g", "-p", "p", "--json")
    assert proc.returncode == 3, proc.stderr
    r = by_profile(parse_json(proc))
    assert [c["status"] for c in r["g"]["closed"]] == ["partial", "partial", "partial"]
    assert [c["size"] for c in r["g"]["closed"]] == ["1", "0.8", "0.6"]  # each sized from a fresh read
    assert r["g"]["positions"] == [
        {
            "symbol": "btcgusdperp",
            "side": "long",
            "size": "0.4",
            "entry_price": "60000",
            "mark_price": "60000",
            "unrealized_pnl": "0",
        }
    ]
    assert r["g"]["status"] == "partial" and r["p"]["status"] == "ok" and r["p"]["positions"] == []
    assert [c["status"] for c in r["p"]["closed"]] == ["partial", "partial", "filled"]
    assert len(both.gemini.new_orders) == 3 and len(both.pacifica.market_orders) == 3


def test_no_fill_within_the_slippage_bound(both, env):
    both.pacifica.add_position(PAC, "BTC", "bid", "0.1")
    both.pacifica.markets["BTC"].bid = Decimal("59000")  # 1.7 % under the mark
    proc = env.run("close-positions", "-p", "p", "--json", "--max-slippage", "1")
    assert proc.returncode == 3
    (r,) = parse_json(proc)["results"]
    assert r["closed"][0]["status"] == "rejected" and "--max-slippage 1%" in r["closed"][0]["reason"]
    assert r["positions"][0]["size"] == "0.1"
    proc = env.run("close-positions", "-p", "p", "--json", "--max-slippage", "2")
    assert proc.returncode == 0, proc.stderr


def test_a_refused_close_is_reported_once_not_retried(both, env):
    both.pacifica.add_position(PAC, "ETH", "ask", "2")
    both.pacifica.markets["ETH"].halted = True
    both.gemini.add_position("primary", "solgusdperp", "-5", mark_price="150")
    both.gemini.book("solgusdperp").status = "cancel_only"
    proc = env.run("panic", "--close-positions", "--json")
    assert proc.returncode == 3, proc.stderr
    r = by_profile(parse_json(proc))
    (pc,) = r["p"]["closed"]
    assert pc["status"] == "rejected" and "halted" in pc["reason"]
    (gc,) = r["g"]["closed"]
    assert gc["status"] == "rejected" and "cancel_only" in gc["reason"] and gc["order_id"] is None
    assert len(both.requests("/api/v1/orders/create_market")) == 1 and both.requests("/v1/order/new") == []
    assert r["p"]["positions"][0]["size"] == "2" and r["g"]["positions"][0]["side"] == "short"


def test_reduce_only_never_flips_and_the_size_is_rounded_down_to_the_lot(both, env):
    both.pacifica.add_position(PAC, "BTC", "bid", "0.0125")  # lot 0.001: the order is 0.012
    proc = env.run("close-positions", "-p", "p", "--json")
    assert proc.returncode == 3  # 0.0005 is less than a lot: cannot be closed, said
    (r,) = parse_json(proc)["results"]
    assert [(c["size"], c["status"]) for c in r["closed"]] == [("0.012", "partial"), ("0.0005", "rejected")]
    assert "lot size 0.001" in r["closed"][1]["reason"]
    assert both.pacifica.open_positions()[0].side == "bid"


def test_a_lost_answer_is_not_closed_twice(both, env):
    """The order is done but its answer is lost: the fresh read shows it, nothing is sent again."""
    both.gemini.add_position("primary", "btcgusdperp", "0.5", mark_price="60000")
    both.pacifica.add_position(PAC, "SOL", "bid", "2")
    both.fail("/v1/order/new", "reset", times=1)
    both.fail("/api/v1/orders/create_market", "reset", times=1)
    proc = env.run("close-positions", "-p", "g", "-p", "p", "--json")
    assert proc.returncode == 0, proc.stderr
    r = by_profile(parse_json(proc))
    for name in ("g", "p"):
        (c,) = r[name]["closed"]
        assert c["status"] == "filled" and "the answer was lost" in c["reason"]
    assert len(both.gemini.new_orders) == 1 and len(both.pacifica.market_orders) == 1
    assert both.gemini.open_positions() == [] and both.pacifica.open_positions() == []


def test_a_lost_request_is_followed_by_one_retry_from_a_fresh_read(both, env):
    """No answer and nothing done (a 502 from a proxy).

    The next order is sized from the fresh read, with a new client order ID.
    """
    both.gemini.add_position("primary", "btcgusdperp", "-0.5", mark_price="60000")
    both.fail("/v1/order/new", "status", status=502, body="html", times=1)
    proc = env.run("close-positions", "-p", "g", "--json")
    assert proc.returncode == 0, proc.stderr
    (r,) = parse_json(proc)["results"]
    assert [c["status"] for c in r["closed"]] == ["rejected", "filled"]
    assert "the answer was lost" in r["closed"][0]["reason"]
    assert r["closed"][0]["client_order_id"] != r["closed"][1]["client_order_id"]
    assert len(both.requests("/v1/order/new")) == 2 and len(both.gemini.new_orders) == 1
    assert both.gemini.open_positions() == []


def test_dry_run_signs_the_closing_orders_and_sends_nothing(both, env):
    both.gemini.add_order("primary", "UI")
    both.gemini.add_position("primary", "btcgusdperp", "0.5", mark_price="60000")
    both.pacifica.add_position(PAC, "SOL", "ask", "3")
    proc = env.run("panic", "--close-positions", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    r = by_profile(parse_json(proc))
    assert [c["status"] for c in r["g"]["closed"] + r["p"]["closed"]] == ["dry-run", "dry-run"]
    gem_order = [q for q in r["g"]["requests"] if q["signed"].get("request") == "/v1/order/new"]
    assert len(gem_order) == 1 and gem_order[0]["headers"]["X-GEMINI-SIGNATURE"] == "<redacted>"
    assert gem_order[0]["signed"]["price"] == "59700" and gem_order[0]["signed"]["options"] == ["immediate-or-cancel"]
    pac_order = [q for q in r["p"]["requests"] if q["url"].endswith("/orders/create_market")]
    assert (
        len(pac_order) == 1
        and pac_order[0]["body"]["signature"] == "<redacted>"
        and pac_order[0]["body"]["reduce_only"] is True
    )
    sent = {q["path"] for q in both.requests()}
    assert not sent & {
        "/v1/order/cancel/all",
        "/v1/order/new",
        "/api/v1/orders/cancel_all",
        "/api/v1/orders/create_market",
    }
    assert (
        len(both.gemini.open_orders()) == 1
        and len(both.gemini.open_positions()) == 1
        and len(both.pacifica.open_positions()) == 1
    )


def test_max_slippage_needs_close_positions_and_a_sane_value(both, env):
    for args in (
        ["panic", "--max-slippage", "1"],
        ["panic", "--close-positions", "--max-slippage", "nan"],
        ["close-positions", "--max-slippage", "0"],
        ["close-positions", "-p", "g", "--max-slippage", "80"],
        ["close-positions", "-p", "g", "--max-slippage", "0." + "1" * 500],  # beyond exact arithmetic: a typo
    ):
        proc = env.run(*args, "--json")
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and parse_json(proc)["error"]["kind"] == "usage"
    assert both.requests() == []


# -- the rules of a closing order, as properties -------------------------------------

decimals = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), allow_nan=False, allow_infinity=False, places=8
)
steps = st.sampled_from(
    [None, Decimal("1"), Decimal("0.5"), Decimal("0.01"), Decimal("0.001"), Decimal("0.00000001"), Decimal("25")]
)
slippages = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50"), places=2)


@settings(max_examples=300, deadline=None)
@given(size=decimals, step=steps)
def test_a_closing_size_is_never_more_than_the_position(size, step):
    rounded = pos.round_size(size, step)
    assert 0 <= rounded <= size
    if step:
        assert rounded % step == 0 and size - rounded < step


@settings(max_examples=300, deadline=None)
@given(
    digits=st.integers(min_value=1, max_value=10**59), places=st.integers(min_value=0, max_value=30), step=steps
)
def test_a_closing_size_of_many_digits_is_never_rounded_up(digits, places, step):
    # 29 digits and more: the default decimal context (28 digits) rounded such sizes up (0.99...9 -> 1)
    size = Decimal(digits).scaleb(-places)
    rounded = pos.round_size(size, step)
    with localcontext(pos.EXACT):
        assert 0 <= rounded <= size
        if step:
            assert rounded % step == 0 and size - rounded < step


@settings(max_examples=300, deadline=None)
@given(reference=decimals, side=st.sampled_from(["buy", "sell"]), slippage=slippages, tick=steps)
def test_a_closing_price_stays_within_the_slippage_bound_and_on_the_tick(reference, side, slippage, tick):
    price = pos.limit_price(reference, side, slippage, tick)
    bound = reference * (1 - slippage / 100) if side == "sell" else reference * (1 + slippage / 100)
    if side == "sell":
        assert bound <= price  # never sells cheaper than the bound
    else:
        assert price <= bound  # never buys dearer than the bound
    if tick:
        assert price % tick == 0


@settings(max_examples=200, deadline=None)
@given(
    value=st.decimals(
        allow_nan=False, allow_infinity=False, places=12, min_value=Decimal("-1e9"), max_value=Decimal("1e9")
    )
)
def test_position_numbers_are_plain_decimal_strings(value):
    text = pos.text(value)
    assert "e" not in text.lower() and Decimal(text) == value
