"""Positions: read (both venues at once), reported after panic, closed on request. The real process against the
simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, GEMINI_SECRET, parse_json

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
