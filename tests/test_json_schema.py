"""The --json document of the real process, on each kind of exit path, against docs/schema/cancelctl-1.schema.json.

If the output or the schema drifts, one of these fails: every document is
validated in full (no extra fields allowed, IDs as strings, status and
exit_code consistent, secrets redacted in --dry-run requests), and the
schema is shown to reject documents that break those rules. The examples
in docs/json.md are validated too, so the page cannot drift either.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, collect, parse_json

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schema" / "cancelctl-1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PAC_PRIVATE, PAC = solana_keypair(bytes(range(101, 133)))


def valid(proc, code: int) -> dict:
    """The process's one stdout document, checked against the schema and the exit status."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    doc = parse_json(proc)
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert doc["exit_code"] == code
    return doc


@pytest.fixture
def both(sim, env):
    """Gemini profile ``main`` (default) and Pacifica profile ``pac`` on the simulator."""
    sim.gemini.add_key(GEMINI_KEY, "json-schema-secret-0123456789")
    assert sim.pacifica.add_account(PAC_PRIVATE) == PAC
    env.write_config(
        {
            "main": {"venue": "gemini", "base_url": sim.url},
            "pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"},
        },
        default="main",
    )
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", "json-schema-secret-0123456789")
    env.secret("pac", "private_key", PAC_PRIVATE)
    return sim


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_cancelled(both, env):
    ids = [both.gemini.add_order("primary", "UI") for _ in range(2)]
    doc = valid(env.run("cancel", "all", "--json"), 0)
    assert doc["ok"] is True and sorted(doc["results"][0]["cancelled"]) == sorted(map(str, ids))


def test_rejected_and_partial(both, env):
    a = both.gemini.add_order("primary", GEMINI_KEY)
    doc = valid(env.run("cancel", "order", "999", "--json"), 1)
    assert doc["results"][0]["rejected"] == [{"id": "999", "reason": "OrderNotFound"}]
    doc = valid(env.run("cancel", "order", str(a), "998", "--json"), 3)
    assert doc["results"][0]["status"] == "partial" and doc["results"][0]["cancelled"] == [str(a)]


def test_looked_up_symbols(both, env):
    """Pacifica cancel order without --symbol: the look-up is in the document, and it validates."""
    found = both.pacifica.add_order(PAC, "ETH", stop=True)
    doc = valid(env.run("cancel", "order", str(found), "777", "-p", "pac", "--json"), 3)
    assert doc["results"][0]["looked_up"] == [
        {"id": str(found), "symbol": "ETH", "stop": True},
        {"id": "777", "symbol": None, "stop": None},
    ]
    bad = copy.deepcopy(doc)
    bad["results"][0]["looked_up"][0]["stop"] = "yes"
    assert list(VALIDATOR.iter_errors(bad))


def test_unknown_outcome(both, env):
    both.fail("/v1/", "reset", times=-1)
    doc = valid(env.run("cancel", "order", "5", "6", "--json", "--timeout", "1"), 5)
    r = doc["results"][0]
    assert r["status"] == "unknown" and set(r["unknown"]) | {x["id"] for x in r["rejected"]} == {"5", "6"}
    doc = valid(env.run("cancel", "all", "--json", "--timeout", "1"), 5)
    assert doc["results"][0]["error"]["kind"] == "unknown"


def test_panic_verified_flat_and_not_flat(both, env):
    both.gemini.add_order("primary", "UI")
    both.pacifica.add_order(PAC, "BTC")
    both.pacifica.add_order(PAC, "ETH", stop=True, reduce_only=True)
    doc = valid(env.run("panic", "--json"), 0)
    assert [r["remaining"] for r in doc["results"]] == [[], []]
    stubborn = both.gemini.add_order("primary", "UI", refuse=100)
    doc = valid(env.run("panic", "--json", "--timeout", "3"), 3)
    assert {r["profile"]: r["remaining"] for r in doc["results"]} == {"main": [str(stubborn)], "pac": []}


def test_error_only_documents(both, env):
    doc = valid(env.run("cancel", "all", "-p", "nope", "--json"), 78)
    assert doc["results"] == [] and doc["error"]["kind"] == "config"
    doc = valid(env.run("cancel", "all", "--json", "--bogus"), 2)
    assert doc["results"] == [] and doc["error"]["kind"] == "usage"
    env.vars.pop("CANCELCTL_MAIN_API_SECRET")  # no secret: 78 from the profile itself
    doc = valid(env.run("cancel", "all", "--json"), 78)
    assert doc["results"][0]["error"]["kind"] == "config" and doc["results"][0]["status"] == "failed"


def test_dry_run_documents(both, env):
    doc = valid(env.run("cancel", "all", "--dry-run", "--json", "-p", "main", "-p", "pac"), 0)
    assert doc["dry_run"] is True and [r["status"] for r in doc["results"]] == ["skipped", "skipped"]
    doc = valid(env.run("cancel", "order", "11", "12", "--symbol", "BTC", "--dry-run", "--json", "-p", "pac"), 0)
    (batch,) = doc["results"][0]["requests"]
    assert [a["data"]["signature"] for a in batch["body"]["actions"]] == ["<redacted>", "<redacted>"]
    # the dry runs read the books (read-only) and cancelled nothing
    assert {r["path"] for r in both.requests()} <= {"/v1/orders", "/api/v1/orders", "/api/v1/orders/twap"}
    assert doc["results"][0]["would_cancel"] == []  # orders 11 and 12 are not open


def test_orders_listing(both, env):
    both.gemini.add_order("primary", GEMINI_KEY)
    both.pacifica.add_order(PAC, "ETH", stop=True, reduce_only=True)
    doc = valid(env.run("orders", "--json", "-p", "main", "-p", "pac"), 0)
    gem, pac = doc["results"]
    assert gem["action"] == pac["action"] == "list_orders"
    assert len(gem["orders"]) == 1 and pac["orders"][0]["stop"] is True and pac["orders"][0]["reduce_only"] is True


def test_interrupted_run(both, env):
    """Ctrl-C while a cancel is in flight: 130, the profile's row kept, a top-level error."""
    import signal
    import subprocess
    import time

    both.gemini.add_order("primary", "UI")
    both.fail("/v1/", "delay", seconds=8)
    proc = env.popen("cancel", "all", "--json", "--timeout", "20")
    deadline = time.monotonic() + 20
    while not both.requests("/v1/order/cancel/all") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    collect("cancel all --json (interrupted)", out + err)
    doc = valid(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), 130)
    assert doc["error"]["kind"] == "interrupted" and doc["results"][0]["status"] == "unknown"


def test_schema_rejects_drifted_documents(both, env):
    """The schema has teeth: each mutation of a real document is refused."""
    both.gemini.add_order("primary", "UI")
    good = valid(env.run("cancel", "all", "--json"), 0)
    dry = valid(env.run("cancel", "all", "--dry-run", "--json", "-p", "pac"), 0)
    mutations = {
        "integer order ID": lambda d: d["results"][0]["cancelled"].__setitem__(0, int(d["results"][0]["cancelled"][0])),
        "unknown top-level field": lambda d: d.__setitem__("extra", 1),
        "unknown result field": lambda d: d["results"][0].__setitem__("note", "x"),
        "ok disagrees with exit_code": lambda d: d.__setitem__("exit_code", 3),
        "status disagrees with exit_code": lambda d: d["results"][0].__setitem__("status", "partial"),
        "wrong schema name": lambda d: d.__setitem__("schema", "cancelctl/2"),
        "missing remaining": lambda d: d["results"][0].pop("remaining"),
        "failed with no results and no error": lambda d: d.update(results=[], exit_code=1, ok=False),
    }
    for name, mutate in mutations.items():
        d = copy.deepcopy(good)
        mutate(d)
        assert not VALIDATOR.is_valid(d), f"the schema accepted: {name}"
    leaked = copy.deepcopy(dry)
    leaked["results"][0]["requests"][0]["body"]["signature"] = "5" * 88
    assert not VALIDATOR.is_valid(leaked), "the schema accepted an unredacted signature"


def test_examples_in_docs_json_md_are_valid():
    text = (ROOT / "docs" / "json.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    docs = [json.loads(b) for b in blocks if '"schema": "cancelctl/1"' in b]
    assert len(docs) >= 4
    for doc in docs:
        errors = [e.message for e in VALIDATOR.iter_errors(doc)]
        assert not errors, errors


def test_deadman_disarmed_prints_its_document(sim, env):
    """Disarmed by SIGTERM before firing: exit 0, nothing cancelled, and still one JSON document."""
    import signal
    import time

    sim.gemini.add_key(GEMINI_KEY, "TESTSECRET1234567890abcdefgh")
    order = sim.gemini.add_order("primary", "UI")
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", "TESTSECRET1234567890abcdefgh")
    alive = env.root / "bot.alive"
    proc = env.popen("deadman", "--ttl", "30", "--file", str(alive), "--json")
    deadline = time.time() + 20
    while not alive.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert alive.exists(), "deadman never armed"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    collect("deadman disarmed", out + err)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert doc["exit_code"] == 0 and doc["results"] == []
    assert sim.gemini.orders[order].live and sim.requests("/v1/order/cancel") == []


def test_positions_listing(both, env):
    both.gemini.add_position("primary", "btcgusdperp", "-0.5", average_cost="61200", mark_price="61000")
    both.pacifica.add_position(PAC, "SOL", "bid", "12.5", entry_price="140.25")
    doc = valid(env.run("positions", "--json", "-p", "main", "-p", "pac"), 0)
    gem, pac = doc["results"]
    assert gem["action"] == pac["action"] == "positions"
    assert gem["positions"][0]["side"] == "short" and pac["positions"][0]["size"] == "12.5"
    mutations = {
        "a float size": lambda d: d["results"][0]["positions"][0].__setitem__("size", 0.5),
        "a side that is not long/short": lambda d: d["results"][1]["positions"][0].__setitem__("side", "bid"),
        "no positions in a positions result": lambda d: d["results"][0].__setitem__("positions", None),
        "an unknown position field": lambda d: d["results"][1]["positions"][0].__setitem__("lev", "3"),
    }
    for name, mutate in mutations.items():
        d = copy.deepcopy(doc)
        mutate(d)
        assert not VALIDATOR.is_valid(d), f"the schema accepted: {name}"


def test_close_positions_documents(both, env):
    """panic --close-positions: closed rows, what is left, and the dry run's signed closing orders."""
    both.gemini.add_position("primary", "btcgusdperp", "0.5", mark_price="60000")
    both.gemini.book("btcgusdperp").depth = Decimal("0.1")
    both.pacifica.add_position(PAC, "SOL", "ask", "3")
    doc = valid(env.run("panic", "--close-positions", "--dry-run", "--json"), 0)
    assert [c["status"] for r in doc["results"] for c in r["closed"]] == ["dry-run", "dry-run"]
    doc = valid(env.run("panic", "--close-positions", "--json"), 3)
    gem, pac = doc["results"]
    assert (
        gem["status"] == "partial"
        and gem["positions"][0]["size"] == "0.2"
        and [c["status"] for c in gem["closed"]] == ["partial"] * 3
    )
    assert pac["status"] == "ok" and pac["positions"] == [] and pac["closed"][0]["status"] == "filled"
    doc = valid(env.run("close-positions", "-p", "main", "--json"), 0)
    assert doc["results"][0]["action"] == "close_positions" and doc["results"][0]["positions"] == []
    mutations = {
        "a float size in a closing order": lambda d: d["results"][0]["closed"][0].__setitem__("size", 0.5),
        "an unknown closing status": lambda d: d["results"][0]["closed"][0].__setitem__("status", "done"),
    }
    for name, mutate in mutations.items():
        d = copy.deepcopy(doc)
        d["results"][0]["closed"] = [
            {
                "symbol": "x",
                "side": "long",
                "size": "1",
                "order_id": "1",
                "client_order_id": None,
                "price": None,
                "status": "filled",
                "reason": None,
            }
        ]
        assert VALIDATOR.is_valid(d)
        mutate(d)
        assert not VALIDATOR.is_valid(d), f"the schema accepted: {name}"
