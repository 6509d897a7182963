"""Commands around the simulator: ``sim`` (standalone) and ``demo`` (the drill)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def sim(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one).")] = 8080,
    lifetime: Annotated[float, typer.Option("--lifetime", min=0, help="Stop after this many seconds (0: until Ctrl-C).")] = 0,
) -> int:
    """Run the venue simulator on 127.0.0.1 to rehearse aliases and cron jobs (prints its demo credentials)."""
    from cancelctl.sim.server import Simulator

    s = Simulator(port=port, lifetime=lifetime or None)
    key, secret = "account-SIMULATOR00000001", "simulator-secret-not-real"
    s.gemini.add_key(key, secret)
    for symbol in ("btcusd", "ethusd", "solusd"):
        s.gemini.add_order("primary", key, symbol=symbol)
        s.gemini.add_order("primary", "UI", symbol=symbol)
    sys.stderr.write(
        f"simulator on {s.url} (Gemini under /v1, Pacifica under /api/v1); fake credentials, for rehearsal only:\n"
        f"  cancelctl profiles add sim --venue gemini --base-url {s.url}\n"
        f"  export CANCELCTL_SIM_API_KEY={key} CANCELCTL_SIM_API_SECRET={secret}\n"
        "Ctrl-C stops it.\n"
    )
    try:
        s.serve_forever()
    except KeyboardInterrupt:
        s.stop()
    return 0


def demo() -> int:
    """A full drill against the built-in venue simulator: no credentials, no config, nothing leaves the machine."""
    from cancelctl import demo as demo_mod

    return demo_mod.main()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("sim")(sim)
