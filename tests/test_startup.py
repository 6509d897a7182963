"""Start-up discipline: nothing the first cancel does not need is imported before it goes out.

Timing targets are measured by ``benchmarks/startup.py`` (figures, not a
timed test). What this test pins down is the cause of a slow start: the
set of modules loaded at the moment the process first connects to the
venue, taken by a ``socket.connect`` audit hook (PEP 578) in the real
process, with nothing patched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import collect

# Imported on some other path, never before the first cancel of ``cancel all``.
NOT_BEFORE_FIRST_CANCEL = [
    "rich",  # rendering comes after the cancels
    "pydantic",  # typer >= 0.29 coerces every option through it (about 100 ms)
    "keyring",  # the credentials are in the environment here
    "filelock",  # the nonce lock is fcntl.flock
    "tenacity",  # imported only once a first attempt has failed
    "nacl",  # Pacifica signing; this is a Gemini run
    "cancelctl.render",
    "cancelctl.audit",
    "cancelctl.cli.keys",
    "cancelctl.cli.profiles",
    "cancelctl.cli.watch",
    "cancelctl.cli.tools",
    "cancelctl.cli.doctor",
    "cancelctl.cli.completion",
    "cancelctl.sim",
]

CHILD = textwrap.dedent(
    """
    import json, sys
    port, out = int(sys.argv[1]), sys.argv[2]
    def hook(event, args):
        if event == "socket.connect" and isinstance(args[1], tuple) and args[1][1:2] == (port,):
            if not getattr(hook, "done", False):
                hook.done = True
                with open(out, "w") as f:
                    json.dump(sorted(sys.modules), f)
    sys.addaudithook(hook)
    from cancelctl.main import run
    sys.exit(run(sys.argv[3:]))
    """
)


def modules_at_first_connect(env, sim, tmp_path, *argv: str, extra_env: dict | None = None) -> list[str]:
    out = tmp_path / "modules.json"
    port = int(sim.url.rsplit(":", 1)[1])
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(port), str(out), *argv],
        env={**env.environ(), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    collect(" ".join(argv), proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    assert out.exists(), "the process never connected to the simulator"
    return json.loads(out.read_text())


def test_cancel_all_imports_only_what_the_first_cancel_needs(env, sim, gemini, tmp_path):
    gemini.add_order()  # a resting order placed in the web UI
    loaded = modules_at_first_connect(env, sim, tmp_path, "cancel", "all", "-q", "--timeout", "10")
    early = [m for m in loaded if any(m == bad or m.startswith(bad + ".") for bad in NOT_BEFORE_FIRST_CANCEL)]
    assert early == [], f"imported before the first cancel went out: {early}"
    # and the hook really saw the process at work: the venue client was loaded
    assert "cancelctl.venues.gemini" in loaded and "h11" in loaded  # the HTTP client (transport.Client)
    assert gemini.open_orders() == [], "the cancel did not go through"


def test_the_check_can_fail(env, sim, gemini, tmp_path):
    """A module loaded before the first cancel is seen: rich, loaded at interpreter
    start by a sitecustomize on PYTHONPATH, shows up in the same snapshot."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import rich.console\n")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))
    loaded = modules_at_first_connect(
        env, sim, tmp_path, "cancel", "all", "-q", "--timeout", "10", extra_env={"PYTHONPATH": path}
    )
    assert "rich" in loaded
