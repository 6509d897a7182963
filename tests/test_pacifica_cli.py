"""The real cancelctl process against the simulated Pacifica: books, exit codes, rows."""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancelctl.sim.pacifica import solana_keypair
from cancelctl.venues.pacifica import NOT_OPEN

from conftest import parse_json

MAIN_PRIVATE, MAIN = solana_keypair(bytes(range(1, 33)))
AGENT_PRIVATE, AGENT = solana_keypair(bytes(range(33, 65)))
CLOID = "0f1e2d3c-4b5a-4697-8877-665544332211"


@pytest.fixture
def pac(sim, env):
    """A main-wallet Pacifica profile ``pac`` (the only profile) on the simulator."""
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("pac", "private_key", MAIN_PRIVATE)
    return sim.pacifica


def book(p) -> set[int]:
    return {o.order_id for o in p.open_orders(MAIN)}


def seed(p) -> dict[str, int]:
    return {
        "btc": p.add_order(MAIN, "BTC"),
        "btc_ro": p.add_order(MAIN, "BTC", side="ask", reduce_only=True),
        "eth": p.add_order(MAIN, "ETH"),
        "eth_stop": p.add_order(MAIN, "ETH", side="ask", reduce_only=True, stop=True),
        "sol": p.add_order(MAIN, "SOL", client_order_id=CLOID),
    }


@pytest.mark.parametrize("command", [["cancel", "pacifica"], ["cancel", "all"]])
def test_cancel_every_symbol(pac, env, sim, command):
    seed(pac)
    other = pac.add_order(AGENT, "BTC")  # another account's order stays
    proc = env.run(*command, "--json")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == set()
    assert {o.order_id for o in pac.open_orders()} == {other}
    doc = parse_json(proc)
    assert doc["results"][0]["cancelled_count"] == 5
    assert doc["results"][0]["action"] == "cancel_all_orders"
    assert len(sim.requests("/api/v1/orders/cancel_all")) == 1


def test_symbol_leaves_other_symbols(pac, env, sim):
    ids = seed(pac)
    proc = env.run("cancel", "pacifica", "--symbol", "BTC")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == {ids["eth"], ids["eth_stop"], ids["sol"]}


def test_two_symbols_two_requests(pac, env, sim):
    ids = seed(pac)
    proc = env.run("cancel", "pacifica", "--symbol", "BTC", "--symbol", "SOL", "--json")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == {ids["eth"], ids["eth_stop"]}
    assert parse_json(proc)["results"][0]["cancelled_count"] == 3
    assert len(sim.requests("/api/v1/orders/cancel_all")) == 2


def test_exclude_reduce_only_leaves_reduce_only(pac, env):
    ids = seed(pac)
    proc = env.run("cancel", "pacifica", "--exclude-reduce-only")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == {ids["btc_ro"], ids["eth_stop"]}


def test_agent_wallet_profile(pac, env, sim):
    pac.bind_agent(MAIN, AGENT)
    seed(pac)
    env.write_config(
        {"agent": {"venue": "pacifica", "base_url": sim.url + "/api/v1", "account": MAIN, "agent_wallet": AGENT}}
    )
    env.secret("agent", "private_key", AGENT_PRIVATE)
    proc = env.run("cancel", "all", "-p", "agent")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == set()


def test_unbound_agent_wallet_is_exit_4(pac, env, sim):
    ids = seed(pac)
    env.write_config(
        {"agent": {"venue": "pacifica", "base_url": sim.url + "/api/v1", "account": MAIN, "agent_wallet": AGENT}}
    )
    env.secret("agent", "private_key", AGENT_PRIVATE)
    proc = env.run("cancel", "all", "-p", "agent", "--json")
    assert proc.returncode == 4, proc.stderr
    assert book(pac) == set(ids.values())
    doc = parse_json(proc)
    assert doc["results"][0]["error"]["kind"] == "auth"
    assert "bound" in proc.stderr and "Unauthorized" in proc.stderr


def test_clock_off_is_exit_4_with_clock_hint(pac, env):
    ids = seed(pac)
    pac.clock = lambda: time.time() + 60  # the venue is a minute ahead: our timestamps look expired
    proc = env.run("cancel", "all")
    assert proc.returncode == 4
    assert "clock" in proc.stderr and "Invalid message" in proc.stderr
    assert book(pac) == set(ids.values())


def test_cancel_by_client_order_id(pac, env):
    ids = seed(pac)
    proc = env.run("cancel", "order", CLOID, "--symbol", "SOL", "--client-order-id", "--json")
    assert proc.returncode == 0, proc.stderr
    assert ids["sol"] not in book(pac) and len(book(pac)) == 4
    assert parse_json(proc)["results"][0]["cancelled"] == [CLOID]


def test_stop_order(pac, env, sim):
    ids = seed(pac)
    stop_id = str(ids["eth_stop"])
    proc = env.run("cancel", "order", stop_id, "--symbol", "ETH", "--json")  # not a plain order
    assert proc.returncode == 1
    assert parse_json(proc)["results"][0]["rejected"][0]["id"] == stop_id
    assert ids["eth_stop"] in book(pac)
    proc = env.run("cancel", "order", stop_id, "--symbol", "ETH", "--stop", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = parse_json(proc)
    assert doc["results"][0]["action"] == "cancel_stop_order" and doc["results"][0]["cancelled"] == [stop_id]
    assert book(pac) == {ids["btc"], ids["btc_ro"], ids["eth"], ids["sol"]}
    assert len(sim.requests("/api/v1/orders/stop/cancel")) == 1


def test_two_stop_orders_go_one_by_one(pac, env, sim):
    a, b = pac.add_order(MAIN, "ETH", stop=True), pac.add_order(MAIN, "ETH", stop=True)
    proc = env.run("cancel", "order", str(a), str(b), "--symbol", "ETH", "--stop")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == set()
    assert len(sim.requests("/api/v1/orders/stop/cancel")) == 2 and not sim.requests("/api/v1/orders/batch")


def test_twelve_ids_two_batches_twelve_rows(pac, env, sim):
    real = [pac.add_order(MAIN, "BTC") for _ in range(11)]
    eth = pac.add_order(MAIN, "ETH")
    ids = [str(i) for i in real] + ["424242"]
    proc = env.run("cancel", "order", *ids, "--symbol", "BTC", "--json")
    assert proc.returncode == 3, proc.stderr
    assert len(sim.requests("/api/v1/orders/batch")) == 2
    assert not sim.requests("/api/v1/orders/cancel")
    r = parse_json(proc)["results"][0]
    assert r["cancelled"] == [str(i) for i in real]
    assert [x["id"] for x in r["rejected"]] == ["424242"] and r["rejected"][0]["reason"] == "Failed to cancel order"
    assert len(r["cancelled"]) + len(r["rejected"]) + len(r["unknown"]) == 12
    assert book(pac) == {eth}


def test_batch_answer_missing_an_entry_is_unknown(pac, env, sim, monkeypatch):
    a, b = pac.add_order(MAIN, "BTC"), pac.add_order(MAIN, "BTC")
    original = pac._batch

    def short(data):
        status, answer = original(data)
        answer["data"]["results"] = answer["data"]["results"][:1]
        return status, answer

    monkeypatch.setattr(pac, "_batch", short)
    proc = env.run("cancel", "order", str(a), str(b), "--symbol", "BTC", "--json")
    assert proc.returncode == 5
    r = parse_json(proc)["results"][0]
    assert r["cancelled"] == [str(a)] and r["unknown"] == [str(b)]


def test_bad_ids_and_symbols_send_nothing(pac, env, sim):
    seed(pac)
    proc = env.run("cancel", "order", "abc", "--symbol", "BTC")
    assert proc.returncode == 2
    proc = env.run("cancel", "order", "1", "--symbol", "")
    assert proc.returncode == 2 and "not a Pacifica symbol" in proc.stderr
    assert not sim.requests("/api/v1")


# -- cancel order without --symbol: one read of the open orders gives each ID's symbol and kind (issue 15, 13) --


def cancels(sim) -> list[dict]:
    """The signed cancel requests the simulator received, in order."""
    return [r for r in sim.requests("/api/v1/orders") if r["method"] == "POST"]


def test_without_symbol_each_id_is_looked_up(pac, env, sim):
    ids = seed(pac)
    asked = [ids["btc"], ids["eth_stop"], ids["sol"]]
    proc = env.run("cancel", "order", *map(str, asked), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = parse_json(proc)["results"][0]
    assert sorted(r["cancelled"]) == sorted(map(str, asked)) and r["rejected"] == [] and r["unknown"] == []
    assert book(pac) == {ids["btc_ro"], ids["eth"]}  # the others stay
    assert r["looked_up"] == [
        {"id": str(ids["btc"]), "symbol": "BTC", "stop": False},
        {"id": str(ids["eth_stop"]), "symbol": "ETH", "stop": True},
        {"id": str(ids["sol"]), "symbol": "SOL", "stop": False},
    ]
    line = [x for x in proc.stderr.splitlines() if "looked up in the open orders" in x]
    assert len(line) == 1 and f"{ids['eth_stop']} ETH (stop order)" in line[0] and f"{ids['sol']} SOL" in line[0]
    # one read, before any cancel; the stop order by the stop endpoint
    log = sim.requests("/api/v1/orders")
    assert [(x["method"], x["path"]) for x in log[:1]] == [("GET", "/api/v1/orders")]
    assert [x["path"] for x in log if x["method"] == "GET"] == ["/api/v1/orders"]
    assert [x["path"] for x in cancels(sim)] == ["/api/v1/orders/stop/cancel", "/api/v1/orders/batch"]


def test_an_id_not_open_keeps_its_row(pac, env, sim):
    ids = seed(pac)
    proc = env.run("cancel", "order", str(ids["btc"]), "999999", "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["cancelled"] == [str(ids["btc"])]
    assert r["rejected"] == [{"id": "999999", "reason": "not sent: " + NOT_OPEN}]
    assert {"id": "999999", "symbol": None, "stop": None} in r["looked_up"]
    assert "999999 not open" in proc.stderr
    assert [x["path"] for x in cancels(sim)] == ["/api/v1/orders/cancel"]  # the one found, alone
    proc = env.run("cancel", "order", "999999")
    assert proc.returncode == 1 and "999999" in proc.stdout + proc.stderr  # nothing done: failed, never "done"
    assert "999999 not open" in proc.stderr


@pytest.mark.parametrize(("status", "code"), [(503, 75), (500, 1)])
def test_an_unreadable_book_sends_nothing(pac, env, sim, status, code):
    ids = seed(pac)
    sim.fail("/api/v1/orders", status=status, times=-1)
    proc = env.run("cancel", "order", str(ids["btc"]), str(ids["eth"]), "--json", "--timeout", "2")
    assert proc.returncode == code, proc.stdout + proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["cancelled"] == [] and r["unknown"] == [] and [x["id"] for x in r["rejected"]] == [
        str(ids["btc"]),
        str(ids["eth"]),
    ]
    assert all(x["reason"].startswith("not sent: ") for x in r["rejected"])
    assert code == 75 or "give --symbol" in r["error"]["message"]
    assert cancels(sim) == [] and len(book(pac)) == 5


def test_client_order_id_and_dry_run_look_up_too(pac, env, sim):
    seed(pac)
    proc = env.run("cancel", "order", CLOID.upper(), "--client-order-id", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = parse_json(proc)
    body = doc["results"][0]["requests"][0]["body"]
    assert body["symbol"] == "SOL" and body["client_order_id"] == CLOID.upper()
    assert cancels(sim) == [] and len(book(pac)) == 5  # the read went out, no cancel
    proc = env.run("cancel", "order", CLOID, "--client-order-id")
    assert proc.returncode == 0, proc.stderr
    assert len(book(pac)) == 4


def test_malformed_key_is_exit_78(pac, env, sim):
    bad = "4" * 87  # base58, but 64 bytes whose halves do not match
    env.secret("pac", "private_key", bad)
    proc = env.run("cancel", "all")
    assert proc.returncode == 78
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cancelctl: error:")
    assert "Traceback" not in proc.stderr
    out = proc.stdout + proc.stderr
    assert bad[:12] not in out and "<redacted>" not in out  # not echoed, not even scrubbed
    assert not sim.requests("/api/v1")


def test_public_key_instead_of_secret_key(pac, env, sim):
    from cancelctl.credentials import env_var

    env.vars[env_var("pac", "private_key")] = MAIN  # a public key: wrong, but not a secret
    proc = env.run("cancel", "all")
    assert proc.returncode == 78
    assert "64-byte" in proc.stderr and "32 bytes" in proc.stderr
    assert not sim.requests("/api/v1")


def test_cancel_session_is_usage_error(pac, env, sim):
    proc = env.run("cancel", "session")
    assert proc.returncode == 2
    assert "cancel all" in proc.stderr or "cancel pacifica" in proc.stderr
    assert not sim.requests("/api/v1")


def test_dry_run_sends_nothing_and_shows_no_signature(pac, env, sim):
    ids = seed(pac)
    proc = env.run("cancel", "order", str(ids["btc"]), str(ids["btc_ro"]), "--symbol", "BTC", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert not cancels(sim)  # the book is read (GET, unsigned), nothing is cancelled
    assert book(pac) == set(ids.values())
    doc = parse_json(proc)
    assert doc["dry_run"] is True
    assert sorted(o["order_id"] for o in doc["results"][0]["would_cancel"]) == sorted(
        [str(ids["btc"]), str(ids["btc_ro"])]
    )
    (req,) = doc["results"][0]["requests"]
    assert req["url"].endswith("/api/v1/orders/batch")
    assert [a["data"]["signature"] for a in req["body"]["actions"]] == ["<redacted>", "<redacted>"]
    assert [a["signed"]["type"] for a in req["signed"]["actions"]] == ["cancel_order", "cancel_order"]
    # no base58 run as long as a signature (86-88 characters) anywhere in the output
    assert not re.search(r"[1-9A-HJ-NP-Za-km-z]{80,}", proc.stdout + proc.stderr)
    proc = env.run("cancel", "all", "--dry-run")
    assert proc.returncode == 0 and "<redacted>" in proc.stdout
    assert not re.search(r"[1-9A-HJ-NP-Za-km-z]{80,}", proc.stdout + proc.stderr)
    assert not cancels(sim)
    assert {r["method"] for r in sim.requests("/api/v1")} == {"GET"}
    would = [line.split("\t")[3] for line in proc.stdout.splitlines() if "\twould cancel\t" in line]
    assert sorted(would) == sorted(str(i) for i in ids.values())



def test_json_document_shape(pac, env):
    seed(pac)
    proc = env.run("cancel", "pacifica", "--symbol", "ETH", "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert set(doc) == {"schema", "ok", "exit_code", "dry_run", "results"}
    assert (doc["schema"], doc["ok"], doc["exit_code"], doc["dry_run"]) == ("cancelctl/1", True, 0, False)
    (r,) = doc["results"]
    assert {
        "profile",
        "venue",
        "action",
        "status",
        "cancelled",
        "rejected",
        "cancelled_count",
        "remaining",
        "error",
        "elapsed_ms",
    } <= set(r)
    assert (r["profile"], r["venue"], r["action"], r["status"]) == ("pac", "pacifica", "cancel_all_orders", "ok")
    assert r["cancelled_count"] == 2 and r["remaining"] is None and r["error"] is None


def test_rate_limited_is_exit_75(pac, env, sim):
    ids = seed(pac)
    sim.fail(
        "/api/v1/orders/cancel_all", status=429, body="text", reason="Too Many Requests", retry_after=0.2, times=-1
    )
    proc = env.run("cancel", "all", "--timeout", "1", "--json")
    assert proc.returncode == 75
    assert parse_json(proc)["results"][0]["error"]["kind"] == "unavailable"
    assert book(pac) == set(ids.values())


def test_server_error_is_exit_5(pac, env, sim):
    seed(pac)
    sim.fail("/api/v1/orders/cancel_all", status=500, body="html", times=-1)
    proc = env.run("cancel", "all", "--timeout", "1")
    assert proc.returncode == 5


def test_retry_after_503_resigns_and_succeeds(pac, env, sim):
    seed(pac)
    sim.fail("/api/v1/orders/cancel_all", status=503, body="text", reason="Service Unavailable", times=1)
    proc = env.run("cancel", "all")
    assert proc.returncode == 0, proc.stderr
    assert book(pac) == set()
    assert [r.get("status") for r in sim.requests("/api/v1/orders/cancel_all")] == [None, 200]


def test_unreadable_200_is_exit_5(pac, env, sim):
    ids = seed(pac)
    sim.fail("/api/v1/orders/cancel", status=200, body="html", times=-1)
    proc = env.run("cancel", "order", str(ids["btc"]), "--symbol", "BTC", "--timeout", "1", "--json")
    assert proc.returncode == 5
    assert parse_json(proc)["results"][0]["unknown"] == [str(ids["btc"])]


@pytest.fixture(scope="module")
def shared_sim():
    from cancelctl.sim.server import Simulator

    with Simulator(lifetime=120) as s:
        yield s


BOOKS = st.lists(st.tuples(st.sampled_from(["BTC", "ETH", "SOL", "kBONK"]), st.booleans()), max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(book=BOOKS, picks=st.lists(st.integers(0, 9), max_size=6), strangers=st.integers(0, 2))
def test_look_up_invariants(shared_sim, book, picks, strangers):
    """Whatever the book and the IDs asked: one read first; each asked ID has exactly one row; an open one is
    cancelled with its own symbol and kind (a stop order by its own request), one not open is rejected "not sent";
    the rest of the book stays."""
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.transport import Deadline
    from cancelctl.venues.pacifica import Pacifica

    p = shared_sim.pacifica
    with shared_sim.lock:
        p.orders.clear()
        shared_sim.log.clear()
    p.add_account(MAIN_PRIVATE)
    placed = [p.add_order(MAIN, sym, stop=stop) for sym, stop in book]
    open_ids = [placed[i] for i in picks if i < len(placed)]
    asked = list(dict.fromkeys([str(i) for i in open_ids] + [str(900000 + n) for n in range(strangers)]))
    profile = Profile("pac", "pacifica", "mainnet", base_url_override=shared_sim.url + "/api/v1")
    client = Pacifica(profile, Credentials({"private_key": MAIN_PRIVATE}), deadline=Deadline(20))
    try:
        result = client.cancel_orders(asked) if asked else None
    finally:
        client.close()
    if result is None:
        return
    rows = result.cancelled + [r["id"] for r in result.rejected] + result.unknown
    assert sorted(rows) == sorted(asked)
    assert sorted(result.cancelled) == sorted(str(i) for i in set(open_ids))
    assert all(r["reason"] == "not sent: " + NOT_OPEN for r in result.rejected)
    assert {o.order_id for o in p.open_orders(MAIN)} == set(placed) - set(open_ids)
    log = shared_sim.requests("/api/v1/orders")
    assert [r["method"] for r in log].count("GET") == 1 and log[0]["method"] == "GET"  # one read, first
    posts = [r for r in log if r["method"] == "POST"]
    stops = {i for i, (_, stop) in zip(placed, book) if stop} & set(open_ids)
    plain = set(open_ids) - stops
    assert len(posts) == len(stops) + (1 if plain else 0)  # stops one by one; the rest in one request


def test_an_id_listed_twice_with_two_symbols_is_not_sent(pac, env, sim):
    """A book naming one order_id on two symbols does not say which: no cancel on a guessed symbol."""
    ids = seed(pac)
    twin, other = ids["btc"], ids["sol"]

    def entry(order_id: int, symbol: str) -> dict:
        return {"order_id": order_id, "symbol": symbol, "side": "bid", "price": "1", "initial_amount": "1",
                "filled_amount": "0", "cancelled_amount": "0", "order_type": "limit", "reduce_only": False}

    data = [entry(twin, "BTC"), entry(twin, "ETH"), entry(other, "SOL")]
    sim.fail("/api/v1/orders", status=200, payload=json.dumps({"success": True, "data": data}),
             content_type="application/json", times=1)
    proc = env.run("cancel", "order", str(twin), str(other), "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["cancelled"] == [str(other)] and r["unknown"] == []
    assert [x["id"] for x in r["rejected"]] == [str(twin)] and r["rejected"][0]["reason"].startswith("not sent: ")
    assert [x["path"] for x in cancels(sim)] == ["/api/v1/orders/cancel"]  # the other alone: the twin never sent
    assert twin in book(pac)


def test_dry_run_look_up_is_one_attempt(pac, env, sim):
    """A dry run's look-up of the symbols is a read like its preview: one attempt, never retried to --timeout."""
    ids = seed(pac)
    sim.fail("/api/v1/orders", status=503, body="error", times=-1)
    started = time.monotonic()
    proc = env.run("cancel", "order", str(ids["btc"]), "--dry-run", "--json", "--timeout", "30")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a dry run exits 0 (contract)
    assert [x["id"] for x in parse_json(proc)["results"][0]["rejected"]] == [str(ids["btc"])]
    gets = [x for x in sim.requests("/api/v1/orders") if x["method"] == "GET"]
    assert 1 <= len(gets) <= 2, gets  # the look-up once (and the preview's read once), not retried
    assert cancels(sim) == [] and len(book(pac)) == 5
    assert time.monotonic() - started < 20  # loose: the point is the count above
