"""Run under ``dbus-run-session``: start a real gnome-keyring Secret Service, then cancelctl steps.

Reads the steps (argv lists, optional stdin text) as JSON on stdin; prints
one JSON list of {"args", "rc", "stdout", "stderr"}. Used by
tests/test_keyring_secret_service.py; not a test itself.
"""

import json
import subprocess
import sys

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
    p = subprocess.run(
        [sys.executable, "-m", "cancelctl", *step["args"]],
        input=step.get("stdin", ""),
        capture_output=True,
        text=True,
        timeout=30,
    )
    results.append({"args": step["args"], "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr})
print(json.dumps(results))
