"""Pacifica signing reproduces the official SDK byte for byte (tests/vectors/pacifica.json), and bad keys fail
clearly."""

from __future__ import annotations

import json

import base58
import nacl.signing
import pytest

from cancelctl.config import Profile
from cancelctl.credentials import Credentials
from cancelctl.errors import ConfigError, ExitCode, UsageProblem
from cancelctl.signing import pacifica
from cancelctl.transport import Deadline
from cancelctl.venues.pacifica import Pacifica, load_keypair, validate_order_ids, validate_symbol

from conftest import pacifica_keypair, vectors

V = vectors("pacifica")
MAIN = V["keys"]["main"]
SINGLE = [v for v in V["vectors"] if v["operation_type"]]
BATCH = next(v for v in V["vectors"] if v["endpoint"].endswith("/orders/batch"))
BASE = "https://api.pacifica.fi/api/v1"
PROFILE = Profile("pac", "pacifica", "mainnet")


def vector_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes.fromhex(MAIN["seed_hex"]))


@pytest.mark.parametrize("vec", SINGLE, ids=lambda v: v["name"])
def test_signed_message_and_signature(vec):
    text = pacifica.sign_message(vec["operation_type"], vec["payload"], vec["timestamp"], vec["expiry_window"])
    assert text == vec["signed_message"]
    assert text.encode("utf-8").hex() == vec["signed_message_utf8_hex"]
    assert pacifica.sign(vector_key(), text) == vec["signature_base58"]
    assert base58.b58decode(vec["signature_base58"]).hex() == vec["signature_hex"]


@pytest.mark.parametrize("vec", SINGLE, ids=lambda v: v["name"])
def test_prepared_request_body(vec):
    path = vec["endpoint"].split(" ")[1][len("/api/v1") :]
    req = pacifica.prepare(
        base_url=BASE,
        path=path,
        op_type=vec["operation_type"],
        payload=vec["payload"],
        account=vec["account"],
        agent_wallet=None,
        signing_key=vector_key(),
        timestamp_ms=vec["timestamp"],
        expiry_window_ms=vec["expiry_window"],
    )
    assert req.method == "POST" and req.url == "https://api.pacifica.fi" + vec["endpoint"].split(" ")[1]
    assert req.headers["Content-Type"] == "application/json"
    sent = json.loads(req.content)
    assert sent == vec["request_body"]
    assert list(sent) == list(vec["request_body"])  # the SDK's key order
    assert "type" not in sent and "data" not in sent
    assert req.summary == json.loads(vec["signed_message"])
    assert req.secret_body_keys == ("signature",)


def test_batch_body():
    req = pacifica.prepare_batch(
        base_url=BASE,
        payloads=[i["payload"] for i in BATCH["items"]],
        account=MAIN["public_key_base58"],
        agent_wallet=None,
        signing_key=vector_key(),
        timestamp_ms=1750000000000,
        expiry_window_ms=5000,
    )
    assert req.url == BASE + "/orders/batch"
    assert json.loads(req.content) == BATCH["request_body"]
    for item, signed in zip(BATCH["items"], req.summary["actions"]):
        assert json.dumps(signed["signed"], sort_keys=True, separators=(",", ":")) == item["signed_message"]


def test_batch_limit():
    with pytest.raises(ValueError):
        pacifica.prepare_batch(
            base_url=BASE,
            payloads=[{"symbol": "BTC", "order_id": i} for i in range(1, 12)],
            account=MAIN["public_key_base58"],
            agent_wallet=None,
            signing_key=vector_key(),
            timestamp_ms=1,
        )


def test_agent_wallet_is_sent_but_not_signed():
    vec = SINGLE[0]
    _, agent_pub = pacifica_keypair(7)
    req = pacifica.prepare(
        base_url=BASE,
        path="/orders/cancel_all",
        op_type=vec["operation_type"],
        payload=vec["payload"],
        account=vec["account"],
        agent_wallet=agent_pub,
        signing_key=vector_key(),
        timestamp_ms=vec["timestamp"],
        expiry_window_ms=vec["expiry_window"],
    )
    sent = json.loads(req.content)
    assert list(sent)[:3] == ["account", "agent_wallet", "signature"]
    assert sent["agent_wallet"] == agent_pub
    assert sent["signature"] == vec["signature_base58"]  # the same message was signed


def test_redacted_view_hides_signature():
    vec = SINGLE[2]
    req = pacifica.prepare(
        base_url=BASE,
        path="/orders/cancel",
        op_type="cancel_order",
        payload=vec["payload"],
        account=vec["account"],
        agent_wallet=None,
        signing_key=vector_key(),
        timestamp_ms=vec["timestamp"],
    )
    view = json.dumps(req.redacted())
    assert vec["signature_base58"] not in view and view.count("<redacted>") == 1
    assert req.redacted()["signed"]["type"] == "cancel_order"


# -- keys ---------------------------------------------------------------------


def test_load_keypair_vector():
    key, public = load_keypair(MAIN["private_key_base58"], PROFILE)
    assert public == MAIN["public_key_base58"]
    assert bytes(key) == bytes.fromhex(MAIN["seed_hex"])


def _config_error(value: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_keypair(value, PROFILE)
    err = e.value
    assert err.exit_code == ExitCode.CONFIG
    line = err.one_line()
    assert "\n" not in line
    for part in (value, value[:10], value[-10:]):
        assert part not in line
    return err


def test_not_base58():
    err = _config_error("0OIl" + "A" * 80)
    assert "base58" in err.message and "'0'" not in err.one_line()


def test_thirty_two_bytes_looks_like_seed_or_public_key():
    err = _config_error(MAIN["public_key_base58"])
    line = err.one_line()
    assert "32 bytes" in line and "seed" in line and "public key" in line and "64-byte" in line and "Phantom" in line


def test_wrong_length():
    err = _config_error(base58.b58encode(bytes(range(1, 49))).decode())
    assert "48 bytes" in err.message


def test_halves_do_not_match():
    seed_a = bytes([1]) * 32
    other_public = bytes(nacl.signing.SigningKey(bytes([2]) * 32).verify_key)
    err = _config_error(base58.b58encode(seed_a + other_public).decode())
    assert "second half" in err.message


def test_json_key_file_is_explained():
    err = _config_error("[" + ",".join(["1"] * 64) + "]")
    assert "JSON" in err.message


def _client(profile: Profile, private_key: str) -> Pacifica:
    return Pacifica(profile, Credentials({"private_key": private_key}), deadline=Deadline(5), dry_run=True)


def test_account_defaults_to_the_key():
    private, public = pacifica_keypair(3)
    assert _client(PROFILE, private).account == public


def test_agent_key_must_match_agent_wallet():
    private, _ = pacifica_keypair(3)
    _, other = pacifica_keypair(4)
    _, main = pacifica_keypair(5)
    with pytest.raises(ConfigError) as e:
        _client(Profile("ag", "pacifica", "mainnet", account=main, agent_wallet=other), private)
    assert "agent" in e.value.message and private not in e.value.one_line()


def test_agent_wallet_needs_account():
    private, public = pacifica_keypair(3)
    with pytest.raises(ConfigError) as e:
        _client(Profile("ag", "pacifica", "mainnet", agent_wallet=public), private)
    assert "account" in e.value.one_line() and "[profiles.ag]" in e.value.one_line()


def test_agent_profile_signs_with_agent_and_sends_both():
    private, agent = pacifica_keypair(3)
    _, main = pacifica_keypair(5)
    client = _client(Profile("ag", "pacifica", "mainnet", account=main, agent_wallet=agent), private)
    client.cancel_all()
    body = client.prepared[0]["body"]
    assert body["account"] == main and body["agent_wallet"] == agent and body["signature"] == "<redacted>"


def test_bad_account_in_profile():
    private, _ = pacifica_keypair(3)
    with pytest.raises(ConfigError):
        _client(Profile("p", "pacifica", "mainnet", account="not-a-key"), private)


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTC", "kBONK", "1000PEPE", "BTC-PERP"])
def test_symbols_ok(symbol):
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize("symbol", ["", "-BTC", "BTC/USD", "B TC", "X" * 40, "btc\n"])
def test_symbols_bad(symbol):
    with pytest.raises(UsageProblem):
        validate_symbol(symbol)


def test_order_ids():
    assert validate_order_ids(["1", "42069"], symbol="BTC", client_order_id=False) == ["1", "42069"]
    uuid = "11111111-2222-4333-8444-555555555555"
    assert validate_order_ids([uuid], symbol="SOL", client_order_id=True) == [uuid]
    assert validate_order_ids(["1"], symbol=None, client_order_id=False) == ["1"]  # looked up in the book
    with pytest.raises(UsageProblem, match="not a Pacifica symbol"):
        validate_order_ids(["1"], symbol="", client_order_id=False)
    for bad in (["0"], ["-1"], ["1.5"], [str(2**63)], [uuid]):
        with pytest.raises(UsageProblem):
            validate_order_ids(bad, symbol="BTC", client_order_id=False)
    with pytest.raises(UsageProblem):
        validate_order_ids(["42"], symbol="BTC", client_order_id=True)
