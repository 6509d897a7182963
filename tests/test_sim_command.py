"""``cancelctl sim``: the standalone simulator serves both venues, prints working set-up lines for each, and is
re-seeded without a restart (``cancelctl sim --seed``, ``POST /_sim/seed``).

The lines it prints are run as printed (``profiles add``, the ``export``
lines), then ``panic`` is pressed on both profiles, the simulator re-seeded,
and pressed again: a rehearsal of an alias or a cron job, end to end.
"""

from __future__ import annotations

import json
import shlex
import signal
import time

import pytest

from conftest import SECRETS_USED, closed_port


def start(env) -> tuple:
    """A ``cancelctl sim --port 0`` process; (process, the stderr lines it printed before serving)."""
    proc = env.popen("sim", "--port", "0", "--lifetime", "60")
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C"):
            break
    return proc, lines


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return err


def set_up_as_printed(env, lines: list[str]) -> int:
    """Run the printed ``profiles add`` lines; put the printed ``export`` variables in ``env``; the port."""
    port = int(lines[0].split("127.0.0.1:")[1].split()[0])
    adds = [shlex.split(line) for line in lines if line.strip().startswith("cancelctl profiles add")]
    assert [a[3] for a in adds] == ["sim", "simpac"]
    for words in adds:
        proc = env.run(*words[1:])
        assert proc.returncode == 0, proc.stderr
    for line in lines:
        words = shlex.split(line)
        if words[:1] == ["export"] and "CANCELCTL_SIM" in line:
            for pair in words[1:]:
                name, _, value = pair.partition("=")
                env.vars[name] = value
                SECRETS_USED.add(value)  # rehearsal secrets: never printed by the runs below either
    assert {"CANCELCTL_SIM_API_KEY", "CANCELCTL_SIM_API_SECRET", "CANCELCTL_SIMPAC_PRIVATE_KEY"} <= set(env.vars)
    return port


def counted(doc: dict) -> dict[str, int]:
    return {r["profile"]: r["cancelled_count"] for r in doc["results"]}


def test_sim_serves_both_venues_and_reseeds_without_a_restart(env):
    proc, lines = start(env)
    try:
        assert lines and lines[-1].startswith("Ctrl-C"), lines
        port = set_up_as_printed(env, lines)
        first = env.run("panic", "--json")
        assert first.returncode == 0, first.stderr
        doc = json.loads(first.stdout)
        assert counted(doc) == {"sim": 6, "simpac": 4}
        pac = next(r for r in doc["results"] if r["profile"] == "simpac")
        assert [p["symbol"] for p in pac["positions"]] == ["BTC"]  # reported, not closed: exit 0 all the same
        assert all(r["remaining"] == [] for r in doc["results"])

        # A proxy in the environment is never asked to reach the simulator on loopback.
        again = env.run("sim", "--seed", "--port", str(port), extra_env={"HTTP_PROXY": "http://127.0.0.1:9"})
        assert again.returncode == 0, again.stderr
        assert again.stderr.strip() == (
            f"cancelctl: re-seeded the simulator on 127.0.0.1:{port}: "
            "6 Gemini orders, 4 Pacifica orders, 1 Pacifica position"
        )
        listed = json.loads(env.run("orders", "--json").stdout)
        assert {r["profile"]: len(r["orders"]) for r in listed["results"]} == {"sim": 6, "simpac": 4}

        # Seeding twice gives the same book, not twice the orders.
        import httpx

        assert httpx.post(f"http://127.0.0.1:{port}/_sim/seed", timeout=5).json()["gemini_orders"] == 6
        second = env.run("panic", "--json")
        assert second.returncode == 0 and counted(json.loads(second.stdout)) == {"sim": 6, "simpac": 4}
    finally:
        err = stop(proc)
    assert proc.returncode == 0 and "Traceback" not in err


@pytest.mark.parametrize(("port", "code"), [(0, 2), (None, 75)])
def test_seed_without_a_simulator_is_one_line(env, port, code):
    port = closed_port() if port is None else port
    proc = env.run("sim", "--seed", "--port", str(port), timeout=20)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    if code == 75:
        assert "cannot re-seed" in proc.stderr and f"cancelctl sim --port {port}" in proc.stderr
