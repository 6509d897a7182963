"""Network faults only a network of the test's own can make: a name server that never answers, connections that
go silent without a FIN or an RST. Each scenario runs the real ``cancelctl`` processes and the venue (the
simulator) inside a user and network namespace (``tests/netns.py``): its own loopback, no route anywhere else.
Skipped where unprivileged namespaces are not allowed.
"""

from __future__ import annotations

import netns

#: The scenario's set-up: an isolated cancelctl environment under NETNS_TMP, a Gemini profile ``main`` on
#: ``BASE_URL`` (set by the scenario first), and ``run(*argv, timeout=...)`` -> (exit code, stdout, stderr, elapsed s).
SETUP = """
from pathlib import Path
from conftest import Env, GEMINI_KEY, GEMINI_SECRET
env = Env(Path(os.environ["NETNS_TMP"]) / "env")
(env.root / "home").mkdir(parents=True)
env.write_config({"main": {"venue": "gemini", "base_url": BASE_URL}})
env.secret("main", "api_key", GEMINI_KEY)
env.secret("main", "api_secret", GEMINI_SECRET)
env.vars["CANCELCTL_GUARD_BUDGET_MS"] = "3000"

def run(*argv, timeout=40, extra=None):
    e = env.environ()
    e.update(extra or {})
    began = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "cancelctl", *argv], env=e, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - began
"""


def test_a_name_server_that_never_answers_cannot_hold_a_cancel_past_its_timeout(tmp_path):
    """The C resolver waits 30 s for a name server that never answers; ``getaddrinfo`` took no timeout, so the
    profile's thread waited in it past ``--timeout``. The lookup is now bounded by the deadline: nothing was sent
    (75, "cannot reach venue.example: the name lookup ..."), within --timeout + 0.5 s."""
    doc = netns.run(
        'BASE_URL = "https://venue.example"\nqueries = silent_resolver(30)\n'
        + SETUP
        + """
code, out, err, took = run("cancel", "all", "--json", "--timeout", "2", extra={"CANCELCTL_NO_GUARD": "1"})
print(json.dumps({"code": code, "stderr": err, "took": took, "queries": len(queries)}))
""",
        tmp_path,
    )
    assert doc["queries"] >= 1, doc  # the resolver asked the silent name server
    assert doc["code"] == 75, doc
    assert "cannot reach venue.example: the name lookup of venue.example did not answer" in doc["stderr"], doc
    # Bounded by the deadline, not by the resolver's 30 s (a fresh interpreter's start-up under the machine's load
    # comes on top: over YOUNG_PROCESS_S it no longer counts against --timeout)
    assert doc["took"] < 12, doc
