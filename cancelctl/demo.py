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

from cancelctl.config import Profile
from cancelctl.credentials import Credentials
from cancelctl.runner import Options, run
from cancelctl.sim.server import Simulator


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
        mine = [g.add_order("primary", key, symbol=s, price=p) for s, p in (("btcusd", "61000.00"), ("ethusd", "2400.00"), ("solusd", "140.00"))]
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
    steps.append(("cancel order", 3, run([account], lambda c: c.cancel_orders([str(mine[0]), "404"]), "cancel_order", opts, creds)))
    say("gemini: cancel session (the API key's own orders; the UI orders stay)")
    steps.append(("cancel session", 0, run([account], lambda c: c.cancel_session(), "cancel_session", opts, creds)))
    say(f"gemini: cancel all (every session, UI included: {', '.join(map(str, ui))})")
    steps.append(("cancel all", 0, run([account], lambda c: c.cancel_all(), "cancel_all", opts, creds)))
    say("gemini: master key, sub-account desk-2: cancel all")
    steps.append(("master cancel all", 0, run([desk], lambda c: c.cancel_all(), "cancel_all", opts, creds)))
    with sim.lock:
        left = g.open_orders()
    steps.append(("book flat", 0, 0 if not left else 3))
    return steps


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cancelctl-demo-") as state, Simulator(lifetime=120) as sim:
        os.environ["CANCELCTL_STATE_DIR"] = state
        opts = Options(timeout=10.0)
        sys.stdout.write(f"cancelctl demo: venue simulator on {sim.url} (nothing leaves this machine)\n")
        steps = gemini_drill(sim, opts)
        say("drill summary")
        failed = [(name, want, got) for name, want, got in steps if want != got]
        for name, want, got in steps:
            sys.stdout.write(f"{'ok ' if want == got else 'BAD'}  {name}: exit {got} (expected {want})\n")
        if failed:
            sys.stderr.write(f"cancelctl: error: demo drill went wrong at: {', '.join(n for n, _, _ in failed)}\n")
            return 1
        sys.stdout.write("drill passed: every order accounted for\n")
        return 0
