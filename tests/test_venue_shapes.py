"""Every venue error shape the simulator now produces as the venue does, through the real process.

Gemini: the IP allow-list refusals (``ApiKeyIpFilteringFailure``,
``RemoteAddressForbidden``), ``EndpointNotFound`` with a body, ``MissingRole``
in either envelope. Pacifica: "Unused client order id" (code 37), "Agent not
authorized for account", the edge's 403 HTML page, the ``ratelimit`` header.
"""

from __future__ import annotations

import json

from test_pacifica_cli import AGENT, AGENT_PRIVATE, CLOID, MAIN, MAIN_PRIVATE

from cancelctl.sim.pacifica import PacificaSim

from conftest import GEMINI_KEY, parse_json

# -- Gemini ---------------------------------------------------------------------------


def test_ip_allow_list_refusal_stops_the_key_and_exits_4(gemini, env, sim):
    gemini.keys[GEMINI_KEY].allowed_ips = frozenset({"192.0.2.7"})
    ids = [gemini.add_order("primary", GEMINI_KEY) for _ in range(3)]
    proc = env.run("cancel", "order", *map(str, ids), "--json")
    assert proc.returncode == 4, proc.stderr
    assert len(sim.requests("/v1/order/cancel")) == 1  # the key cannot pass from here: nothing more is sent on it
    r = parse_json(proc)["results"][0]
    assert r["error"]["venue_reason"] == "ApiKeyIpFilteringFailure" and r["error"]["kind"] == "auth"
    assert [x["id"] for x in r["rejected"]] == list(map(str, ids)) and all(
        x["reason"].startswith("not sent") for x in r["rejected"]
    )
    assert "IP allow-list" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert len(gemini.open_orders()) == 3


def test_group_ip_refusal_on_cancel_all_is_exit_4_not_refused(gemini, env, sim):
    gemini.group_allowed_ips = frozenset({"192.0.2.7"})
    gemini.add_order("primary", "UI")
    proc = env.run("cancel", "all", "--verify", "--json")
    assert proc.returncode == 4, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["status"] == "failed" and r["error"]["venue_reason"] == "RemoteAddressForbidden"
    assert "allow-list" in r["error"]["message"]
    assert not sim.requests("/v1/orders")  # no verification on a key that cannot pass


def test_endpoint_not_found_with_body_is_a_wrong_url(gemini, env, sim):
    sim.fail("/v1/order/cancel/all", status=404, body="gemini", reason="EndpointNotFound")
    proc = env.run("cancel", "all")
    assert proc.returncode == 78, proc.stderr
    assert "base_url" in proc.stderr and "EndpointNotFound" in proc.stderr


def test_simulated_unknown_path_is_endpoint_not_found(gemini):
    import base64
    import hashlib
    import hmac

    from conftest import GEMINI_SECRET

    b64 = base64.b64encode(json.dumps({"request": "/v1/order/cancel/everything", "nonce": "1"}).encode()).decode()
    sig = hmac.new(GEMINI_SECRET.encode(), b64.encode(), hashlib.sha384).hexdigest()
    status, answer = gemini.handle(
        "/v1/order/cancel/everything",
        {"x-gemini-apikey": GEMINI_KEY, "x-gemini-payload": b64, "x-gemini-signature": sig},
    )
    assert (status, answer["reason"], answer["message"]) == (404, "EndpointNotFound", "API entry point not found")


def test_missing_role_in_the_error_envelope_names_the_role(gemini, env):
    gemini.keys[GEMINI_KEY].roles = frozenset({"fundmanager"})
    gemini.role_envelope = "error"
    proc = env.run("cancel", "all", "--json")
    assert proc.returncode == 4, proc.stderr
    err = parse_json(proc)["results"][0]["error"]
    assert err["venue_reason"] == "MissingRole" and "Trader role" in err["message"]
    listing = env.run("orders", "--json")
    assert listing.returncode == 4 and "Trader or Auditor" in parse_json(listing)["results"][0]["error"]["message"]


# -- Pacifica -------------------------------------------------------------------------


def _pac(sim, env, private=MAIN_PRIVATE, **profile):
    sim.pacifica.add_account(MAIN_PRIVATE)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1", **profile}})
    env.secret("pac", "private_key", private)
    return sim.pacifica


def test_unused_client_order_id_is_rejected_not_found(sim, env):
    p = _pac(sim, env)
    p.add_order(MAIN, "BTC", client_order_id=CLOID)
    unknown = "99999999-8888-4777-8666-555555555555"
    proc = env.run("cancel", "order", unknown, "--client-order-id", "--symbol", "BTC", "--json")
    assert proc.returncode == 1, proc.stderr
    r = parse_json(proc)["results"][0]
    assert r["rejected"] == [{"id": unknown, "reason": f"Unused client order id: {unknown}"}]
    assert len(p.open_orders()) == 1


def test_unbound_agent_json_answer_is_exit_4_and_stops_the_profile(sim, env):
    p = _pac(sim, env, private=AGENT_PRIVATE, account=MAIN, agent_wallet=AGENT)
    p.unbound_agent_answer = "json"
    ids = [str(p.add_order(MAIN, "BTC")) for _ in range(12)]  # two batches: the second is never sent
    proc = env.run("cancel", "order", *ids, "--symbol", "BTC", "--verify", "--json")
    assert proc.returncode == 4, proc.stderr
    assert len(sim.requests("/api/v1/orders/batch")) == 1
    assert not [e for e in sim.requests("/api/v1/orders") if e["method"] == "GET"]  # no verification either
    r = parse_json(proc)["results"][0]
    assert r["error"]["venue_reason"] == "Agent not authorized for account"
    assert "bind" in r["error"]["message"] and "agent_wallet" in r["error"]["message"]
    assert sorted(x["id"] for x in r["rejected"]) == sorted(ids)
    assert len(p.open_orders()) == 12


def test_unbound_agent_single_cancel_json_answer(sim, env):
    p = _pac(sim, env, private=AGENT_PRIVATE, account=MAIN, agent_wallet=AGENT)
    p.unbound_agent_answer = "json"
    proc = env.run("cancel", "all")
    assert proc.returncode == 4, proc.stderr
    assert "bind" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_edge_403_page_is_said_for_what_it_is(sim, env):
    p = _pac(sim, env)
    p.add_order(MAIN, "BTC")
    from cancelctl.sim.pacifica import EDGE_403

    sim.fail("/api/v1/orders/cancel_all", status=403, payload=EDGE_403.decode(), content_type="text/html")
    proc = env.run("cancel", "all")
    assert proc.returncode == 1, proc.stderr
    assert "CloudFront" in proc.stderr and "not a credential problem" in proc.stderr
    assert "<" not in proc.stderr and "keys set" not in proc.stderr


def test_get_with_a_body_meets_the_edge_page(sim):
    """The simulator's edge: a GET with a body is refused before the API (API FAQ "403 CloudFront")."""
    import httpx

    sim.pacifica.add_account(MAIN_PRIVATE)
    r = httpx.request("GET", f"{sim.url}/api/v1/orders?account={MAIN}", content=b"{}", timeout=5)
    assert r.status_code == 403 and r.headers["content-type"] == "text/html" and "cloudfront" in r.text.lower()


def test_ratelimit_header_gives_the_wait(sim, env):
    """Pacifica's 429 carries ``ratelimit: "credits";r=0;t=<s>``: a wait longer than the run is not retried into."""
    p = _pac(sim, env)
    p.add_order(MAIN, "BTC")
    sim.fail(
        "/api/v1/orders/cancel_all",
        status=429,
        payload='{"success":false,"data":null,"error":"Rate limit exceeded","code":429}',
        headers={"ratelimit": '"credits";r=0;t=30', "ratelimit-policy": '"credits";q=1250;w=60'},
        times=-1,
    )
    proc = env.run("cancel", "all", "--timeout", "3")
    assert proc.returncode == 75, proc.stderr
    assert len(sim.requests("/api/v1/orders/cancel_all")) == 1  # waiting 30 s does not fit in 3: not retried at once


def test_ratelimit_header_short_wait_is_honoured(sim, env):
    p = _pac(sim, env)
    p.add_order(MAIN, "BTC")
    sim.fail(
        "/api/v1/orders/cancel_all",
        status=429,
        payload='{"success":false,"error":"Rate limit exceeded","code":429}',
        headers={"ratelimit": '"credits";r=0;t=1'},
    )
    proc = env.run("cancel", "all", "--json")
    assert proc.returncode == 0, proc.stderr
    sent = sim.requests("/api/v1/orders/cancel_all")
    assert len(sent) == 2 and sent[1]["time"] - sent[0]["time"] >= 0.9


# -- the simulator's own answers (no process) -----------------------------------------


def test_sim_batch_takes_cancel_stop_order_actions():
    from test_pacifica_sim import MAIN_SEED, key, pub

    from cancelctl.signing import pacifica as signing
    from cancelctl.venues.pacifica import now_ms

    s = PacificaSim()
    me = pub(MAIN_SEED)
    s.add_account(me)
    stop = s.add_order(me, "BTC", stop=True)
    plain = s.add_order(me, "BTC")
    actions = []
    for op, kind, oid in (
        ("cancel_stop_order", "CancelStopOrder", stop),
        ("cancel_order", "Cancel", plain),
        ("cancel_order", "Cancel", 424242),
    ):
        wire, _ = signing.signed_body(
            op_type=op,
            payload={"symbol": "BTC", "order_id": oid},
            account=me,
            agent_wallet=None,
            signing_key=key(MAIN_SEED),
            timestamp_ms=now_ms(),
            expiry_window_ms=5000,
        )
        actions.append({"type": kind, "data": wire})
    status, answer = s.handle("POST", "/api/v1/orders/batch", "", {}, json.dumps({"actions": actions}).encode())
    assert status == 200
    assert [(r["success"], r["error"]) for r in answer["data"]["results"]] == [
        (True, None),
        (True, None),
        (False, "Failed to cancel order"),
    ]
    assert s.open_orders() == []


def test_sim_refuses_a_fractional_nonce_on_a_millisecond_key(gemini):
    import base64
    import hashlib
    import hmac

    from conftest import GEMINI_SECRET

    def post(nonce):
        b64 = base64.b64encode(json.dumps({"request": "/v1/heartbeat", "nonce": nonce}).encode()).decode()
        sig = hmac.new(GEMINI_SECRET.encode(), b64.encode(), hashlib.sha384).hexdigest()
        return gemini.handle(
            "/v1/heartbeat", {"x-gemini-apikey": GEMINI_KEY, "x-gemini-payload": b64, "x-gemini-signature": sig}
        )

    status, answer = post("1700000000000.5")
    assert (status, answer["reason"]) == (400, "InvalidNonce")
    assert post("1700000000001")[0] == 200


def test_sim_reads_fields_before_the_signature():
    s = PacificaSim()
    s.add_account(MAIN_PRIVATE)
    body = {
        "account": MAIN,
        "signature": "x",
        "timestamp": 1,
        "expiry_window": 5000,
        "symbol": "BTC",
    }  # neither order_id nor client_order_id
    status, answer = s.handle("POST", "/api/v1/orders/cancel", "", {}, json.dumps(body).encode())
    assert status == 400 and "order_id" in answer["error"]


# -- Gemini pacing (https://docs.gemini.com/rate-limit) ---------------------------------


def test_twelve_ids_complete_without_a_429_at_the_recommended_rate(gemini, env, sim):
    """The simulator held to the recommended 5 a second (+ the burst of 5): twelve IDs, not one 429."""
    gemini.rate_per_s = 5
    ids = [gemini.add_order("primary", GEMINI_KEY) for _ in range(12)]
    proc = env.run("cancel", "order", *map(str, ids), "--json", "--timeout", "15")
    assert proc.returncode == 0, proc.stderr
    assert parse_json(proc)["results"][0]["cancelled"] == list(map(str, ids))
    assert gemini.rate_limited == 0
    sent = sim.requests("/v1/order/cancel")
    assert len(sent) == 12 and all(r["status"] == 200 for r in sent)
    assert sent[-1]["time"] - sent[0]["time"] >= (12 - 5) / 5 * 0.9  # after the burst, 5 a second


def test_the_simulator_answers_429_past_the_burst(gemini):
    """What an unpaced client meets: more than rate + burst requests in one second on a key."""
    gemini.rate_per_s = 5
    answers = [gemini._rate_limit(GEMINI_KEY) for _ in range(12)]
    assert answers[:10] == [None] * 10
    status, body = answers[10]
    assert status == 429 and body["reason"] == "RateLimit" and int(body.headers["Retry-After"]) >= 1


def test_pacing_is_shared_by_processes_on_one_key(gemini, env, sim):
    gemini.rate_per_s = 5
    ids = [gemini.add_order("primary", GEMINI_KEY) for _ in range(14)]
    procs = [env.popen("cancel", "order", str(i), "--timeout", "15") for i in ids]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    assert gemini.rate_limited == 0 and gemini.open_orders() == []


def test_ip_refusal_stops_every_profile_on_the_key(sim, env):
    """Two sub-accounts of one master key: the first refusal stops the key for both, so one request goes out."""
    sim.gemini.add_key("master-IPKEY0001", "master-ip-secret-1", allowed_ips=frozenset({"192.0.2.7"}))
    profiles = {}
    for name in ("desk-1", "desk-2"):
        sim.gemini.accounts.add(name)
        sim.gemini.add_order(name, "UI")
        profiles[name] = {"venue": "gemini", "account": name, "base_url": sim.url}
        env.secret(name, "api_key", "master-IPKEY0001")
        env.secret(name, "api_secret", "master-ip-secret-1")
    env.write_config(profiles)
    proc = env.run("cancel", "all", "-p", "desk-1", "-p", "desk-2", "--json")
    assert proc.returncode == 4, proc.stderr
    assert len(sim.requests("/v1/order/cancel/all")) == 1
    assert {r["error"]["venue_reason"] for r in parse_json(proc)["results"]} == {"ApiKeyIpFilteringFailure"}
    assert len(sim.gemini.open_orders()) == 2
