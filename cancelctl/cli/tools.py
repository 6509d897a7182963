"""Commands around the simulator: ``sim`` (standalone) and ``demo`` (the drill)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def sim(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one).")
    ] = 8080,
    lifetime: Annotated[
        float, typer.Option("--lifetime", min=0, help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0,
) -> int:
    """Run the venue simulator on 127.0.0.1 to rehearse aliases and cron jobs (prints its demo credentials)."""
    from cancelctl import signals
    from cancelctl.errors import CancelctlError, ExitCode
    from cancelctl.sim.server import Simulator

    try:
        s = Simulator(port=port, lifetime=lifetime or None)
    except OSError as e:  # EADDRINUSE, EACCES: one line, never "internal error"
        raise CancelctlError(
            f"cannot listen on 127.0.0.1:{port}: {e.strerror or type(e).__name__}",
            hint="choose another port with --port, or --port 0 for a free one",
            exit_code=ExitCode.UNAVAILABLE,
            kind="unavailable",
        ) from None
    key, secret = "account-SIMULATOR00000001", "simulator-secret-not-real"
    s.gemini.add_key(key, secret)
    for symbol in ("btcusd", "ethusd", "solusd"):
        s.gemini.add_order("primary", key, symbol=symbol)
        s.gemini.add_order("primary", "UI", symbol=symbol)
    sys.stderr.write(
        f"simulator on {s.url} (Gemini under /v1, Pacifica under /api/v1); fake credentials, for rehearsal only:\n"
        f"  cancelctl profiles add sim --venue gemini --base-url {s.url}\n"
        f"  export CANCELCTL_SIM_API_KEY={key} CANCELCTL_SIM_API_SECRET={secret}\n"
        "Ctrl-C (or SIGTERM) stops it.\n"
    )
    try:
        s.serve_forever()
    except (KeyboardInterrupt, signals.Interrupted):  # Ctrl-C, SIGTERM, SIGHUP: stop cleanly
        s.stop()
    return 0


def demo() -> int:
    """A full drill against the built-in venue simulator: no credentials, no config, nothing leaves the machine."""
    from cancelctl import demo as demo_mod

    return demo_mod.main()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("sim")(sim)
