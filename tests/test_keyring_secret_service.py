"""Credentials through a real Secret Service (gnome-keyring under dbus-run-session), not a mock.

.ci/run installs gnome-keyring and dbus with apt; on a developer machine
without them the test is skipped, in CI (CI=true) it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GEMINI_KEY, GEMINI_SECRET, collect

HAVE = shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")


@pytest.fixture
def secret_service():
    if not HAVE:
        if os.environ.get("CI"):
            pytest.fail("CI must have gnome-keyring and dbus (installed by .ci/run)")
        pytest.skip("gnome-keyring-daemon / dbus-run-session not installed")


def run_session(env, steps: list[dict]) -> list[dict]:
    environ = env.environ()
    environ.pop("PYTHON_KEYRING_BACKEND")  # the real backend: Secret Service
    environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    proc = subprocess.run(
        ["dbus-run-session", "--", sys.executable, str(Path(__file__).with_name("keyring_session.py"))],
        input=json.dumps(steps), capture_output=True, text=True, env=environ, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for r in results:
        collect(" ".join(r["args"]), r["stdout"] + r["stderr"])
    return results


def test_keys_set_list_use_delete_through_secret_service(secret_service, sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    order = sim.gemini.add_order("primary", "UI")
    steps = [
        {"args": ["profiles", "add", "main", "--venue", "gemini", "--base-url", sim.url]},
        {"args": ["keys", "list"]},
        {"args": ["keys", "set", "main"], "stdin": f"{GEMINI_KEY}\n{GEMINI_SECRET}\n"},
        {"args": ["keys", "list"]},
        {"args": ["cancel", "all", "--json"]},
        {"args": ["keys", "delete", "main"]},
        {"args": ["cancel", "all"]},
    ]
    unlock, add, list_before, keys_set, list_after, cancel, delete, after_delete = run_session(env, steps)
    assert unlock["rc"] == 0, unlock["stderr"]
    assert add["rc"] == 0, add["stderr"]
    assert "api_key=missing" in list_before["stdout"], list_before
    assert keys_set["rc"] == 0, keys_set["stderr"]
    assert "api_key=keyring" in list_after["stdout"] and "api_secret=keyring" in list_after["stdout"]
    assert cancel["rc"] == 0, cancel["stderr"]
    assert json.loads(cancel["stdout"])["results"][0]["cancelled"] == [str(order)]
    assert sim.gemini.open_orders() == []
    assert delete["rc"] == 0, delete["stderr"]
    assert after_delete["rc"] == 78 and "cancelctl keys set main" in after_delete["stderr"]
    for r in (list_before, keys_set, list_after, cancel, delete, after_delete):
        assert GEMINI_SECRET not in r["stdout"] + r["stderr"]
