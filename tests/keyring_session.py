"""Run under ``dbus-run-session``: start a real gnome-keyring Secret Service, then cancelctl steps.

Reads the steps (argv lists, optional stdin text) as JSON on stdin; prints
one JSON list of {"args", "rc", "stdout", "stderr"}. Used by
tests/test_keyring_secret_service.py; not a test itself.

The cancelctl processes are forked from a zygote of this session's own (tests/zygote.py), started inside the
session with its environment (``DBUS_SESSION_BUS_ADDRESS``, no ``PYTHON_KEYRING_BACKEND``), as the rest of the
suite's are: seven fresh interpreters cost about 0.4 s of CPU each, the zygote about 0.7 s once and a forked
process about 0.05 s. keyring picks its backend and talks to the Secret Service when the process runs, not at import.
"""

import json
import subprocess
import sys

import zygote

steps = json.load(sys.stdin)
unlock = subprocess.run(
    ["gnome-keyring-daemon", "--unlock", "--components=secrets"],
    input=b"cancelctl-test-keyring-password", capture_output=True, timeout=20,
)
results = [
    {
        "args": ["gnome-keyring-daemon"],
        "rc": unlock.returncode,
        "stdout": "",
        "stderr": unlock.stderr.decode(errors="replace"),
    }
]
for step in steps:
    p = zygote.run(
        [sys.executable, "-m", "cancelctl", *step["args"]],
        input=step.get("stdin", ""),
        capture_output=True,
        text=True,
        timeout=30,
    )
    results.append({"args": step["args"], "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr})
print(json.dumps(results))
