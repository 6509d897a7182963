"""The Pacifica simulator verifies like the venue, so passing CLI tests prove the signing.

The simulator rebuilds the signed message on its own (it never imports
cancelctl.signing.pacifica); the SDK's own vector bodies must pass it.
"""

from __future__ import annotations

import json
import time

import nacl.signing
import pytest

from cancelctl.signing import pacifica as signing
from cancelctl.sim.pacifica import PacificaSim, solana_keypair

from conftest import vectors

V = vectors("pacifica")
MAIN_SEED = bytes(range(100, 132))
AGENT_SEED = bytes(range(200, 232))
OTHER_SEED = bytes(range(50, 82))


def key(seed: bytes) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(seed)


def pub(seed: bytes) -> str:
    return solana_keypair(seed)[1]


@pytest.fixture
def sim() -> PacificaSim:
    s = PacificaSim()
    s.add_account(key(MAIN_SEED))
    return s


def now_ms() -> int:
    return int(time.time() * 1000)


def body(
    op: str,
    payload: dict,
    *,
    signer: bytes = MAIN_SEED,
    account: str | None = None,
    agent: str | None = None,
    ts: int | None = None,
    window: int = 5000,
) -> dict:
    wire, _ = signing.signed_body(
        op_type=op,
        payload=payload,
        account=account or pub(MAIN_SEED),
        agent_wallet=agent,
        signing_key=key(signer),
        timestamp_ms=now_ms() if ts is None else ts,
        expiry_window_ms=window,
    )
    return wire


def post(sim: PacificaSim, path: str, data: dict):
    return sim.handle("POST", "/api/v1" + path, "", {"content-type": "application/json"}, json.dumps(data).encode())


def test_fresh_cancel_is_accepted(sim):
    oid = sim.add_order(pub(MAIN_SEED), "BTC")
    status, answer = post(sim, "/orders/cancel", body("cancel_order", {"symbol": "BTC", "order_id": oid}))
    assert (status, answer["success"]) == (200, True)
    assert sim.open_orders() == []


def test_tampered_body_is_refused(sim):
    keep = sim.add_order(pub(MAIN_SEED), "BTC")
    target = sim.add_order(pub(MAIN_SEED), "BTC")
    data = body("cancel_order", {"symbol": "BTC", "order_id": target})
    data["order_id"] = keep  # altered after signing
    assert post(sim, "/orders/cancel", data) == (400, b"Verification failed")
    assert {o.order_id for o in sim.open_orders()} == {keep, target}


def test_wrong_operation_type_is_refused(sim):
    oid = sim.add_order(pub(MAIN_SEED), "BTC", stop=True)
    data = body("cancel_order", {"symbol": "BTC", "order_id": oid})  # signed for the wrong endpoint
    assert post(sim, "/orders/stop/cancel", data) == (400, b"Verification failed")


def test_expired_timestamp_is_refused(sim):
    oid = sim.add_order(pub(MAIN_SEED), "BTC")
    data = body("cancel_order", {"symbol": "BTC", "order_id": oid}, ts=now_ms() - 6000)
    assert post(sim, "/orders/cancel", data) == (400, b"Invalid message")
    assert len(sim.open_orders()) == 1


def test_no_invented_bounds_on_timestamp_or_window(sim):
    """The docs (Signing) bound neither how far ahead a timestamp may be nor the expiry window: neither does the
    simulator."""
    sim.add_order(pub(MAIN_SEED), "BTC")
    data = body(
        "cancel_all_orders", {"all_symbols": True, "exclude_reduce_only": False}, ts=now_ms() + 60_000, window=120_000
    )
    status, answer = post(sim, "/orders/cancel_all", data)
    assert status == 200 and answer["data"] == {"cancelled_count": 1}


def test_wrong_key_is_refused(sim):
    sim.add_order(pub(MAIN_SEED), "BTC")
    data = body("cancel_all_orders", {"all_symbols": True, "exclude_reduce_only": False}, signer=OTHER_SEED)
    assert post(sim, "/orders/cancel_all", data) == (400, b"Verification failed")
    assert len(sim.open_orders()) == 1


def test_bad_public_key_is_refused(sim):
    data = body("cancel_all_orders", {"all_symbols": True, "exclude_reduce_only": False}, account="0OIl")
    assert post(sim, "/orders/cancel_all", data) == (400, b"Invalid public key")


def test_unbound_agent_is_refused_and_bound_agent_accepted(sim):
    sim.add_order(pub(MAIN_SEED), "BTC")
    payload = {"all_symbols": True, "exclude_reduce_only": False}
    data = body("cancel_all_orders", payload, signer=AGENT_SEED, agent=pub(AGENT_SEED))
    assert post(sim, "/orders/cancel_all", data) == (400, b"Unauthorized")
    assert len(sim.open_orders()) == 1
    sim.bind_agent(pub(MAIN_SEED), pub(AGENT_SEED))
    data = body("cancel_all_orders", payload, signer=AGENT_SEED, agent=pub(AGENT_SEED))
    assert post(sim, "/orders/cancel_all", data)[1]["data"] == {"cancelled_count": 1}
    assert sim.open_orders() == []


def test_agent_signature_must_be_the_agents(sim):
    sim.bind_agent(pub(MAIN_SEED), pub(AGENT_SEED))
    data = body(
        "cancel_all_orders",
        {"all_symbols": True, "exclude_reduce_only": False},
        signer=MAIN_SEED,
        agent=pub(AGENT_SEED),
    )
    assert post(sim, "/orders/cancel_all", data) == (400, b"Verification failed")


@pytest.mark.parametrize("vec", [v for v in V["vectors"] if v["operation_type"]], ids=lambda v: v["name"])
def test_sdk_vector_bodies_pass_when_fresh(vec):
    """The SDK's own bodies, sent verbatim at their timestamp, are accepted; a moment after expiry they are not."""
    clock = [vec["timestamp"] / 1000 + 1]
    s = PacificaSim(clock=lambda: clock[0])
    account = s.add_account(V["keys"]["main"]["private_key_base58"])
    assert account == vec["account"]
    if vec["operation_type"] == "cancel_order":
        s.add_order(account, vec["payload"]["symbol"], order_id=vec["payload"]["order_id"])
    path = vec["endpoint"].split(" ")[1][len("/api/v1") :]
    status, answer = post(s, path, vec["request_body"])
    assert status == 200 and answer["success"] is True
    clock[0] = (vec["timestamp"] + vec["expiry_window"]) / 1000 + 0.01
    assert post(s, path, vec["request_body"]) == (400, b"Invalid message")


def test_sdk_batch_vector_passes_and_answers_per_action():
    vec = next(v for v in V["vectors"] if v["endpoint"].endswith("/orders/batch"))
    s = PacificaSim(clock=lambda: 1750000000.5)
    account = s.add_account(V["keys"]["main"]["private_key_base58"])
    s.add_order(account, "BTC", order_id=1001)
    status, answer = post(s, "/orders/batch", vec["request_body"])
    assert status == 200
    results = answer["data"]["results"]
    assert [r["success"] for r in results] == [True, False]
    assert results[1]["error"] == "Failed to cancel order"  # the venue's words for a failed batch cancel
    assert s.open_orders() == []


def test_batch_with_one_bad_signature_runs_nothing(sim):
    a, b = sim.add_order(pub(MAIN_SEED), "BTC"), sim.add_order(pub(MAIN_SEED), "BTC")
    good = body("cancel_order", {"symbol": "BTC", "order_id": a})
    bad = body("cancel_order", {"symbol": "BTC", "order_id": b}, signer=OTHER_SEED)
    status, _ = post(
        sim, "/orders/batch", {"actions": [{"type": "Cancel", "data": good}, {"type": "Cancel", "data": bad}]}
    )
    assert status == 400
    assert len(sim.open_orders()) == 2


def test_batch_over_ten_is_refused(sim):
    ids = [sim.add_order(pub(MAIN_SEED), "BTC") for _ in range(11)]
    actions = [{"type": "Cancel", "data": body("cancel_order", {"symbol": "BTC", "order_id": i})} for i in ids]
    status, answer = post(sim, "/orders/batch", {"actions": actions})
    assert status == 400 and answer["success"] is False
    assert len(sim.open_orders()) == 11


def test_cancel_all_scopes(sim):
    me = pub(MAIN_SEED)
    btc, btc_ro = sim.add_order(me, "BTC"), sim.add_order(me, "BTC", reduce_only=True)
    eth = sim.add_order(me, "ETH")
    refusing = sim.add_order(me, "ETH", refuse=1)
    other = sim.add_order(pub(OTHER_SEED), "BTC")
    status, answer = post(
        sim,
        "/orders/cancel_all",
        body("cancel_all_orders", {"symbol": "BTC", "all_symbols": False, "exclude_reduce_only": True}),
    )
    assert answer["data"] == {"cancelled_count": 1}
    assert {o.order_id for o in sim.open_orders()} == {btc_ro, eth, refusing, other}
    status, answer = post(
        sim, "/orders/cancel_all", body("cancel_all_orders", {"all_symbols": True, "exclude_reduce_only": False})
    )
    assert answer["data"] == {"cancelled_count": 2}  # the refusing order stays once
    assert {o.order_id for o in sim.open_orders()} == {refusing, other}
    assert btc not in {o.order_id for o in sim.open_orders()}


def test_unknown_and_refusing_orders(sim):
    me = pub(MAIN_SEED)
    oid = sim.add_order(me, "BTC", refuse=1)
    status, answer = post(sim, "/orders/cancel", body("cancel_order", {"symbol": "BTC", "order_id": 999}))
    assert status == 422 and answer["error"].startswith("Order not found") and isinstance(answer["code"], int)
    status, answer = post(sim, "/orders/cancel", body("cancel_order", {"symbol": "BTC", "order_id": oid}))
    assert status == 422 and answer["error"].startswith("Cancel rejected")
    status, _ = post(sim, "/orders/cancel", body("cancel_order", {"symbol": "BTC", "order_id": oid}))
    assert status == 200 and sim.open_orders() == []


def test_stop_orders_only_through_stop_cancel(sim):
    oid = sim.add_order(pub(MAIN_SEED), "ETH", stop=True)
    status, _ = post(sim, "/orders/cancel", body("cancel_order", {"symbol": "ETH", "order_id": oid}))
    assert status == 422
    status, _ = post(sim, "/orders/stop/cancel", body("cancel_stop_order", {"symbol": "ETH", "order_id": oid}))
    assert status == 200 and sim.open_orders() == []


def test_get_orders(sim):
    me = pub(MAIN_SEED)
    sim.add_order(me, "BTC", reduce_only=True)
    sim.add_order(me, "ETH", stop=True, client_order_id="11111111-2222-4333-8444-555555555555")
    sim.add_order(pub(OTHER_SEED), "SOL")
    status, answer = sim.handle("GET", "/api/v1/orders", f"account={me}", {}, b"")
    assert status == 200 and answer["success"] is True
    rows = answer["data"]
    assert [(r["symbol"], r["reduce_only"], r["order_type"]) for r in rows] == [
        ("BTC", True, "limit"),
        ("ETH", False, "stop_limit"),
    ]
    status, page = sim.handle("GET", "/api/v1/orders", f"account={me}", {}, b"{}")
    assert (
        status == 403 and page.startswith(b"<!DOCTYPE HTML") and b"CloudFront" in page
    )  # the edge, API FAQ "403 CloudFront"
