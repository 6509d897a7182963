"""Run a test's scenario in a network namespace of its own, where the network can fail as it does outside.

``unshare --user --net --mount`` (``unshare -rnm``, no privilege needed where
unprivileged user namespaces are allowed): the scenario has its own loopback
and no route anywhere else, so nothing it does can reach the internet, and
inside it the test may do what only root can do to a network: take the
loopback down (every packet on it dropped without a FIN or an RST, as a NAT
or a firewall that forgot a connection drops them), or bind-mount its own
``/etc/resolv.conf`` naming a name server on 127.0.0.1:53 that never answers
(the C resolver then waits as long as that file says).

The scenario is a Python script run by the tests' interpreter inside the
namespace, with ``tests/`` and the repository on ``sys.path``; it prints one
JSON document as its last line, which :func:`run` returns. Bounded by
``timeout`` (the namespace dies with its processes).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: Helpers every scenario gets (run before its own code).
PRELUDE = '''
import fcntl, json, os, socket, struct, subprocess, sys, threading, time

def loopback(up):
    """Bring the namespace's loopback up or down (SIOCGIFFLAGS / SIOCSIFFLAGS; IFF_UP is 1)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b""))[:18])[1]
        flags = flags | 1 if up else flags & ~1
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags, b""))
    finally:
        s.close()

def silent_resolver(seconds):
    """/etc/resolv.conf names 127.0.0.1, where a name server reads every query and never answers; the resolver
    waits ``seconds`` for it. Returns the list the queries are counted in."""
    path = os.path.join(os.environ["NETNS_TMP"], "resolv.conf")
    with open(path, "w") as f:
        f.write(f"nameserver 127.0.0.1\\noptions timeout:{int(seconds)} attempts:1\\n")
    subprocess.run(["mount", "--bind", path, "/etc/resolv.conf"], check=True)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    queries = []
    def serve():
        while True:
            queries.append(server.recvfrom(4096)[0])
    threading.Thread(target=serve, daemon=True).start()
    return queries

loopback(True)
'''


@functools.cache
def available() -> bool:
    """Whether this machine lets an unprivileged user make the namespace (and has ``unshare`` and ``mount``)."""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    try:
        return subprocess.run(["unshare", "-rnm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run(script: str, tmp: Path, timeout: float = 60) -> dict:
    """Run ``script`` (after :data:`PRELUDE`) in a namespace of its own; the JSON document it printed last.
    Skips the test where no such namespace can be made."""
    if not available():
        pytest.skip("unprivileged user and network namespaces are not available here (unshare -rnm)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NETNS_TMP"] = str(tmp)
    source = PRELUDE + textwrap.dedent(script)
    proc = subprocess.run(
        ["unshare", "-rnm", sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout, env=env
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"the scenario failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(lines[-1])
