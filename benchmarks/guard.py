"""``cancelctl panic`` through a running ``cancelctl guard`` next to the same cold, in the same run.

Measures, for each run, the time from spawning ``cancelctl panic -q`` until
the simulator receives the first cancel (``POST /v1/order/cancel/all``),
and the process's wall time. One Gemini profile on the simulator (no
simulated latency: loopback), credentials from environment variables, two
orders seeded before every run; every run must exit 0 with the book empty.
Runs alternate cold (``CANCELCTL_NO_GUARD=1``) and guarded so that the
machine's load weighs on both alike. Before every run the script waits
until the key's request bucket is full again (``BURST / RATE_PER_S`` s:
cancelctl paces each Gemini key to the venue's 5 requests a second, shared
by every process, cancelctl/pacing.py): back to back, a run's verification
and position reads waited for the previous runs' tokens, which is the
venue's rate limit, not the hand-off (the wall times doubled). The guarded runs keep the default
20 ms budget: a run whose hand-off missed it ran cold, and counts as it ran
(the script says how many did).

Prints the medians over N runs of each (default 15) and the ratio guard /
cold. Target (issue 16): first cancel through the guard <= 25 ms and <= 0.3x cold.

The floor under the guarded figure is the start of the interpreter that runs
the ``cancelctl`` script (its ``#!`` line): the script also times, in the same
interleaved loop, that interpreter spawned the same way with ``-c pass``, and
prints it and what the guarded run spends above it. That floor depends on how
CPython was built than on cancelctl: on one machine, Debian's python3.11
and a pyenv build of 3.11 (no PGO, libpython shared) differ by several ms
(docs/performance.md, "The guard's floor").

Usage: python benchmarks/guard.py [N]
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import accounts, measure  # noqa: E402

from cancelctl.sim.server import Simulator  # noqa: E402
from cancelctl.venues.gemini import BURST, RATE_PER_S  # noqa: E402

REFILL_S = BURST / RATE_PER_S  # s for an emptied bucket to be full again

MARKER = "/v1/order/cancel/all"


def run(cmd: list[str], env: dict, sim: Simulator) -> tuple[float, float, float]:
    """(ms from spawn to the first cancel at the simulator, ms wall, CPU ms user+system) of one ``cancelctl``
    process. The CPU time is the client's own (through the guard, the guard's work is not in it): a figure the
    machine's load changes far less than the wall times."""
    seen = len(sim.requests(MARKER))
    time.sleep(REFILL_S)  # every run starts with the key's full burst, as a hotkey on a quiet key does
    t0, wall, usage = measure(cmd, env, lambda: len(sim.gemini.open_orders()))
    first = sim.requests(MARKER)[seen]["time"]
    return (first - t0) * 1000, wall, (usage.ru_utime + usage.ru_stime) * 1000


def interpreter(exe: str) -> str:
    """The interpreter on the ``#!`` line of the ``cancelctl`` script ``exe``."""
    with open(exe, "rb") as f:
        line = f.readline().decode(errors="replace").strip()
    if not line.startswith("#!"):
        raise SystemExit(f"{exe} has no #! line: cannot tell which interpreter runs it")
    return line[2:].split()[0]


def bare(python: str, env: dict[str, str]) -> float:
    """ms from spawning ``python -c pass`` to its exit, spawned as :func:`bench.measure` spawns cancelctl."""
    t0 = time.time()
    proc = subprocess.Popen(
        [python, "-c", "pass"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.wait4(proc.pid, 0)
    return (time.time() - t0) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    load = os.getloadavg()[0]
    exe = shutil.which("cancelctl") or sys.exit("install cancelctl first (pip install .)")
    with open(exe, "rb") as f:
        wrapper = f.read(4096)
    python = interpreter(exe)
    described = subprocess.run(
        [python, "-c", "import os, sys; print(sys.version.split()[0], os.path.realpath(sys.executable))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if b"import re" in wrapper:  # an old pip's console script (23.2 wrote it, 26.3 does not)
        print("note: this cancelctl script (an old pip wrote it) imports re before cancelctl: ~20 ms of CPU a run")
    with tempfile.TemporaryDirectory() as tmp, Simulator(lifetime=1800) as sim:
        env, _ = accounts(sim, tmp, gemini=[("g1", "account-BENCHGUARD0", "bench-guard-secret-0", None)])
        cold_env = dict(env, CANCELCTL_NO_GUARD="1")
        guard = subprocess.Popen(
            [exe, "guard"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        sock = Path(tmp, "run", "cancelctl", "guard.sock")
        until = time.monotonic() + 30
        while not sock.exists():
            if guard.poll() is not None or time.monotonic() > until:
                raise SystemExit(
                    f"the guard did not start: {guard.stderr.read().decode()[:300] if guard.stderr else ''}"
                )
            time.sleep(0.02)
        cmd = [exe, "panic", "-q"]
        rows: dict[str, list[tuple[float, float, float]]] = {"cold": [], "guard": []}
        floor: list[float] = []
        try:
            for _ in range(2):  # warm the page cache and .pyc files, not measured
                for e in (cold_env, env):
                    sim.gemini.add_order()
                    run(cmd, e, sim)
            for _ in range(n):
                for name, e in (("cold", cold_env), ("guard", env)):
                    sim.gemini.add_order()
                    sim.gemini.add_order()
                    rows[name].append(run(cmd, e, sim))
                floor.append(bare(python, env))
        finally:
            guard.send_signal(signal.SIGTERM)
            _, err = guard.communicate(timeout=30)
        served = err.decode().count("ran panic") - 2  # the two warm-up runs

    first = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
    wall = {k: statistics.median(r[1] for r in v) for k, v in rows.items()}
    cpu = {k: statistics.median(r[2] for r in v) for k, v in rows.items()}
    print(f"cancelctl panic -q, one Gemini profile on the loopback simulator, median of {n} runs each")
    print(f"load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after (1 min) on {os.cpu_count()} CPUs")
    print(f"{'':8} {'first cancel ms':>16} {'wall ms':>10} {'client CPU ms':>14}")
    for k in rows:
        print(f"{k:8} {first[k]:16.1f} {wall[k]:10.1f} {cpu[k]:14.1f}")
    print(
        f"ratio    {first['guard'] / first['cold']:16.2f} {wall['guard'] / wall['cold']:10.2f} "
        f"{cpu['guard'] / cpu['cold']:14.2f}   (guard / cold)"
    )
    start = statistics.median(floor)
    print(f"interpreter {described}: bare start (-c pass, spawn to exit) {start:.1f} ms median of {n}")
    print(f"first cancel through the guard, above that bare start: {first['guard'] - start:.1f} ms")
    print(f"the guard ran {served} of the {n} guarded runs; the rest ran cold (its answer missed the 20 ms budget)")
    print("target: first cancel through the guard <= 25 ms and <= 0.3x cold")


if __name__ == "__main__":
    main()
