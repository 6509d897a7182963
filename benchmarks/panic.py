"""Cold ``cancelctl panic`` over four profiles, next to the same over one profile alone.

The simulator runs in-process with a 0.2 s delay on every request, so the
time is dominated by round trips: if the profiles are handled concurrently,
four cost about as much as one. Two Gemini and two Pacifica profiles, with
credentials from environment variables; a few orders are seeded on every
profile before each run, and each run must exit 0 (cancelled and verified).

Prints the median wall time over N runs (default 7) of ``panic -q`` (all
four profiles) and ``panic -q -p g1`` (one profile), and the ratio
four / one. Target (issue 4): ratio <= 1.3.

Then the same with 100 profiles (50 Gemini, 50 Pacifica, two orders on
each), cold and through a running ``cancelctl guard`` that holds all 100:
the median wall time of ``panic -q`` (100) next to ``panic -q -p g1`` (one),
and the peak RSS of the process that sent the cancels (the cold process;
the guard). Target (issue 16): 100 / one <= 1.5, peak RSS <= 80 MB. Next to
them, figures the machine's load disturbs less: the median CPU time (user +
system) of the process that sent the cancels and of the simulator (this
process), and the round trips one after the other per profile, read from the
simulator's log (the longest chain of requests each sent after the one
before was answered, :func:`cancelctl.sim.server.round_trips`), of the
Gemini and Pacifica profiles, median (and most): with every request delayed
200 ms, that count times 200 ms is the least a run can take.

Usage: python benchmarks/panic.py [N] [four|hundred]   (both by default)
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
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import accounts, measure  # noqa: E402

from cancelctl.sim.server import Simulator, round_trips  # noqa: E402

DELAY = 0.2  # seconds the simulator sleeps before every request
#: The paths a panic's requests take (cancels, book reads, the TWAP list, the order history, positions).
VENUE_PATHS = ("/v1/order", "/v1/positions", "/api/v1/orders", "/api/v1/positions")


def run(cmd: list[str], env: dict, left: Callable[[], int], rss: list[float] | None = None) -> float:
    """ms wall of one process; exits unless it ends with 0 and ``left()`` is 0 after it. ``rss`` gets its peak
    RSS (MB)."""
    _, wall, usage = measure(cmd, env, left)
    if rss is not None:
        rss.append(usage.ru_maxrss / 1024)
    return wall


def chains(log: list[dict]) -> dict[str, list[int]]:
    """``{"gemini": [n, ...], "pacifica": [n, ...]}``: each profile's round trips one after the other in ``log``
    (simulator log entries; a Gemini profile's requests carry its key, a Pacifica profile's its account, in the
    signed body or the read's query; the guard's keep-warm GETs carry neither and are left out). Requests a
    profile sends together count as one trip only when the second arrives before the first is answered: a
    process starved of CPU for longer than the delay shows more trips than its code takes."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in log:
        if e.get("key"):
            who = ("gemini", e["key"])
        else:
            account = e.get("account") or parse_qs(e.get("query") or "").get("account", [None])[0]
            if not account:
                continue
            who = ("pacifica", account)
        groups.setdefault(who, []).append(e)
    trips: dict[str, list[int]] = {"gemini": [], "pacifica": []}
    for (venue, _), entries in groups.items():
        trips[venue].append(round_trips(entries))
    return trips


def cpu_ms(pid: int) -> float:
    """user + system CPU time (ms) a running process has used so far (Linux ``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def hundred(n: int, exe: str) -> None:
    """100 profiles (50 Gemini, 50 Pacifica), cold and through the guard; see the module's docstring."""
    with tempfile.TemporaryDirectory() as tmp, Simulator(lifetime=3600) as sim:
        assert sim.pacifica is not None, "the Pacifica simulator needs base58 and pynacl"
        # Every request of a panic is delayed, not the guard's keep-warm GETs (/v1/symbols, /api/v1/info): the
        # guard answers "busy" to a caller while one of those runs, and a delayed one made a guarded run go cold
        # now and then (the benchmark then stops: it measures the guard).
        for path in VENUE_PATHS:
            sim.fail(path, "delay", seconds=DELAY, times=-1)
        gemini = [
            (f"g{i + 1}", f"account-BENCHHUNDRED{i:03d}", f"bench-hundred-secret-{i:03d}", f"bench-h-{i}")
            for i in range(50)
        ]
        gemini_accounts = [(account, key) for _, key, _, account in gemini]
        env, pacifica_accounts = accounts(sim, tmp, gemini=gemini, pacifica=[(f"p{i + 1}", 100 + i) for i in range(50)])
        cold = dict(env, CANCELCTL_NO_GUARD="1")
        # The guarded runs measure the guard's work on 100 profiles, not the 20 ms hand-off budget (benchmarks/guard.py
        # does): a loaded machine must not send some of them down the cold path.
        env["CANCELCTL_GUARD_BUDGET_MS"] = "1000"

        def seed() -> None:
            with sim.lock:
                for account, key in gemini_accounts:
                    if not sim.gemini.open_orders(account):
                        sim.gemini.add_order(account, key, symbol="btcusd")
                        sim.gemini.add_order(account, "UI", symbol="ethusd")
                for public in pacifica_accounts:
                    if not sim.pacifica.open_orders(public):
                        sim.pacifica.add_order(public, "BTC")
                        sim.pacifica.add_order(public, "ETH")

        def open_all() -> int:
            return len(sim.gemini.open_orders()) + len(sim.pacifica.open_orders())

        def open_g1() -> int:
            return len(sim.gemini.open_orders(gemini_accounts[0][0]))

        guard = subprocess.Popen(
            [exe, "guard", "--refresh", "300"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        sock = Path(tmp, "run", "cancelctl", "guard.sock")
        until = time.monotonic() + 120
        while not sock.exists():
            if guard.poll() is not None or time.monotonic() > until:
                raise SystemExit("the guard did not start")
            time.sleep(0.05)
        cmds = {
            "cold 100": ([exe, "panic", "-q"], open_all, cold),
            "cold one": ([exe, "panic", "-q", "-p", "g1"], open_g1, cold),
            "guard 100": ([exe, "panic", "-q"], open_all, env),
            "guard one": ([exe, "panic", "-q", "-p", "g1"], open_g1, env),
        }
        rows: dict[str, list[float]] = {k: [] for k in cmds}
        rss: dict[str, list[float]] = {k: [] for k in cmds}
        cpu: dict[str, list[float]] = {k: [] for k in cmds}  # the process that sent the cancels (ms)
        sim_cpu: dict[str, list[float]] = {k: [] for k in cmds}  # the simulator: this process (ms)
        trips: dict[str, dict[str, list[int]]] = {k: {"gemini": [], "pacifica": []} for k in cmds}
        first: dict[str, list[float]] = {k: [] for k in cmds}  # spawn -> the first request at the simulator (ms)
        last: dict[str, list[float]] = {k: [] for k in cmds}  # the last answer written -> the process's end (ms)
        slowest: dict[str, list[float]] = {k: [] for k in cmds}  # the simulator's slowest answer beyond DELAY (ms)
        try:
            for cmd, left, e in cmds.values():  # warm-up, not measured
                seed()
                run(cmd, e, left)
            for _ in range(n):
                for k, (cmd, left, e) in cmds.items():
                    seed()
                    with sim.lock:
                        sim.log.clear()
                    guard_before, sim_before = cpu_ms(guard.pid), time.process_time()
                    spawned, wall, usage = measure(cmd, e, left)
                    rows[k].append(wall)
                    log = sim.requests()
                    first[k].append((min(x["time"] for x in log) - spawned) * 1000)
                    last[k].append(wall - (max(x["answered"] for x in log) - spawned) * 1000)
                    slowest[k].append(max(x["answered"] - x["time"] for x in log) * 1000 - DELAY * 1000)
                    rss[k].append(usage.ru_maxrss / 1024)
                    sim_cpu[k].append((time.process_time() - sim_before) * 1000)
                    cpu[k].append(
                        cpu_ms(guard.pid) - guard_before
                        if k.startswith("guard")
                        else (usage.ru_utime + usage.ru_stime) * 1000
                    )
                    for venue, counts in chains(log).items():
                        trips[k][venue] += counts
            status = Path(f"/proc/{guard.pid}/status").read_text()
            guard_rss = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
        finally:
            guard.send_signal(signal.SIGTERM)
            _, err = guard.communicate(timeout=60)
        served = err.decode().count("ran panic")
        if served < 2 * (n + 1):
            raise SystemExit(f"the guard ran {served} of the {2 * (n + 1)} guarded runs: {err.decode()[-500:]}")
        # every guarded run was the guard's (a roomy hand-off budget, below: this measures the guard's work)
    med = {k: statistics.median(v) for k, v in rows.items()}
    load = os.getloadavg()[0]
    print(f"\npanic over 100 profiles (50 Gemini, 50 Pacifica), median of {n} runs, {DELAY * 1000:.0f} ms per request")
    print(f"(load average {load:.2f} at the end; CPU: the process that sent the cancels, the guard for guarded runs)")
    print(
        f"{'':10} {'wall ms':>10} {'peak RSS MB':>12} {'CPU ms':>8} {'sim CPU ms':>10} {'round trips g/p':>18}"
        f" {'to 1st req':>10} {'last answer to exit':>20} {'sim slowest +ms':>16}"
    )
    for k in cmds:
        where = f"{guard_rss:12.1f}" if k.startswith("guard") else f"{max(rss[k]):12.1f}"
        chain = "/".join(
            f"{statistics.median(t):g} ({max(t)})" if t else "-" for t in (trips[k]["gemini"], trips[k]["pacifica"])
        )
        print(
            f"{k:10} {med[k]:10.1f} {where} {statistics.median(cpu[k]):8.1f} {statistics.median(sim_cpu[k]):10.1f}"
            f" {chain:>18} {statistics.median(first[k]):10.1f} {statistics.median(last[k]):20.1f}"
            f" {statistics.median(slowest[k]):16.1f}"
        )
    print(f"ratio cold  {med['cold 100'] / med['cold one']:9.2f}   (100 / one)")
    print(f"ratio guard {med['guard 100'] / med['guard one']:9.2f}   (100 / one)")
    print("target: 100 / one <= 1.5, peak RSS <= 80 MB")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    which = sys.argv[2] if len(sys.argv) > 2 else "both"
    exe = shutil.which("cancelctl") or sys.exit("install cancelctl first (pip install .)")
    if which in ("four", "both"):
        four(n, exe)
    if which in ("hundred", "both"):
        hundred(n, exe)


def four(n: int, exe: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, Simulator(lifetime=1800) as sim:
        assert sim.pacifica is not None, "the Pacifica simulator needs base58 and pynacl"
        sim.fail("/", "delay", seconds=DELAY, times=-1)
        gemini = [
            (f"g{i + 1}", f"account-BENCHPANIC{i}", f"bench-panic-secret-{i}", f"bench-acct-{i}") for i in range(2)
        ]
        gemini_accounts = [(account, key) for _, key, _, account in gemini]
        env, pacifica_accounts = accounts(
            sim,
            tmp,
            gemini=gemini,
            pacifica=[("p1", 40), ("p2", 41)],
            CANCELCTL_NO_GUARD="1",  # cold, whatever guard runs on this machine
        )

        def seed() -> None:
            # Only books left empty are refilled, so every run finds the same 18 orders
            # whichever books the previous run emptied.
            with sim.lock:
                for account, key in gemini_accounts:
                    if sim.gemini.open_orders(account):
                        continue
                    for symbol in ("btcusd", "ethusd"):
                        sim.gemini.add_order(account, key, symbol=symbol)
                        sim.gemini.add_order(account, "UI", symbol=symbol)
                for public in pacifica_accounts:
                    if sim.pacifica.open_orders(public):
                        continue
                    for symbol in ("BTC", "ETH", "SOL"):
                        sim.pacifica.add_order(public, symbol)

        def open_all() -> int:
            return len(sim.gemini.open_orders()) + len(sim.pacifica.open_orders())

        def open_g1() -> int:
            return len(sim.gemini.open_orders(gemini_accounts[0][0]))

        cmds = {"four": ([exe, "panic", "-q"], open_all), "one": ([exe, "panic", "-q", "-p", "g1"], open_g1)}
        rows: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(1):  # warm the OS page cache and .pyc files, not measured
            for cmd, left in cmds.values():
                seed()
                run(cmd, env, left)
        for _ in range(n):
            for k, (cmd, left) in cmds.items():
                seed()
                rows[k].append(run(cmd, env, left))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"panic, cold, median of {n} runs (simulator delays every request by {DELAY * 1000:.0f} ms)")
    print(f"{'':10} {'wall ms':>10}")
    print(f"{'four':10} {med['four']:10.1f}   (panic -q: g1 g2 gemini, p1 p2 pacifica)")
    print(f"{'one':10} {med['one']:10.1f}   (panic -q -p g1)")
    print(f"ratio      {med['four'] / med['one']:10.2f}")
    print("target: ratio four/one <= 1.3")


if __name__ == "__main__":
    main()
