"""``cancelctl demo``: a full drill against the built-in simulator.

No credentials, no config, nothing leaves the machine: it starts the
simulator on a free loopback port, seeds books, and runs the real path
(signing, nonces, HTTP, parsing, rendering) step by step. Exit 0 when every
step ended as a drill expects.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from cancelctl import runner
from cancelctl.config import Profile
from cancelctl.credentials import Credentials
from cancelctl.results import ProfileResult
from cancelctl.runner import Options
from cancelctl.sim.server import Simulator
from cancelctl.venues.base import VenueClient

if TYPE_CHECKING:
    from cancelctl.venues.gemini import Gemini
    from cancelctl.venues.pacifica import Pacifica


def run(
    profiles: list[Profile],
    call: Callable[[VenueClient], ProfileResult],
    name: str,
    opts: Options,
    creds: dict[str, Credentials],
    expect: int = 0,
) -> int:
    """One step of the drill: ``call`` on ``profiles`` through :func:`cancelctl.runner.run`, its report shown; its
    exit code (no audit line). ``expect``: the exit code the step should end with; its verdict line says so."""
    from cancelctl import render

    outcome = runner.run(profiles, runner.Action(call, name), opts, creds)
    render.report(outcome.report, outcome.opts, expected=expect)
    return outcome.exit_code


def say(text: str) -> None:
    sys.stdout.write(f"\n== {text}\n")
    sys.stdout.flush()


def gemini_drill(sim: Simulator, opts: Options) -> list[tuple[str, int, int]]:
    """Gemini: cancel chosen orders, cancel the session, cancel all, master key on a sub-account."""
    g = sim.gemini
    key, secret = "account-DEMO" + secrets.token_hex(8), secrets.token_hex(16)
    master, master_secret = "master-DEMO" + secrets.token_hex(8), secrets.token_hex(16)
    with sim.lock:
        g.add_key(key, secret, account="primary")
        g.add_key(master, master_secret, account="primary")
        g.accounts.add("desk-2")
        mine = [
            g.add_order("primary", key, symbol=s, price=p)
            for s, p in (("btcusd", "61000.00"), ("ethusd", "2400.00"), ("solusd", "140.00"))
        ]
        ui = [g.add_order("primary", "UI", symbol="btcusd", price="59000.00") for _ in range(2)]
        for _ in range(3):
            g.add_order("desk-2", "UI", symbol="ethusd")
    account = Profile("gemini-demo", "gemini", "production", base_url_override=sim.url)
    desk = Profile("gemini-desk-2", "gemini", "production", account="desk-2", base_url_override=sim.url)
    creds = {
        account.name: Credentials({"api_key": key, "api_secret": secret}),
        desk.name: Credentials({"api_key": master, "api_secret": master_secret}),
    }
    steps = []
    say(f"gemini: cancel order {mine[0]} and 404 (one real, one unknown)")
    steps.append(
        (
            "cancel order",
            3,
            run([account], lambda c: c.cancel_orders([str(mine[0]), "404"]), "cancel_order", opts, creds, 3),
        )
    )
    say("gemini: cancel session (the API key's own orders; the UI orders stay)")
    steps.append(
        (
            "cancel session",
            0,
            run([account], lambda c: cast("Gemini", c).cancel_session(), "cancel_session", opts, creds),
        )
    )
    say(f"gemini: cancel all (every session, UI included: {', '.join(map(str, ui))})")
    steps.append(("cancel all", 0, run([account], lambda c: c.cancel_all(), "cancel_all", opts, creds)))
    say("gemini: master key, sub-account desk-2: cancel all")
    steps.append(("master cancel all", 0, run([desk], lambda c: c.cancel_all(), "cancel_all", opts, creds)))
    with sim.lock:
        left = g.open_orders()
    steps.append(("no open orders", 0, 0 if not left else 3))
    return steps


def pacifica_drill(sim: Simulator, opts: Options) -> list[tuple[str, int, int]]:
    """Pacifica: cancel one symbol, cancel by client order ID, batch with an unknown ID, agent wallet cancel all."""
    from cancelctl.sim.pacifica import solana_keypair

    p = sim.pacifica
    assert p is not None  # Simulator() serves Pacifica unless told not to
    main_key, main_pub = solana_keypair(secrets.token_bytes(32))
    agent_key, agent_pub = solana_keypair(secrets.token_bytes(32))
    cloid = "0f1e2d3c-4b5a-4697-8877-665544332211"
    with sim.lock:
        p.add_account(main_key)
        p.bind_agent(main_pub, agent_pub)
        btc = [
            p.add_order(main_pub, "BTC", price="61000"),
            p.add_order(main_pub, "BTC", side="ask", price="65000", reduce_only=True),
        ]
        eth = [p.add_order(main_pub, "ETH", price="2400"), p.add_order(main_pub, "ETH", side="ask", price="2600")]
        p.add_order(main_pub, "ETH", side="ask", price="2200", reduce_only=True, stop=True)
        p.add_order(main_pub, "SOL", price="140", client_order_id=cloid)
        p.add_order(main_pub, "SOL", side="ask", price="160", reduce_only=True)
    wallet = Profile("pacifica-demo", "pacifica", "mainnet", base_url_override=sim.url + "/api/v1")
    agent = Profile(
        "pacifica-agent",
        "pacifica",
        "mainnet",
        account=main_pub,
        base_url_override=sim.url + "/api/v1",
        agent_wallet=agent_pub,
    )
    creds = {
        wallet.name: Credentials({"private_key": main_key}),
        agent.name: Credentials({"private_key": agent_key}),
    }
    steps = []
    say(f"pacifica: cancel pacifica --symbol BTC (orders {', '.join(map(str, btc))}, one reduce-only)")
    steps.append(
        (
            "pacifica --symbol BTC",
            0,
            run([wallet], lambda c: cast("Pacifica", c).cancel_all(symbols=["BTC"]), "cancel_all_orders", opts, creds),
        )
    )
    say(f"pacifica: cancel order --client-order-id {cloid} --symbol SOL")
    steps.append(
        (
            "pacifica client order id",
            0,
            run(
                [wallet],
                lambda c: c.cancel_orders([cloid], symbol="SOL", client_order_id=True),
                "cancel_order",
                opts,
                creds,
            ),
        )
    )
    say(f"pacifica: cancel order {eth[0]} and 404 --symbol ETH (one batch request; one real, one unknown)")
    steps.append(
        (
            "pacifica batch",
            3,
            run(
                [wallet],
                lambda c: c.cancel_orders([str(eth[0]), "404"], symbol="ETH"),
                "cancel_order",
                opts,
                creds,
                3,
            ),
        )
    )
    say("pacifica: agent wallet, cancel all (every symbol, reduce-only and stop orders included)")
    steps.append(
        ("pacifica agent cancel all", 0, run([agent], lambda c: c.cancel_all(), "cancel_all_orders", opts, creds))
    )
    with sim.lock:
        left = p.open_orders(main_pub)
    steps.append(("pacifica: no open orders", 0, 0 if not left else 3))
    return steps


def two_accounts(
    sim: Simulator, name: str, desk: str
) -> tuple[list[Profile], dict[str, Credentials], str, str]:
    """A fresh Gemini key on sub-account ``desk`` and a fresh Pacifica account on ``sim``, as profiles
    ``{name}-gemini`` and ``{name}-pacifica``: (profiles, their credentials, the Gemini key, the Pacifica public key).
    """
    from cancelctl.sim.pacifica import solana_keypair

    assert sim.pacifica is not None
    key, secret = f"account-{name.upper()}" + secrets.token_hex(8), secrets.token_hex(16)
    pac_key, pac_pub = solana_keypair(secrets.token_bytes(32))
    with sim.lock:
        sim.gemini.add_key(key, secret, account=desk)
        sim.pacifica.add_account(pac_key)
    profiles = [
        Profile(f"{name}-gemini", "gemini", "production", base_url_override=sim.url),
        Profile(f"{name}-pacifica", "pacifica", "mainnet", base_url_override=sim.url + "/api/v1"),
    ]
    creds = {
        f"{name}-gemini": Credentials({"api_key": key, "api_secret": secret}),
        f"{name}-pacifica": Credentials({"private_key": pac_key}),
    }
    return profiles, creds, key, pac_pub


def panic_drill(sim: Simulator, opts: Options) -> list[tuple[str, int, int]]:
    """panic: a Gemini and a Pacifica account at once, verified: no open orders; one order refuses the first cancel."""
    from dataclasses import replace

    from cancelctl.cli.panic import run_panic

    g, p = sim.gemini, sim.pacifica
    assert p is not None
    profiles, creds, key, pac_pub = two_accounts(sim, "panic", "panic-desk")
    with sim.lock:
        stubborn = g.add_order("panic-desk", "UI", symbol="btcusd", refuse=1)
        for symbol in ("btcusd", "ethusd"):
            g.add_order("panic-desk", key, symbol=symbol)
        for symbol in ("BTC", "ETH", "SOL"):
            p.add_order(pac_pub, symbol)
        p.add_order(pac_pub, "BTC", reduce_only=True)
        twap = p.add_twap(pac_pub, "ETH", amount="3")  # a running TWAP order: cancel_all_orders leaves it running
    say(
        f"panic: both accounts at once, then verify; gemini order {stubborn} refuses the first cancel, "
        f"pacifica TWAP order {twap} is stopped by ID"
    )
    outcome = run_panic(profiles, replace(opts, verify=True), creds)
    from cancelctl import render

    render.report(outcome.report, outcome.opts)
    code = outcome.exit_code
    with sim.lock:
        left = g.open_orders("panic-desk") + p.open_orders(pac_pub) + p.open_twaps(pac_pub)
    return [("panic verified: no open orders", 0, code), ("panic: no open orders left", 0, 0 if not left else 3)]


def positions_drill(sim: Simulator, opts: Options) -> list[tuple[str, int, int]]:
    """panic leaves positions open (and says so); panic --close-positions closes them and exits 0 only when flat."""
    from dataclasses import replace
    from decimal import Decimal

    from cancelctl.cli.panic import run_panic
    from cancelctl.sim.pacifica import SimMarket

    g, p = sim.gemini, sim.pacifica
    assert p is not None
    profiles, creds, key, pac_pub = two_accounts(sim, "perps", "perps-desk")
    with sim.lock:
        g.add_order("perps-desk", key, symbol="btcgusdperp", price="58000.00")
        g.add_position("perps-desk", "btcgusdperp", "0.5", average_cost="61200", mark_price="61000")
        g.book("btcgusdperp").bid, g.book("btcgusdperp").ask = Decimal("60990"), Decimal("61010")
        p.add_order(pac_pub, "SOL", side="ask", price="160", reduce_only=True)
        p.add_position(pac_pub, "SOL", "ask", "12.5", entry_price="140.25")
        p.markets["SOL"] = SimMarket(mark=Decimal("140"), bid=Decimal("139.95"), ask=Decimal("140.05"))
    say("panic on perpetuals: no open orders afterwards, but the positions are still there (reported, not touched)")
    from cancelctl import render

    outcome = run_panic(profiles, replace(opts, verify=True), creds)
    render.report(outcome.report, outcome.opts)
    first = outcome.exit_code
    with sim.lock:
        still = len(g.open_positions("perps-desk")) + len(p.open_positions(pac_pub))
    say(
        "panic --close-positions: cancel, verify, then close each position "
        "(Gemini IOC limit, Pacifica reduce-only market)"
    )
    outcome = run_panic(profiles, replace(opts, verify=True), creds, close=Decimal("0.5"))
    render.report(outcome.report, outcome.opts)
    second = outcome.exit_code
    with sim.lock:
        left = len(g.open_positions("perps-desk")) + len(p.open_positions(pac_pub))
    return [
        ("panic leaves positions", 0, first),
        ("two positions still open", 0, 0 if still == 2 else 1),
        ("panic --close-positions", 0, second),
        ("flat: no position left", 0, 0 if not left else 3),
    ]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cancelctl-demo-") as state, Simulator(lifetime=120) as sim:
        os.environ["CANCELCTL_STATE_DIR"] = state
        opts = Options(timeout=10.0)
        sys.stdout.write(f"cancelctl demo: venue simulator on {sim.url} (nothing leaves this machine)\n")
        steps = gemini_drill(sim, opts)
        steps += pacifica_drill(sim, opts)
        steps += panic_drill(sim, opts)
        steps += positions_drill(sim, opts)
        say("drill summary")
        failed = [(name, want, got) for name, want, got in steps if want != got]
        for name, want, got in steps:
            sys.stdout.write(f"{'ok ' if want == got else 'BAD'}  {name}: exit {got} (expected {want})\n")
        if failed:
            sys.stderr.write(f"cancelctl: error: demo drill went wrong at: {', '.join(n for n, _, _ in failed)}\n")
            return 1
        sys.stdout.write("drill passed: every order and position accounted for\n")
        return 0
