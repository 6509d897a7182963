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
    seed: Annotated[
        bool,
        typer.Option(
            "--seed",
            help="Re-seed the simulator already running on --port (its rehearsal orders back on both venues), "
            "then exit.",
        ),
    ] = False,
) -> int:
    """Run the venue simulator (Gemini and Pacifica) on 127.0.0.1 to rehearse aliases and cron jobs; it prints a
    fake account of each venue and how to set up a profile for it."""
    from cancelctl import signals
    from cancelctl.errors import CancelctlError, ExitCode
    from cancelctl.sim.server import REHEARSAL, Simulator, rehearsal_pacifica

    if seed:
        return _reseed(port)
    try:
        s = Simulator(port=port, lifetime=lifetime or None)
    except OSError as e:  # EADDRINUSE, EACCES: one line, never "internal error"
        raise CancelctlError(
            f"cannot listen on 127.0.0.1:{port}: {e.strerror or type(e).__name__}",
            hint="choose another port with --port, or --port 0 for a free one",
            exit_code=ExitCode.UNAVAILABLE,
            kind="unavailable",
        ) from None
    counts = s.seed()
    private, account = rehearsal_pacifica()
    key, secret = REHEARSAL["gemini_key"], REHEARSAL["gemini_secret"]
    again = f"cancelctl sim --seed --port {s.port}"
    sys.stderr.write(
        f"simulator on {s.url} (Gemini under /v1, Pacifica under /api/v1); fake credentials, for rehearsal only.\n"
        "In another shell, apart from your real profiles (panic without -p takes every profile):\n"
        "  export CANCELCTL_CONFIG_DIR=/tmp/cancelctl-sim/config CANCELCTL_STATE_DIR=/tmp/cancelctl-sim/state\n"
        "Gemini (profile sim):\n"
        f"  cancelctl profiles add sim --venue gemini --base-url {s.url}\n"
        f"  export CANCELCTL_SIM_API_KEY={key} CANCELCTL_SIM_API_SECRET={secret}\n"
        f"Pacifica (profile simpac, account {account}):\n"
        f"  cancelctl profiles add simpac --venue pacifica --base-url {s.url}/api/v1\n"
        f"  export CANCELCTL_SIMPAC_PRIVATE_KEY={private}\n"
        f"Seeded: {_seeded(counts)}. Then: cancelctl panic; echo \"exit $?\"\n"
        f"Re-seed without a restart: {again}  (or: curl -X POST {s.url}/_sim/seed)\n"
        "Ctrl-C (or SIGTERM) stops it.\n"
    )
    sys.stderr.flush()
    try:
        s.serve_forever()
    except (KeyboardInterrupt, signals.Interrupted):  # Ctrl-C, SIGTERM, SIGHUP: stop cleanly
        s.stop()
    return 0


def _seeded(counts: dict[str, int]) -> str:
    return (
        f"{counts['gemini_orders']} Gemini orders, {counts['pacifica_orders']} Pacifica orders, "
        f"{counts['pacifica_positions']} Pacifica position"
    )


def _reseed(port: int) -> int:
    """``cancelctl sim --seed``: ``POST /_sim/seed`` to the simulator on 127.0.0.1:``port``; one line, exit 0."""
    import json

    import httpx

    from cancelctl.errors import CancelctlError, ExitCode, UsageProblem

    if port == 0:
        raise UsageProblem("--seed needs the running simulator's port", hint="e.g. cancelctl sim --seed --port 8080")
    url = f"http://127.0.0.1:{port}/_sim/seed"
    try:
        answer = httpx.post(url, timeout=5.0, trust_env=False)  # loopback: never through $HTTP_PROXY
        counts = json.loads(answer.content) if answer.status_code == 200 else None
        if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in _COUNTS):
            raise ValueError("not the simulator's answer")
    except (httpx.HTTPError, ValueError) as e:
        what = "nothing answers" if isinstance(e, httpx.ConnectError) else f"no simulator's answer ({type(e).__name__})"
        raise CancelctlError(
            f"cannot re-seed the simulator on 127.0.0.1:{port}: {what}",
            hint=f"start one with: cancelctl sim --port {port}",
            exit_code=ExitCode.UNAVAILABLE,
            kind="unavailable",
        ) from None
    sys.stderr.write(f"cancelctl: re-seeded the simulator on 127.0.0.1:{port}: {_seeded(counts)}\n")
    return 0


_COUNTS = ("gemini_orders", "pacifica_orders", "pacifica_positions")


def demo() -> int:
    """A full drill against the built-in venue simulator: no credentials, no config, nothing leaves the machine."""
    from cancelctl import demo as demo_mod

    return demo_mod.main()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("sim")(sim)
