"""Cold start of ``cancelctl cancel all`` against the simulator, next to a bare python+httpx script.

Prints, for each, the median over N runs (default 9) of: time from process
start until the simulator receives the cancel request, total wall time, and
peak RSS and CPU time; then the ratios cancelctl / bare. Targets (issue 6): both ratios
<= 1.3, peak memory <= 40 MB. Credentials come from environment variables
(the keyring adds its own look-up time; see docs/performance.md).

Usage: python benchmarks/startup.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cancelctl.sim.server import Simulator  # noqa: E402


def run(
    cmd: list[str], env: dict, sim: Simulator, marker_path: str = "/v1/order/cancel/all"
) -> tuple[float, float, float, float]:
    """(ms to first request at the simulator, ms wall, peak RSS MB, CPU ms user+system) of one cold process."""
    seen = len(sim.requests(marker_path))
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.time() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed with {proc.returncode}: {proc.stderr.read().decode()[:300]}")
    first = sim.requests(marker_path)[seen]["time"]
    return (first - t0) * 1000, wall, usage.ru_maxrss / 1024, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    exe = shutil.which("cancelctl") or sys.exit("install cancelctl first (pip install .)")
    with tempfile.TemporaryDirectory() as tmp, Simulator(lifetime=600) as sim:
        sim.gemini.add_key("account-BENCHTOOL", "bench-secret-tool")
        sim.gemini.add_key("account-BENCHBARE", "bench-secret-bare")
        # The paths a real user gets: platformdirs under XDG dirs, not the CANCELCTL_*_DIR overrides.
        cfg = Path(tmp, "config", "cancelctl")
        cfg.mkdir(parents=True)
        (cfg / "config.toml").write_text(f'[profiles.bench]\nvenue = "gemini"\nbase_url = "{sim.url}"\n')
        base = {k: v for k, v in os.environ.items() if not k.startswith("CANCELCTL_")}
        # An installed tool runs from bytecode caches (pip and pipx compile at install time);
        # with PYTHONDONTWRITEBYTECODE set, an editable checkout would recompile every module on every run.
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        tool_env = dict(
            base,
            XDG_CONFIG_HOME=str(Path(tmp, "config")),
            XDG_STATE_HOME=str(Path(tmp, "state")),
            CANCELCTL_BENCH_API_KEY="account-BENCHTOOL",
            CANCELCTL_BENCH_API_SECRET="bench-secret-tool",
        )
        bare_env = dict(base, BENCH_API_KEY="account-BENCHBARE", BENCH_API_SECRET="bench-secret-bare")
        tool_cmd = [exe, "cancel", "all", "-q"]
        bare_cmd = [sys.executable, str(HERE / "bare_httpx.py"), sim.url]
        rows = {"cancelctl": [], "bare": []}
        for _ in range(2):  # warm the OS page cache and .pyc files, not measured
            run(tool_cmd, tool_env, sim), run(bare_cmd, bare_env, sim)
        for _ in range(n):
            for session in ("primary",):
                sim.gemini.add_order(session, "UI")
            rows["cancelctl"].append(run(tool_cmd, tool_env, sim))
            rows["bare"].append(run(bare_cmd, bare_env, sim))
    med = {k: [statistics.median(x[i] for x in v) for i in range(4)] for k, v in rows.items()}
    print(f"cold start, median of {n} runs (Gemini cancel all against the local simulator)")
    print(f"{'':10} {'to request ms':>14} {'wall ms':>10} {'peak RSS MB':>12} {'CPU ms':>8}")
    for k, (first, wall, rss, cpu) in med.items():
        print(f"{k:10} {first:14.1f} {wall:10.1f} {rss:12.1f} {cpu:8.1f}")
    c, b = med["cancelctl"], med["bare"]
    print(f"ratio      {c[0] / b[0]:14.2f} {c[1] / b[1]:10.2f} {'':12} {c[3] / b[3]:8.2f}")
    print("CPU ms (user+system) is less sensitive than wall time to other load on the machine.")
    print("targets: ratios <= 1.3, cancelctl peak RSS <= 40 MB")


if __name__ == "__main__":
    main()
