"""Gemini signing reproduces independent code byte for byte (tests/vectors/gemini.json: ccxt 4.5.90, the docs'
example)."""

from __future__ import annotations

import base64

import pytest

from cancelctl.signing import gemini

from conftest import vectors

V = vectors("gemini")


def test_docs_worked_example():
    ex = V["docs_worked_example"]
    assert gemini.payload_b64(ex["payload_json_text"]) == ex["payload_b64"]
    assert gemini.signature(ex["api_secret"], ex["payload_b64"]) == ex["signature_expected_from_docs"]


@pytest.mark.parametrize("vec", V["ccxt_vectors"], ids=lambda v: v["name"])
def test_ccxt_vectors(vec):
    inp, want = vec["inputs"], vec["ccxt_output"]
    base = want["url"][: -len(inp["path"])]
    req = gemini.sign(
        api_key=inp["api_key"],
        api_secret=inp["api_secret"],
        base_url=base,
        path=inp["path"],
        nonce=str(inp["nonce"]),
        fields=inp["params"],
    )
    assert req.method == "POST" and req.url == want["url"]
    assert base64.b64decode(req.headers["X-GEMINI-PAYLOAD"]).decode() == vec["decoded_payload_json_text"]
    for h in ("X-GEMINI-APIKEY", "X-GEMINI-PAYLOAD", "X-GEMINI-SIGNATURE", "Content-Type"):
        assert req.headers[h] == want["headers"][h], h
    assert req.content == b""  # Gemini wants an empty body (ccxt sends "{}", which Gemini ignores)


@pytest.mark.parametrize("vec", V["master_key_vectors_python_hmac"], ids=lambda v: v["name"])
def test_master_key_vectors(vec):
    import json

    payload = json.loads(vec["decoded_payload_json_text"])
    path, nonce = payload.pop("request"), payload.pop("nonce")
    req = gemini.sign(
        api_key=vec["api_key"],
        api_secret=vec["api_secret"],
        base_url="https://api.gemini.com",
        path=path,
        nonce=nonce,
        fields=payload,
    )
    assert req.headers == vec["headers"]
    assert req.url == vec["url"]


@pytest.mark.parametrize("variant", V["serialization_variants_same_request"]["variants"], ids=lambda v: v["label"])
def test_any_serialisation_signs_the_base64_text(variant):
    secret = V["serialization_variants_same_request"]["api_secret"]
    assert gemini.payload_b64(variant["decoded_payload_json_text"]) == variant["X-GEMINI-PAYLOAD"]
    assert gemini.signature(secret, variant["X-GEMINI-PAYLOAD"]) == variant["X-GEMINI-SIGNATURE"]


def test_redacted_view_hides_key_and_signature():
    req = gemini.sign(api_key="account-K", api_secret="S3CRET", base_url="https://x", path="/v1/heartbeat", nonce="1")
    view = repr(req.redacted())
    assert "account-K" not in view and req.headers["X-GEMINI-SIGNATURE"] not in view and "S3CRET" not in view
    assert view.count("<redacted>") == 2
