"""The venues' own material as a second oracle, besides the simulator.

``tests/data/gemini_conformance.json`` restates Gemini's SDK conformance
fixtures (https://github.com/gemini/developer-platform, ``conformance/http/``)
and the error examples of its OpenAPI spec; ``tests/data/pacifica_answers.json``
the answer shapes of docs.pacifica.fi. Each case names its source. They are
fed to cancelctl's request builder and answer parser directly, and through
the real process against the simulator answering exactly the recorded
status, headers and body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path

import pytest

from cancelctl import errors
from cancelctl.config import Profile
from cancelctl.signing import gemini as gemini_signing
from cancelctl.transport import Answer, Deadline

from conftest import parse_json

DATA = Path(__file__).parent / "data"
GEMINI = json.loads((DATA / "gemini_conformance.json").read_text())
PACIFICA = json.loads((DATA / "pacifica_answers.json").read_text())


def _answer(case: dict) -> Answer:
    return Answer(case["status"], {k.lower(): v for k, v in case["headers"].items()}, case["body"].encode())


def _gemini_client(tmp_path):
    from cancelctl.venues.gemini import Gemini

    profile = Profile("fx", "gemini", "production", base_url_override="http://127.0.0.1:9")
    return Gemini(
        profile,
        {"api_key": "account-fixture000001", "api_secret": "fixture-secret-000001"},
        state_dir=tmp_path,
        deadline=Deadline(5),
    )


def _pacifica_client():
    from cancelctl.sim.pacifica import solana_keypair
    from cancelctl.venues.pacifica import Pacifica

    private, _ = solana_keypair(bytes(range(7, 39)))
    profile = Profile("fx", "pacifica", "mainnet", base_url_override="http://127.0.0.1:9/api/v1")
    return Pacifica(profile, {"private_key": private}, deadline=Deadline(5))


def test_every_gemini_fixture_that_concerns_private_requests_is_a_case():
    """Gemini's manifest of http fixtures: each is a case here or excluded with a reason."""
    manifest = {  # conformance/manifest.json, suites http/errors and http/hmac-requests
        "conformance/http/errors/" + n + ".json"
        for n in (
            "insufficient-funds-406",
            "invalid-nonce-400",
            "market-closed-400",
            "missing-role-403-error-envelope",
            "missing-role-403-result-envelope",
            "not-found-404-empty-body",
            "order-not-found-404",
            "rate-limited-429-retry-after",
            "server-error-500-unstructured",
            "terms-required-400-accept-terms-required",
            "terms-required-400-must-accept",
        )
    } | {
        "conformance/http/hmac-requests/" + n + ".json"
        for n in (
            "private-post-empty-body",
            "private-post-wide-integer",
            "private-post-with-body",
            "websocket-upgrade-nonce",
        )
    }
    covered = {c["source"] for c in GEMINI["errors"] + GEMINI["hmac_requests"]} | set(GEMINI["not_applicable"])
    assert manifest - covered == set()
    assert all(c["url"].startswith("https://") for c in GEMINI["errors"] + GEMINI["hmac_requests"])


@pytest.mark.parametrize("case", GEMINI["errors"], ids=lambda c: c["source"].rsplit("/", 1)[-1])
def test_gemini_answer_parser_maps_each_fixture(case, tmp_path):
    client = _gemini_client(tmp_path)
    with pytest.raises(errors.CancelctlError) as caught:
        client._interpret(_answer(case), "/v1/order/cancel")
    e = caught.value
    assert type(e).__name__ == case["cancelctl"]["error"] or (
        case["cancelctl"]["error"] == "InvalidNonce" and e.kind == "invalid_nonce"
    )
    assert e.exit_code == (
        errors.ExitCode.UNAVAILABLE if case["cancelctl"]["error"] == "InvalidNonce" else case["cancelctl"]["exit_code"]
    )
    if case["reason"]:
        assert e.venue_reason == case["reason"]  # the fixture's reason is preserved
    if "retry_after" in case:
        assert e.retry_after == case["retry_after"]
    assert "\n" not in e.one_line()


@pytest.mark.parametrize("case", GEMINI["hmac_requests"], ids=lambda c: c["source"].rsplit("/", 1)[-1])
def test_gemini_request_builder_matches_each_signing_fixture(case):
    creds = case["credentials"]
    req = gemini_signing.sign(
        api_key=creds["apiKey"],
        api_secret=creds["apiSecret"],
        base_url="https://api.gemini.com",
        path=case["request"]["path"],
        nonce=case["nonce"],
        fields=case["fields"],
    )
    assert req.method == case["request"]["method"] and req.content == b""
    for name in case["expect"]["headers"]:
        assert req.headers[name]
    assert req.headers["X-GEMINI-APIKEY"] == case["expect"]["apiKeyHeader"]
    b64 = req.headers["X-GEMINI-PAYLOAD"]
    payload = json.loads(base64.b64decode(b64), parse_int=Decimal, parse_float=Decimal)  # lossless
    assert set(payload) == {"request", "nonce", *case["fields"]}  # nothing but request, nonce and the fields
    assert payload["request"] == case["request"]["path"]
    assert str(payload["nonce"]) == case["nonce"]  # decimal text; a JSON string or number (rest-nonce-json-type)
    raw = base64.b64decode(b64).decode()
    for name, value in case["fields"].items():
        assert (
            json.dumps({name: value}, separators=(",", ":"))[1:-1] in raw
        )  # the raw JSON value, wide integers unrounded
    expected = hmac.new(creds["apiSecret"].encode(), b64.encode(), hashlib.sha384).hexdigest()
    assert req.headers["X-GEMINI-SIGNATURE"] == expected


@pytest.mark.parametrize("case", PACIFICA["answers"], ids=lambda c: c["source"][:40])
def test_pacifica_answer_parser_maps_each_shape(case):
    client = _pacifica_client()
    with pytest.raises(errors.CancelctlError) as caught:
        client._interpret(_answer(case))
    e = caught.value
    assert type(e).__name__ == case["cancelctl"]["error"]
    assert e.exit_code == case["cancelctl"]["exit_code"]
    if "kind" in case["cancelctl"]:
        assert e.kind == case["cancelctl"]["kind"]
    if "retry_after" in case:
        assert e.retry_after == case["retry_after"]
    assert "<" not in e.one_line()  # an HTML page is described, never quoted


# -- the same shapes through the real process against the simulator ---------------------
# One process, one profile per case (each its own key or account, so each meets only its
# own fault): every recorded answer reaches the real request path, and each profile's
# result in the one JSON document says what cancelctl made of it.


def _fault(sim, path: str, case: dict, key: str) -> None:
    headers = dict(case["headers"])
    ctype = next((headers.pop(k) for k in list(headers) if k.lower() == "content-type"), "")
    sim.fail(path, status=case["status"], payload=case["body"], content_type=ctype, headers=headers, times=-1, key=key)


def _by_profile(proc) -> dict:
    return {r["profile"]: r for r in parse_json(proc)["results"]}


def test_every_gemini_shape_through_the_process(sim, env):
    profiles = {}
    for n, case in enumerate(GEMINI["errors"]):
        name, key = f"g{n}", f"account-FIXTURE{n:04d}abcdef"
        sim.gemini.add_key(key, f"fixture-secret-{n:04d}-abcdef", account=f"acct{n}")
        profiles[name] = {"venue": "gemini", "base_url": sim.url}
        env.secret(name, "api_key", key)
        env.secret(name, "api_secret", f"fixture-secret-{n:04d}-abcdef")
        _fault(sim, "/v1/order/cancel", case, key)
    env.write_config(profiles)
    # the fault answers before the simulator looks the order up: one ID serves every profile
    proc = env.run(
        "cancel", "order", "330429777", *[arg for p in profiles for arg in ("-p", p)], "--json", "--timeout", "6"
    )
    results = _by_profile(proc)
    for n, case in enumerate(GEMINI["errors"]):
        r = results[f"g{n}"]
        assert r["exit_code"] == case["cancelctl"]["exit_code"], (case["source"], r)
        if case["cancelctl"]["exit_code"] in (4, 78):  # credentials or URL: the first refusal stops the profile
            assert r["error"]["venue_reason"] == case["reason"]
        known = r["cancelled"] + r["unknown"] + [x["id"] for x in r["rejected"]]
        assert known == ["330429777"], (case["source"], r)
    assert {e["key"] for e in sim.requests("/v1/order/cancel")} == {
        f"account-FIXTURE{n:04d}abcdef" for n in range(len(GEMINI["errors"]))
    }
    assert proc.returncode == 1 or proc.returncode == 5  # mixed codes combine to 5 when any is 5


def test_every_pacifica_shape_through_the_process(sim, env):
    from test_pacifica_cli import CLOID

    from cancelctl.sim.pacifica import solana_keypair

    profiles = {}
    for n, case in enumerate(PACIFICA["answers"]):
        name = f"p{n}"
        private, public = solana_keypair(bytes([n + 1] * 32))
        sim.pacifica.add_account(private)
        sim.pacifica.add_order(public, "BTC", client_order_id=CLOID)
        profiles[name] = {"venue": "pacifica", "base_url": sim.url + "/api/v1"}
        env.secret(name, "private_key", private)
        _fault(sim, "/api/v1/orders/cancel", case, public)
    env.write_config(profiles)
    proc = env.run(
        "cancel",
        "order",
        CLOID,
        "--client-order-id",
        "--symbol",
        "BTC",
        *[arg for p in profiles for arg in ("-p", p)],
        "--json",
        "--timeout",
        "6",
    )
    results = _by_profile(proc)
    for n, case in enumerate(PACIFICA["answers"]):
        r = results[f"p{n}"]
        assert r["exit_code"] == case["cancelctl"]["exit_code"], (case["source"], r)
        known = r["cancelled"] + r["unknown"] + [x["id"] for x in r["rejected"]]
        assert known == [CLOID], (case["source"], r)
        if case["cancelctl"].get("kind") == "edge_refused":
            mine = [line for line in proc.stderr.splitlines() if f"profile p{n}:" in line]
            assert "CloudFront" in r["rejected"][0]["reason"] and not any("check the key" in line for line in mine)
        if case["cancelctl"].get("kind") == "order_not_found":
            assert r["rejected"][0]["reason"].lower().startswith(("unused client order id", "order not found"))


def test_wide_integer_order_id_through_the_process(gemini, env, sim):
    """conformance/http/hmac-requests/private-post-wide-integer.json: 9007199254740993 (2^53 + 1) travels unrounded."""
    from cancelctl.sim.gemini import SimOrder

    from conftest import GEMINI_KEY

    wide = 9007199254740993
    gemini.orders[wide] = SimOrder(wide, "primary", GEMINI_KEY)
    proc = env.run("cancel", "order", str(wide), "--json")
    assert proc.returncode == 0, proc.stderr
    assert parse_json(proc)["results"][0]["cancelled"] == [str(wide)]
    assert not gemini.orders[wide].live
