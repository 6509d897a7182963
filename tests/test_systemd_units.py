"""The systemd units in docs/systemd/: valid for systemd, and their ExecStart lines work with the real cancelctl.

Each unit is parsed with configparser; its ExecStart (specifiers filled in
the way systemd would) must be accepted by the real process (``--help``
proves every option exists), and must then really run against the
simulator with the credentials passed the unit's way: LoadCredential= files
named by the unit's *_FILE environment variables. Where systemd-analyze is
installed, ``systemd-analyze verify`` must accept the units without a
single warning.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, GEMINI_SECRET, SECRETS_USED, collect

UNITS = Path(__file__).resolve().parent.parent / "docs" / "systemd"
HEARTBEAT = UNITS / "cancelctl-heartbeat@.service"
DROP_IN = UNITS / "cancelctl-heartbeat@bot.service.d" / "credentials.conf"
DEADMAN = UNITS / "cancelctl-deadman.service"
GUARD = UNITS / "cancelctl-guard.service"
BINARY = "/usr/local/bin/cancelctl"
PAC_PRIVATE, PAC = solana_keypair(bytes(range(7, 39)))


class _Multi(dict):
    """configparser section dict that keeps repeated keys (Environment=, LoadCredential=) as lines."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and key in self:
            old = self[key]  # a list while this file is read, a joined string from an earlier file
            super().__setitem__(key, [*(old if isinstance(old, list) else [old]), *value])
        else:
            super().__setitem__(key, value)


def parse(*paths: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(
        dict_type=_Multi, strict=False, interpolation=None, empty_lines_in_values=False
    )
    parser.optionxform = str  # systemd keys are case-sensitive
    for p in paths:
        with open(p) as f:
            parser.read_file(f, source=str(p))
    return parser


def values(unit: configparser.RawConfigParser, key: str) -> list[str]:
    raw = unit.get("Service", key, fallback="")
    return [line.strip() for line in raw.splitlines() if line.strip()]


def fill(text: str, specifiers: dict[str, str]) -> str:
    for k, v in specifiers.items():
        text = text.replace(k, v)
    assert "%" not in text, f"an unfilled systemd specifier in: {text}"
    return text


def unit_env(unit, specifiers: dict[str, str]) -> dict[str, str]:
    """The unit's Environment= assignments, specifiers filled in."""
    env = {}
    for line in values(unit, "Environment"):
        for assignment in shlex.split(line):
            name, _, value = assignment.partition("=")
            env[name] = fill(value, specifiers)
    return env


def credentials_dir(unit, tmp: Path, contents: dict[str, str], specifiers: dict[str, str]) -> Path:
    """Play systemd: copy each LoadCredential=ID:PATH into a private directory as ID."""
    d = tmp / "credentials"
    d.mkdir(mode=0o700)
    for line in values(unit, "LoadCredential"):
        ident, _, source = line.partition(":")
        name = Path(fill(source, specifiers)).name
        assert name in contents, f"the test has no content for credential source {source}"
        (d / ident).write_text(contents[name] + "\n")
        (d / ident).chmod(0o400)
    return d


def execstart(unit, specifiers: dict[str, str]) -> list[str]:
    (line,) = values(unit, "ExecStart")
    argv = [fill(a, specifiers) for a in shlex.split(line)]
    assert argv[0] == BINARY, argv
    return argv[1:]


def wait_for(predicate, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen, label: str) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    collect(label, out + err)
    return proc.returncode, err


def test_units_parse_and_keep_the_hardening():
    for unit in (parse(HEARTBEAT, DROP_IN), parse(DEADMAN)):
        service = unit["Service"]
        assert (
            service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict" and service["LimitCORE"] == "0"
        )
        assert service["StateDirectory"] == "cancelctl" and "CANCELCTL_STATE_DIR=%S/cancelctl" in values(
            unit, "Environment"
        )
        assert service["Restart"] in ("on-failure", "always") and "78" in service["RestartPreventExitStatus"].split()
        assert values(unit, "LoadCredential"), "secrets come in through LoadCredential="
        assert all("_FILE=%d/" in e for e in values(unit, "Environment") if "_FILE=" in e)
        assert not any(k.lower().startswith("environmentfile") for k in service), "no secrets in environment files"


@pytest.mark.parametrize("path", [HEARTBEAT, DEADMAN, GUARD], ids=lambda p: p.name)
def test_execstart_options_exist(env, path):
    args = execstart(
        parse(path), {"%i": "bot", "%t": "/run", "%S": "/var/lib", "%d": "/run/credentials/x", "%h": "/home/x"}
    )
    proc = env.run(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"Usage: cancelctl {args[0]}" in " ".join(proc.stdout.split())


def test_heartbeat_unit_runs_against_the_simulator(sim, env, tmp_path):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, heartbeat=True)
    env.write_config({"bot": {"venue": "gemini", "base_url": sim.url}})
    unit = parse(HEARTBEAT, DROP_IN)
    specifiers = {"%i": "bot", "%S": str(env.state_dir.parent)}
    creds = credentials_dir(unit, tmp_path, {"bot.api_key": GEMINI_KEY, "bot.api_secret": GEMINI_SECRET}, specifiers)
    specifiers["%d"] = str(creds)
    variables = {k: v for k, v in unit_env(unit, specifiers).items() if k.endswith("_FILE")}
    assert set(variables) == {"CANCELCTL_BOT_API_KEY_FILE", "CANCELCTL_BOT_API_SECRET_FILE"}
    SECRETS_USED.add(GEMINI_SECRET)
    proc = env.popen(*execstart(unit, specifiers), extra_env=variables)
    try:
        assert wait_for(lambda: sim.requests("/v1/heartbeat")), "no heartbeat reached the simulator"
    finally:
        code, err = stop(proc, "systemd heartbeat unit")
    assert code == 0, err
    assert "heartbeat failed" not in err


def test_deadman_unit_arms_and_fires(sim, env, tmp_path):
    assert sim.pacifica.add_account(PAC_PRIVATE) == PAC
    order = sim.pacifica.add_order(PAC, "BTC")
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    unit = parse(DEADMAN)
    run = tmp_path / "run"
    run.mkdir()
    specifiers = {"%S": str(env.state_dir.parent), "/run/": str(run) + "/"}
    creds = credentials_dir(unit, tmp_path, {"pac.private_key": PAC_PRIVATE}, specifiers)
    specifiers["%d"] = str(creds)
    variables = {k: v for k, v in unit_env(unit, specifiers).items() if k.endswith("_FILE")}
    assert set(variables) == {"CANCELCTL_PAC_PRIVATE_KEY_FILE"}
    SECRETS_USED.add(PAC_PRIVATE)
    args = execstart(unit, specifiers)
    alive = Path(args[args.index("--file") + 1])
    assert alive.parent == run / "cancelctl-deadman"  # RuntimeDirectory=cancelctl-deadman
    alive.parent.mkdir()
    ttl = args.index("--ttl") + 1
    args[ttl] = "1"  # the unit's 30 s, shortened so the test fires it
    proc = env.popen(*args, extra_env=variables)
    out, err = proc.communicate(timeout=40)
    collect("systemd deadman unit", out + err)
    assert proc.returncode == 0, err
    assert "deadman armed" in err and "panic" in err
    assert sim.pacifica.open_orders(PAC) == [] and order


def test_guard_unit_is_a_hardened_user_unit():
    unit = parse(GUARD)
    service = unit["Service"]
    assert service["NoNewPrivileges"] == "yes" and service["LimitCORE"] == "0" and service["UMask"] == "0077"
    assert "User" not in service, "a user unit: it runs as the user whose socket it serves"
    assert unit["Install"]["WantedBy"] == "default.target"
    assert service["Restart"] == "on-failure" and "78" in service["RestartPreventExitStatus"].split()
    assert not any(k.lower().startswith("environmentfile") for k in service), "no secrets in environment files"


def test_guard_unit_runs_against_the_simulator(sim, env):
    """The unit's ExecStart, as the user manager runs it: the guard starts, a caller's panic goes through it, and
    SIGTERM (systemctl --user stop) ends it with 0."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.gemini.add_order()
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    env.vars["CANCELCTL_GUARD_BUDGET_MS"] = "3000"  # a loaded test machine: the hand-off must not fall back
    proc = env.popen(*execstart(parse(GUARD), {}))
    try:
        sock = env.root / "run" / "cancelctl" / "guard.sock"
        assert wait_for(sock.exists), "the guard's socket never appeared"
        done = env.run("panic", "-q")
        assert done.returncode == 0, done.stderr
        assert sim.gemini.open_orders() == []
    finally:
        code, err = stop(proc, "systemd guard unit")
    assert code == 0, err
    assert "ran panic" in err


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    binary = Path(sys.executable).with_name("cancelctl")
    assert os.access(binary, os.X_OK), f"{binary} missing: pip install -e . first"
    for src in (HEARTBEAT, DEADMAN, GUARD):
        (tmp_path / src.name).write_text(src.read_text().replace(BINARY, str(binary)))
    (tmp_path / DROP_IN.parent.name).mkdir()
    (tmp_path / DROP_IN.parent.name / DROP_IN.name).write_text(DROP_IN.read_text())
    (tmp_path / "mybot.service").write_text("[Service]\nExecStart=/bin/true\n")
    proc = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / DEADMAN.name),
            str(tmp_path / "cancelctl-heartbeat@bot.service"),
            str(tmp_path / GUARD.name),  # a user unit; checked in system mode (--user needs a user manager)
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # "Unknown key ..., ignoring" is only a warning: refuse it too
