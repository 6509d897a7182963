"""What the benchmarks share (panic.py, guard.py): the accounts, profiles and environment their cancelctl processes
use, and one measured run of such a process.

Run the benchmarks as scripts (``python benchmarks/panic.py``): their folder is then first on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cancelctl.credentials import env_var
from cancelctl.sim.pacifica import solana_keypair
from cancelctl.sim.server import Simulator


def accounts(
    sim: Simulator,
    tmp: str,
    *,
    gemini: Sequence[tuple[str, str, str, str | None]],
    pacifica: Sequence[tuple[str, int]] = (),
    **extra: str,
) -> tuple[dict[str, str], list[str]]:
    """(environment, Pacifica public keys) of cancelctl processes that act on fresh accounts of ``sim``.

    Each Gemini entry (profile name, API key, secret, sub-account or None for the key's default) and each Pacifica
    entry (profile name, seed byte of its keypair) gets its account on the simulator and its profile in
    ``tmp``/config/config.toml. The environment: this process's without its ``CANCELCTL_`` variables, the config
    and state under ``tmp`` (the guard's socket under ``tmp``/run), secrets from environment variables, no OS
    keyring, no colour, then ``extra``.
    """
    secrets: dict[str, str] = {}
    config = []
    for name, key, secret, account in gemini:
        if account is None:
            sim.gemini.add_key(key, secret)
        else:
            sim.gemini.add_key(key, secret, account=account)
        secrets[env_var(name, "api_key")] = key
        secrets[env_var(name, "api_secret")] = secret
        config.append(f'[profiles.{name}]\nvenue = "gemini"\nbase_url = "{sim.url}"\n')
    publics = []
    for name, seed in pacifica:
        assert sim.pacifica is not None, "the Pacifica simulator needs base58 and pynacl"
        private, public = solana_keypair(bytes([seed]) * 32)
        assert sim.pacifica.add_account(private) == public
        publics.append(public)
        secrets[env_var(name, "private_key")] = private
        config.append(f'[profiles.{name}]\nvenue = "pacifica"\nbase_url = "{sim.url}/api/v1"\n')
    cfg = Path(tmp, "config")
    cfg.mkdir()
    (cfg / "config.toml").write_text("\n".join(config))
    base = {k: v for k, v in os.environ.items() if not k.startswith("CANCELCTL_")}
    env = dict(
        base,
        CANCELCTL_CONFIG_DIR=str(cfg),
        CANCELCTL_STATE_DIR=str(Path(tmp, "state")),
        XDG_RUNTIME_DIR=str(Path(tmp, "run")),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        NO_COLOR="1",
        **secrets,
        **extra,
    )
    return env, publics


def measure(cmd: list[str], env: dict[str, str], left: Callable[[], int]) -> tuple[float, float, os.struct_rusage]:
    """(when it was spawned, ``time.time()`` s; ms wall; its resource usage) of one process run to its end.

    SystemExit unless it exits 0 and ``left()`` (the orders still open) is 0 after it.
    """
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.time() - t0) * 1000
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed with {code}: {proc.stderr.read().decode()[:300]}")  # type: ignore[union-attr]
    if left():
        raise SystemExit(f"{' '.join(cmd[1:])} exited 0 but left {left()} orders open")
    return t0, wall, usage
