"""Network faults only a network of the test's own can make: a name server that never answers, connections that
go silent without a FIN or an RST. Each scenario runs the real ``cancelctl`` processes and the venue (the
simulator) inside a user and network namespace (``tests/netns.py``): its own loopback, no route anywhere else.
Skipped where unprivileged namespaces are not allowed.
"""

from __future__ import annotations

import json

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


def test_a_warm_connection_dropped_without_a_word_is_not_used_for_a_cancel(tmp_path):
    """The guard's warm connection goes silent (the loopback is taken down: every packet dropped, no FIN, no RST,
    as a NAT or a firewall that forgot the connection). Before: the next cancel went out on it, nothing came back,
    and after the whole --timeout the outcome was unknown (5). The guard's warm connections now carry TCP
    keepalive probes after 2 s of silence (transport.WARM_KEEPALIVE): the kernel finds the connection dead within
    seconds, the cancel that comes later is not written on it but on a fresh connection; while the network is
    down that one cannot be made: nothing was sent (75). Once the network is back, the guard serves the next
    cancel at once (0)."""
    doc = netns.run(
        """
from cancelctl.sim.server import Simulator
sim = Simulator(lifetime=90, idle_timeout=None).__enter__()
sim.gemini.add_key(GEMINI_KEY_, GEMINI_SECRET_)
BASE_URL = sim.url
""".replace("GEMINI_KEY_", "'account-TESTKEYabcdefghij12'").replace("GEMINI_SECRET_", "'TESTSECRET1234567890abcdefgh'")
        + SETUP
        + """
guard = subprocess.Popen([sys.executable, "-m", "cancelctl", "guard", "--refresh", "300"], env=env.environ(),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
sock = env.root / "run" / "cancelctl" / "guard.sock"
until = time.monotonic() + 30
while not sock.exists() and time.monotonic() < until and guard.poll() is None:
    time.sleep(0.05)
warm = len(sim.requests("/v1/"))
loopback(False)
time.sleep(4.6)  # the keepalive's 2 s of silence, then two probes 1 s apart, unanswered: the kernel says dead
down = run("cancel", "all", "--json", "--timeout", "2")
loopback(True)
sim.gemini.add_order()
up = run("cancel", "all", "--json", "--timeout", "3")
guard.terminate()
_, err = guard.communicate(timeout=20)
print(json.dumps({"warm": warm, "down": down, "up": up, "guard": err, "open": len(sim.gemini.open_orders())}))
""",
        tmp_path,
    )
    assert doc["warm"] >= 1, doc  # the guard had warmed its connection before the network went
    code, out, err, took = doc["down"]
    assert code == 75, (code, err)  # not written on the dead connection: nothing was sent, never "unknown"
    assert json.loads(out)["results"][0]["unknown"] == []
    code, out, err, took = doc["up"]
    assert code == 0 and doc["open"] == 0, (code, err)
    assert json.loads(out)["results"][0]["cancelled_count"] == 1
    assert doc["guard"].count("ran cancel all") == 2, doc["guard"]  # both through the guard, neither cold
