"""``cancelctl guard``: the same report through the guard as cold, and every way the hand-off can fail.

Real processes only: a guard process on a Unix socket in the test's own
runtime directory, the ``cancelctl`` client, the simulator on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zygote
from hypothesis import given, settings
from hypothesis import strategies as st

from cancelctl.sim.pacifica import solana_keypair
from cancelctl.sim.server import Simulator

from conftest import GEMINI_KEY, GEMINI_SECRET, Env, audit_lines, collect, stuck_writing

PAC_PRIVATE, PAC = solana_keypair(bytes(range(1, 33)))
COLD = {"CANCELCTL_NO_GUARD": "1"}
#: The hand-off's budget in these tests (ms): 20 ms is the default, but six engineers' test suites share two
#: cores here, and a test that fell back to cold would prove nothing about the guard.
ROOMY = {"CANCELCTL_GUARD_BUDGET_MS": "3000"}


def sock_path(env: Env) -> Path:
    return env.root / "run" / "cancelctl" / "guard.sock"


class Running:
    """A ``cancelctl guard`` process of the test, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, env: Env, *args: str, extra_env: dict | None = None) -> None:
        self.env = env
        self.proc = env.popen("guard", *args, extra_env=extra_env)
        deadline = time.monotonic() + 30
        while not sock_path(env).exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.proc.communicate(timeout=10)
                raise AssertionError(f"the guard did not start ({self.proc.returncode}): {err}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if getattr(self, "result", None) is not None:
            return self.result
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"the guard did not stop within 30 s of signal {sig}: {err}") from None
        collect("guard", err)
        self.result = (self.proc.returncode, err)
        return self.result


@pytest.fixture
def two(sim, env):
    """A Gemini profile ``main`` and a Pacifica profile ``pac`` on the simulator."""
    return two_profiles(sim, env)


def two_profiles(sim, env):
    """:func:`two`'s set-up, for other test modules' fixtures."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.pacifica.add_account(PAC_PRIVATE)
    env.write_config(
        {
            "main": {"venue": "gemini", "base_url": sim.url},
            "pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"},
        }
    )
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    env.secret("pac", "private_key", PAC_PRIVATE)
    env.vars.update(ROOMY)
    return sim


@pytest.fixture
def guard(two, env):
    g = Running(env)
    yield g
    g.stop()


def seed(sim) -> list[str]:
    """Resting orders on both profiles; their IDs in a fixed order (the names the comparison uses).

    Pacifica's orders of earlier runs go first, the cancelled ones too: a run's order history would otherwise show
    the previous run's cancels inside its 0.5 s window, and two runs a moment apart name different orders
    (venues.pacifica.identify_cancelled), the way two real panics a moment apart would."""
    sim.pacifica.orders.clear()
    return [
        str(sim.gemini.add_order()),
        str(sim.gemini.add_order(session="bot")),
        str(sim.pacifica.add_order(PAC, "BTC")),
        str(sim.pacifica.add_order(PAC, "ETH", side="ask", reduce_only=True)),
    ]


def normal(text: str, ids: list[str]) -> str:
    """``text`` with each seeded ID replaced by its index and the times blanked: equal runs read equal."""
    text = text.rsplit("\x1b[J", 1)[-1]  # a terminal's status line is erased before the report: its frames are timing
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<time>", text)  # the verdict line's time
    text = re.sub(r'"elapsed_ms": [0-9.]+', '"elapsed_ms": 0', text)
    text = re.sub(r'("X-GEMINI-PAYLOAD": |"nonce": )"[^"]*"', r'\1"-"', text)  # a dry run's nonce is the time
    for n, i in enumerate(ids):
        text = re.sub(rf"\b{i}\b", f"<order {n}>", text)
    return text


SCENARIOS = {
    "panic": lambda ids: ["panic", "--json", "--reason", "drill"],
    "panic text": lambda ids: ["panic"],
    "cancel all": lambda ids: ["cancel", "all", "-p", "main", "-p", "pac", "--json"],
    "cancel all quiet": lambda ids: ["cancel", "all", "-p", "main", "-q"],
    "cancel session": lambda ids: ["cancel", "session", "-p", "main", "--json"],
    "cancel order": lambda ids: ["cancel", "order", ids[0], "123456789", "-p", "main", "--verify", "--json"],
    "cancel pacifica": lambda ids: ["cancel", "pacifica", "-p", "pac", "--symbol", "BTC", "--json"],
    "orders": lambda ids: ["orders", "--json"],
    "positions": lambda ids: ["positions", "-p", "pac", "--json"],
    "dry run": lambda ids: ["cancel", "all", "-p", "main", "--dry-run", "--json"],
    "no such profile": lambda ids: ["panic", "-p", "nope", "--json"],
    "usage error": lambda ids: ["cancel", "order", "-p", "main", "--json"],
    "venue down": lambda ids: ["cancel", "all", "-p", "main", "--timeout", "3", "--json"],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_same_report_through_the_guard_as_cold(guard, two, env, name):
    """Each scenario twice on the same book: cold, then through the guard; stdout (the JSON document or the rows),
    stderr, the exit code and the audit lines are the same, and the guard really ran the second."""
    runs = []
    for extra in (COLD, {}):
        ids = seed(two)
        if name == "venue down":
            two.fail("/v1/order/cancel/all", "status", status=503, times=-1)
        before = len(audit_lines(env))
        proc = env.run(*SCENARIOS[name](ids), extra_env=extra)
        two.faults.clear()
        audit = [
            {k: v for k, v in line.items() if k not in {"time", "elapsed_ms", "pid"}}
            for line in audit_lines(env)[before:]
        ]
        runs.append(
            (proc.returncode, normal(proc.stdout, ids), normal(proc.stderr, ids), normal(json.dumps(audit), ids))
        )
        two.gemini.orders.clear()
        for o in list(two.pacifica.open_orders()):
            two.pacifica.orders.pop(o.order_id, None)
    for cold, warm in zip(runs[0], runs[1]):
        assert cold == warm
    assert runs[0][0] in (0, 1, 2, 3, 75, 78)
    code, err = guard.stop()
    assert f"ran {SCENARIOS[name](['1'] * 4)[0]}" in err, err  # the second run was the guard's


def child_modules(env: Env, tmp_path: Path, argv: list[str], extra_env: dict) -> tuple[int, list[str]]:
    """The client's exit code and every module it had loaded when it ended (the real entry point, ``main()``)."""
    out = tmp_path / "modules.json"
    code = textwrap.dedent(
        f"""
        import atexit, sys
        def dump():
            loaded = sorted(sys.modules)
            import json
            open({str(out)!r}, "w").write(json.dumps(loaded))
        atexit.register(dump)
        sys.argv = ["cancelctl", *{argv!r}]
        from cancelctl.handoff import main
        main()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**env.environ(), **extra_env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    collect("handoff " + " ".join(argv), proc.stdout + proc.stderr)
    return proc.returncode, json.loads(out.read_text())


def test_the_hand_off_imports_nothing_the_interpreter_had_not_loaded(guard, two, env, tmp_path):
    """Through the guard, the client loads no module beyond ``cancelctl.main``'s own and the hand-off's: no typer,
    httpx or rich, and not even ``socket``, ``json`` or ``hashlib`` (their C parts only)."""
    seed(two)
    code, loaded = child_modules(env, tmp_path, ["cancel", "all", "-p", "main", "-q"], {})
    assert code == 0
    assert two.gemini.open_orders() == []
    base = subprocess.run(
        [sys.executable, "-c", "import json, sys; import cancelctl.main; print(json.dumps(sorted(sys.modules)))"],
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    baseline = set(json.loads(base.stdout)) - {"json", "json.decoder", "json.scanner", "json.encoder", "_json"}
    extra = sorted(
        set(loaded) - baseline - {"cancelctl.handoff", "_socket", "_json", "_sha256", "_sha2", "_signal", "atexit"}
    )
    assert extra == [], f"imported by the hand-off: {extra}"
    assert not {"typer", "httpx", "h11", "rich", "socket", "hashlib", "json"} & set(loaded)
    # and the check can fail: the same command cold loads them
    seed(two)
    code, loaded = child_modules(env, tmp_path, ["cancel", "all", "-p", "main", "-q"], COLD)
    assert code == 0 and "h11" in loaded and "typer" in loaded  # the HTTP client (transport.Client)


def test_a_profile_the_guard_does_not_hold_runs_cold(two, env):
    g = Running(env, "-p", "pac")
    try:
        ids = seed(two)
        proc = env.run("cancel", "all", "-p", "main", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["results"][0]["cancelled_count"] == 2
        assert ids and two.gemini.open_orders() == []
        # the config changed under the guard: its profile is handed back too
        env.write_config({"pac": {"venue": "pacifica", "base_url": two.url + "/api/v1", "account": PAC}})
        proc = env.run("cancel", "all", "-p", "pac", "--json")
        assert proc.returncode == 0, proc.stderr
        assert len(audit_lines(env)) == 2  # one audit line per run, whoever ran it
    finally:
        _, err = g.stop()
    assert err.count("handed back to the caller") == 2, err
    assert "profile main is not held" in err and "profile pac changed" in err


def test_a_different_environment_runs_cold(guard, two, env):
    seed(two)
    proc = env.run("cancel", "all", "-p", "main", "-q", extra_env={"SSL_CERT_DIR": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    _, err = guard.stop()
    assert "environment differs" in err


def test_a_proxy_variable_in_another_spelling_runs_cold(guard, two, env):
    """``Https_Proxy`` is a proxy to httpx as much as ``HTTPS_PROXY``: a caller that has one the guard has not is not
    served on the guard's direct connections (its cold run goes through the proxy, here a closed port)."""
    from conftest import closed_port

    seed(two)
    proxy = {"Http_Proxy": f"http://127.0.0.1:{closed_port()}"}
    proc = env.run("cancel", "all", "-p", "main", "-q", "--timeout", "2", extra_env=proxy)  # it retries to the end
    assert proc.returncode != 0, proc.stderr  # through the (dead) proxy: nothing reached the venue
    assert two.gemini.open_orders() != []
    _, err = guard.stop()
    assert "environment differs" in err and "ran cancel" not in err, err


def test_a_second_guard_refuses_to_start(guard, env):
    proc = env.run("guard", timeout=30)
    assert proc.returncode == 78
    assert "a guard is already running" in proc.stderr
    assert guard.proc.poll() is None  # the first one runs on
    assert sock_path(env).exists()


def test_sigterm_stops_the_guard_in_order(guard, env):
    code, err = guard.stop(signal.SIGTERM)
    assert code == 0, err
    assert "stopped after 0 command(s)" in err
    assert not sock_path(env).exists()  # a caller now goes cold at once
    proc = env.run("orders", "-p", "main", "-q")
    assert proc.returncode == 0, proc.stderr


def hung_socket(env: Env) -> socket.socket:
    """A socket at the guard's path that accepts connections (the kernel's backlog) and never answers."""
    path = sock_path(env)
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(8)
    return s


def test_a_hung_guard_costs_the_cold_path_no_more_than_the_budget(two, env, monkeypatch):
    from cancelctl import handoff

    s = hung_socket(env)
    try:
        for name, value in env.environ().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CANCELCTL_GUARD_BUDGET_MS")  # the default 20 ms
        t0 = time.monotonic()
        assert handoff.try_guard(["panic", "-q"]) is None
        spent = time.monotonic() - t0
        assert spent < 0.5, f"the hand-off waited {spent:.3f} s on a guard that never answers"  # budget 20 ms; load
        seed(two)
        proc = env.run("panic", "-q")
        assert proc.returncode == 0, proc.stderr
        assert two.gemini.open_orders() == []
    finally:
        s.close()


@pytest.mark.parametrize("how", ["closes", "silent"])
def test_a_caller_that_never_says_go_has_nothing_run(guard, two, env, monkeypatch, how):
    """The guard begins a command when its ``R`` is out, before the caller's ``G``: a caller that runs cold instead
    (it closes at once, or says nothing until the guard stops waiting) gets nothing sent and no audit line from the
    guard; the next caller is served."""
    from cancelctl import handoff

    for name, value in env.environ().items():
        monkeypatch.setenv(name, value)
    ids = seed(two)
    before = len(audit_lines(env))
    real_frame = handoff.frame

    def no_go(kind: bytes, payload: bytes = b"") -> bytes:
        if kind == handoff.GO:
            if how == "silent":
                time.sleep(1.5)  # past the guard's 1 s for the request and its "go"
            raise OSError("the caller went cold instead")
        return real_frame(kind, payload)

    monkeypatch.setattr(handoff, "frame", no_go)
    assert handoff.try_guard(["panic", "--json"]) is None  # the caller would run cold
    time.sleep(0.3)
    assert two.requests("/v1/order") == [] and two.requests("/api/v1/orders") == []
    assert len(two.gemini.open_orders()) == 2 and len(audit_lines(env)) == before
    monkeypatch.setattr(handoff, "frame", real_frame)
    proc = env.run("panic", "--json")
    assert proc.returncode == 0, proc.stderr
    assert two.gemini.open_orders() == [] and len(audit_lines(env)) == before + 1
    _, err = guard.stop()
    assert "the caller did not say go" in err and "ran panic" in err, err
    assert ids


def test_a_dead_guard_s_socket_runs_cold(two, env):
    s = hung_socket(env)
    s.close()  # the file stays, nothing listens: connection refused
    seed(two)
    proc = env.run("panic", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def test_a_stale_connection_is_reopened(env):
    """The venue closed the guard's idle keep-alive connection: the next cancel goes on a new one, at once, with
    the cold path's report (no unknown outcome)."""
    with Simulator(lifetime=120, idle_timeout=None) as sim:
        sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
        env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
        env.secret("main", "api_key", GEMINI_KEY)
        env.secret("main", "api_secret", GEMINI_SECRET)
        env.vars.update(ROOMY)
        sim.idle_timeout = 0.3  # the warm-up connection is closed by the venue 0.3 s after its last answer
        g = Running(env, "--refresh", "300")
        try:
            time.sleep(0.8)
            first = len(sim.requests("/v1/"))
            sim.gemini.add_order()
            proc = env.run("cancel", "all", "--json")
            assert proc.returncode == 0, proc.stderr
            doc = json.loads(proc.stdout)
            assert doc["results"][0]["cancelled_count"] == 1 and doc["results"][0]["unknown"] == []
            assert sim.gemini.open_orders() == []
            assert len(sim.requests("/v1/order/cancel/all")) == 1  # sent once
            assert len(sim.requests("/v1/")) > first
        finally:
            _, err = g.stop()
        assert "ran cancel all" in err


def test_ctrl_c_reaches_the_guard_s_command(guard, two, env):
    """SIGINT to the client while the venue is slow: the cold path's answer (exit 130, the JSON document)."""
    seed(two)
    two.fail("/v1/order/cancel/all", "delay", seconds=3)
    p = env.popen("cancel", "all", "-p", "main", "--json", "--timeout", "8")
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    collect("interrupted", out + err)
    assert p.returncode == 130, err
    assert json.loads(out)["exit_code"] == 130
    assert guard.proc.poll() is None  # the guard itself runs on
    code, gerr = guard.stop()
    assert "ran cancel all" in gerr and code == 0


def test_ctrl_c_reaches_a_guarded_command_that_has_sent_nothing(guard, two, env):
    """The guard listens for the caller's Ctrl-C once the command's first request is written, or
    ``guard.LISTEN_LATE_S`` after its "ready" when none is: a command held before its first request (another process
    has the key's nonce lock) is interrupted as cold would be: exit 130, nothing sent."""
    import threading

    from cancelctl.nonce import NonceSequence

    seed(two)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with NonceSequence(env.state_dir, GEMINI_KEY).turn(10):
            held.set()
            release.wait(8)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    try:
        p = env.popen("cancel", "all", "-p", "main", "--json", "--timeout", "8")
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        release.set()
        holder.join()
    collect("interrupted before sending", out + err)
    assert p.returncode == 130, err
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["results"][0]["error"]["kind"] == "interrupted", doc
    assert two.requests("/v1/order/cancel/all") == []
    assert guard.proc.poll() is None
    code, gerr = guard.stop()
    assert "ran cancel all" in gerr and code == 0, gerr


def test_a_guarded_report_stuck_on_its_reader_ends_with_the_first_signal_s_code(guard, two, env):
    """Through the guard as cold (docs/exit-codes.md, "Signals"): SIGTERM stops the command, its report (a row for
    each of 4000 IDs not sent, more than a pipe holds) waits on a reader that never reads, a Ctrl-C then arms the
    client's backstop: 2 s later it exits with the first signal's code, 143. It took the second one's: 130."""
    two.fail("/v1/order/cancel", "delay", seconds=5)
    ids = [str(10_000_000 + i) for i in range(4000)]
    p = zygote.Popen(
        [sys.executable, "-m", "cancelctl", "cancel", "order", "-p", "main", *ids, "--json", "--timeout", "8"],
        env={**env.environ(), "PYTHONUNBUFFERED": ""}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not two.requests("/v1/order/cancel") and time.monotonic() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        stuck_writing(p, deadline)  # the client's main thread in write(2)
        p.send_signal(signal.SIGINT)
        code = p.wait(timeout=10)  # nobody reads: the backstop ends it
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
    assert code == 143
    assert guard.proc.poll() is None  # the guard itself runs on


def test_a_guard_stopped_while_a_caller_s_cancel_is_in_flight(guard, two, env):
    """SIGTERM to the guard while the venue holds a caller's cancel-all: the caller gets the cold path's answer to a
    SIGTERM (exit 143, its JSON document), which names no order cancelled (no answer was read), and the guard stops
    after answering."""
    ids = seed(two)
    two.fail("/v1/order/cancel/all", "delay", seconds=3)
    p = env.popen("cancel", "all", "-p", "main", "--json", "--timeout", "8")
    deadline = time.monotonic() + 20
    while not two.requests("/v1/order/cancel/all") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert two.requests("/v1/order/cancel/all"), "the cancel never reached the venue"
    guard.proc.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    collect("guard stopped", out + err)
    assert p.returncode == 143, err
    doc = json.loads(out)
    assert doc["exit_code"] == 143 and not doc["ok"]
    (result,) = doc["results"]
    assert result["status"] == "unknown" and result["exit_code"] == 5 and result["cancelled"] == [], result
    assert not result["cancelled_count"] and result["error"]["kind"] == "terminated", result
    assert not set(ids) & set(result["cancelled"])
    code, gerr = guard.stop()
    assert "ran cancel all" in gerr and "stopped after 1 command(s)" in gerr and code == 0, gerr


def test_guard_status(guard, env):
    proc = env.run("guard", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["guard"]
    assert {p["profile"]: p["connection"] for p in doc["profiles"]} == {"main": "warm", "pac": "warm"}
    assert str(GEMINI_SECRET) not in proc.stdout and PAC_PRIVATE not in proc.stdout
    guard.stop()
    proc = env.run("guard", "status")
    assert proc.returncode == 1 and "no guard is running" in proc.stderr


def test_another_user_is_refused(monkeypatch):
    """The peer-uid check (another user cannot be made in a test): a connection whose SO_PEERCRED uid is not the
    guard's gets no "ready" and is closed."""
    from cancelctl import guard as guard_mod
    from cancelctl import handoff

    g = guard_mod.Guard(held={}, clients={})
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    monkeypatch.setattr(handoff, "peer_uid", lambda s: os.getuid() + 1)
    b.sendall(handoff.frame(handoff.REQUEST, json.dumps({"argv": ["panic"]}).encode()))
    g.greet(a)
    b.settimeout(2)
    try:
        said = b.recv(10)
    except ConnectionResetError:
        said = b""
    assert said == b""  # closed, nothing said
    assert not g.queue


def test_a_go_in_the_socket_counts_however_late_the_command_asks():
    """The command reads its caller's "go" at its gate: one that came in time counts even when the command reaches
    the gate after the 1 s it waits for one (a slow config read); with nothing there, it waits no longer."""
    from cancelctl import guard as guard_mod
    from cancelctl import handoff

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        b.sendall(handoff.frame(handoff.GO))
        assert guard_mod.Caller(a, {"argv": ["panic"]}, time.monotonic() - 2.0).wait_go()
        t0 = time.monotonic()
        assert not guard_mod.Caller(a, {"argv": ["panic"]}, time.monotonic() - 2.0).wait_go()  # nothing sent
        assert time.monotonic() - t0 < 0.5
    finally:
        a.close()
        b.close()


def test_a_caller_s_ctrl_c_before_its_command_s_handlers_waits_for_them():
    """The command begins before the caller's "go", so a Ctrl-C forwarded at once can land before the command has
    installed its handlers, where the guard's own would drop it: it is raised once they are in place."""
    import threading

    from cancelctl import guard as guard_mod
    from cancelctl import handoff, signals

    g = guard_mod.Guard(held={}, clients={})
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    caller = guard_mod.Caller(a, {"argv": ["panic"]}, time.monotonic() + 5)
    assert caller.settle(True)
    early: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: early.append(signum))
    try:
        threading.Thread(target=g.listen, args=(caller,), daemon=True).start()
        b.sendall(handoff.frame(handoff.INTERRUPT, bytes([signal.SIGINT])))
        time.sleep(0.3)
        assert early == []  # not delivered to whatever handler the main thread had before the command's
        restore = signals.install()
        try:
            with pytest.raises(signals.Interrupted):
                time.sleep(3)
        finally:
            restore()
            signals.RECEIVED.clear()
        assert caller.forwarded == [signal.SIGINT]
    finally:
        caller.done.set()
        signal.signal(signal.SIGINT, before)
        b.close()
        a.close()


def test_heartbeat_inside_the_guard_and_stopped_first(sim, env):
    """``guard --heartbeat``: the session stays alive past the (3 s) window; SIGTERM stops the heartbeat first and
    says so, and no heartbeat is sent after the guard has gone."""
    window = 3.0
    sim.gemini.heartbeat_timeout = window
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, heartbeat=True)
    order = sim.gemini.add_order("primary", GEMINI_KEY)
    env.write_config({"hb": {"venue": "gemini", "base_url": sim.url}})
    env.secret("hb", "api_key", GEMINI_KEY)
    env.secret("hb", "api_secret", GEMINI_SECRET)
    env.vars.update(ROOMY)
    g = Running(env, "--heartbeat", "--interval", "1")
    try:
        time.sleep(window + 1.5)
        with sim.lock:
            sim.gemini.expire_heartbeats()
            assert sim.gemini.orders[order].live, "the session expired although the guard sent heartbeats"
        status = json.loads(env.run("guard", "status", "--json").stdout)["guard"]
        assert status["heartbeat"] is True and status["profiles"][0]["last_heartbeat"] is not None
    finally:
        code, err = g.stop(signal.SIGTERM)
    assert code == 0, err
    assert err.index("heartbeat stopped first") < err.index("stopped after")
    beats = len(sim.requests("/v1/heartbeat"))
    assert beats >= window
    time.sleep(1.5)
    assert len(sim.requests("/v1/heartbeat")) == beats  # none outlived the guard


def test_deadman_inside_the_guard(two, env, tmp_path):
    """``guard --deadman FILE --ttl 1``: no check-in, so panic on every held profile, one audit line with the
    deadman's reason, and the notification ``deadman`` sends (after the report); the guard runs on and still takes
    callers."""
    pytest.importorskip("apprise")
    from loopback import Loopback, response

    alive = tmp_path / "bot.alive"
    seed(two)
    hook = Loopback(lambda req: response(200, b"{}"), lifetime=60)
    hook.__enter__()
    config = env.config_dir / "config.toml"
    url = hook.url.replace("http://", "json://") + "/hooktoken0123456789abc"
    config.write_text(config.read_text() + f'\n[notify]\nurls = ["{url}"]\ntimeout = 30\n')  # apprise's start, loaded
    g = Running(env, "--deadman", str(alive), "--ttl", "1")
    try:
        deadline = time.monotonic() + 20
        while (two.gemini.open_orders() or two.pacifica.open_orders(PAC)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert two.gemini.open_orders() == [] and two.pacifica.open_orders(PAC) == []
        time.sleep(0.5)
        lines = audit_lines(env)
        assert len(lines) == 1 and lines[0]["reason"].startswith("deadman: no check-in")
        assert g.proc.poll() is None
        deadline = time.monotonic() + 40
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        seed(two)
        proc = env.run("panic", "-q")
        assert proc.returncode == 0, proc.stderr
    finally:
        code, err = g.stop()
        hook.__exit__(None, None, None)
    assert "deadman: panic exit 0" in err and "ran panic" in err
    notes = [json.loads(r.body) for r in hook.requests]
    fired = [n for n in notes if n["title"].startswith("cancelctl deadman on ")]
    assert len(fired) == 1 and "exit 0" in fired[0]["title"], (notes, err)
    assert "reason: deadman: no check-in for" in fired[0]["message"] and "2 cancelled" in fired[0]["message"]


def test_panic_on_exit_and_poll(two, env):
    seed(two)
    g = Running(env, "--panic-on-exit", "--poll", "1")
    try:
        deadline = time.monotonic() + 15
        counts: dict = {}
        while time.monotonic() < deadline:
            doc = json.loads(env.run("guard", "status", "--json").stdout)["guard"]
            counts = {p["profile"]: p["open_orders"] for p in doc["profiles"]}
            if None not in counts.values():
                break
            time.sleep(0.3)
        assert counts == {"main": 2, "pac": 2}
        assert two.gemini.open_orders()  # nothing cancelled while it runs
    finally:
        code, err = g.stop(signal.SIGTERM)
    assert code == 0, err
    assert two.gemini.open_orders() == [] and two.pacifica.open_orders(PAC) == []
    assert audit_lines(env)[-1]["reason"] == "cancelctl guard stopped (--panic-on-exit)"


def test_a_guard_stopped_without_panic_on_exit_cancels_nothing(guard, two, env):
    seed(two)
    code, err = guard.stop(signal.SIGTERM)
    assert code == 0, err
    assert len(two.gemini.open_orders()) == 2 and audit_lines(env) == []


def test_a_caller_with_other_credentials_runs_cold(guard, two, env):
    """The caller set its own secret for ``main``: the guard must not cancel with the one it holds. Cold, the
    caller's (wrong) secret is refused by the venue: exit 4, and the book is untouched."""
    seed(two)
    proc = env.run("cancel", "all", "-p", "main", "--json", extra_env={"CANCELCTL_MAIN_API_SECRET": "another-secret-1"})
    assert proc.returncode == 4, proc.stderr
    assert len(two.gemini.open_orders()) == 2
    _, err = guard.stop()
    assert "secrets differ" in err and "ran cancel" not in err


def test_the_guard_s_own_credential_files_need_not_be_the_caller_s(two, env, tmp_path):
    """A guard started with ``*_FILE`` credentials (systemd LoadCredential=) serves a caller without them."""
    secret_file = tmp_path / "main.api_secret"
    secret_file.write_text(GEMINI_SECRET + "\n")
    secret_file.chmod(0o600)
    caller_secret = env.vars.pop("CANCELCTL_MAIN_API_SECRET")
    g = Running(env, extra_env={"CANCELCTL_MAIN_API_SECRET_FILE": str(secret_file)})
    try:
        seed(two)
        env.vars["CANCELCTL_MAIN_API_SECRET"] = caller_secret  # only so a cold run could work: not sent, compared
        proc = env.run("cancel", "all", "-p", "main", "-q")
        assert proc.returncode == 0, proc.stderr
    finally:
        _, err = g.stop()
    assert "secrets differ" in err  # the caller HAD set one: compared, and the guard's comes from a file
    env.vars.pop("CANCELCTL_MAIN_API_SECRET")
    g = Running(env, extra_env={"CANCELCTL_MAIN_API_SECRET_FILE": str(secret_file)})
    try:
        seed(two)
        proc = env.run("cancel", "all", "-p", "main", "-q")
        assert proc.returncode == 0, proc.stderr
        assert two.gemini.open_orders() == []
    finally:
        _, err = g.stop()
    assert "ran cancel all" in err


def on_a_terminal(env: Env, argv: list[str], extra_env: dict, columns: int = 100) -> tuple[int, bytes]:
    """Run the client with stdout and stderr on a pseudo-terminal ``columns`` wide; (exit code, what it showed)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = zygote.Popen(  # forked from the zygote: a pseudo-terminal is only an fd to pass
        [sys.executable, "-m", "cancelctl", *argv],
        env={**env.environ(), **extra_env},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=30)
    shown = b"".join(chunks)
    collect("tty " + " ".join(argv), shown.decode("utf-8", "replace"))
    return code, shown


def test_the_same_table_on_a_terminal(guard, two, env):
    """On a terminal the report is rich's table, as wide as the caller's terminal: the same bytes both ways."""
    shown, raw = [], []
    for extra in (COLD, {}):
        ids = seed(two)
        code, out = on_a_terminal(env, ["cancel", "all", "-p", "main", "-p", "pac"], extra)
        shown.append((code, normal(out.decode(), ids)))
        raw.append(re.sub(r"\x1b\[[0-9;]*m", "", out.decode().rsplit("\x1b[J", 1)[-1]))
    assert shown[0] == shown[1]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown[0][1])
    assert shown[0][0] == 0 and "order ID" in plain and "exit 0: done" in plain and "┏" in plain
    for text in raw:  # the table as wide as the terminal at most (the verdict line may wrap)
        assert max(len(line) for line in text.splitlines() if line[:1] in "┏┃┡│└") <= 100, text
    _, err = guard.stop()
    assert "ran cancel all" in err


VOCABULARY = [
    "panic", "cancel", "all", "order", "session", "pacifica", "orders", "positions", "keys", "set", "profiles",
    "remove", "doctor", "heartbeat", "deadman", "guard", "-p", "-qp", "-pq", "-q", "--json", "--reason",
    "--reason=panic", "--timeout", "--symbol", "--debug", "--dry-run", "-y", "main", "1", "-",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=7))
def test_the_guard_runs_only_the_command_it_checked(argv):
    """Whatever the order of words: when the guard's check passes, the command the real parser runs is that one,
    and it is one of the commands the guard takes (keys, profiles, doctor... never)."""
    from cancelctl import flags, handoff

    path = handoff.words(argv)
    if path is None:
        return
    assert flags.parse(argv).command == path[0] in handoff.GUARDED
    arranged = flags.arrange(argv)
    start = next(i for i, w in enumerate(arranged) if w not in flags.ROOT_OPTIONS)
    assert arranged[start : start + len(path)] == path


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_no_guard_runs_cold_with_the_same_answer(guard, two, env, how):
    seed(two)
    argv = ["cancel", "all", "-p", "main", "--json"] + (["--no-guard"] if how == "flag" else [])
    proc = env.run(*argv, extra_env=COLD if how == "variable" else {})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["cancelled_count"] == 2
    _, err = guard.stop()
    assert "ran cancel" not in err and "handed back" not in err  # the guard never saw it


def test_a_notification_of_a_guarded_panic_waits_for_the_caller_s_answer(guard, two, env):
    """The guard runs the panic, answers the caller, and only then sends the notification (docs/notifications.md)."""
    pytest.importorskip("apprise")
    from loopback import Loopback, response

    with Loopback(lambda req: response(200, b"{}"), lifetime=60) as hook:
        url = hook.url.replace("http://", "json://") + "/guarded"
        text = (env.config_dir / "config.toml").read_text()
        (env.config_dir / "config.toml").write_text(text + f'\n[notify]\nurls = ["{url}"]\n')
        seed(two)
        proc = env.run("panic", "--json")
        answered = time.monotonic()
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 30
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        (note,) = hook.requests
    assert note.time >= answered  # sent after the caller had its answer, never before
    assert json.loads(note.body)["title"].startswith("cancelctl panic on ")
    code, err = guard.stop()
    assert "ran panic" in err, err  # the guard ran it


def test_a_venue_trickling_its_headers_does_not_hold_the_key_past_the_deadline(env):
    """A venue that sends its answer's header a byte every 0.3 s: each read came back in time, so cancelctl's HTTP
    client read on past the run's deadline, holding the API key's lock, and in the guard (whose threads outlive each
    run) the next command on that key waited for it until its own deadline (75, "kept this API key busy"). The read
    ends at the deadline (unknown, 5) and the next command runs (0)."""
    from loopback import Loopback

    def trickle():
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"x" * 200
        for i in range(len(head)):
            yield head[i : i + 1]
            time.sleep(0.3)

    with Loopback(first_cancel_all(trickle), lifetime=120) as lb:
        g = guard_on_loopback(env, lb.url)
        try:
            first = env.run("cancel", "all", "--json", "--timeout", "2")
            assert first.returncode == 5, first.stderr
            second = env.run("cancel", "all", "--json", "--timeout", "4")
        finally:
            g.stop()
    assert second.returncode == 0, second.stderr


def first_cancel_all(first):
    """A loopback venue's answer function: the first cancel-all gets ``first()``'s bytes, a later one an empty
    success, anything else ``[]``."""
    from loopback import response

    seen: list[object] = []

    def answer(request):
        if request.path == "/v1/order/cancel/all":
            if not seen:
                seen.append(request)
                return first()
            return response(200, b'{"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}}')
        return response(200, b"[]")

    return answer


def guard_on_loopback(env: Env, url: str) -> Running:
    """A guard holding one Gemini profile ``main`` whose venue is the loopback server at ``url``."""
    env.write_config({"main": {"venue": "gemini", "base_url": url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    env.vars.update(ROOMY)
    return Running(env)


def test_an_answer_begun_just_before_the_deadline_does_not_hold_the_key_past_it(env):
    """The venue sends its answer's first byte 2.2 s after the request, in a 3 s run, then nothing: each read of
    cancelctl's client waited for the time left when the request began (about 2.8 s), so in the guard the run's
    thread held the API key's lock until about 5 s, and the next command on the key (--timeout 1, from about 3.4 s)
    waited for it until its own deadline (75, "kept this API key busy"). Every read now ends at the deadline."""
    from loopback import Loopback

    def late():
        time.sleep(2.2)
        yield b"H"
        time.sleep(6)

    with Loopback(first_cancel_all(late), lifetime=120) as lb:
        g = guard_on_loopback(env, lb.url)
        try:
            first = env.run("cancel", "all", "--json", "--timeout", "3")
            assert first.returncode == 5, first.stderr
            second = env.run("cancel", "all", "--json", "--timeout", "1")
        finally:
            _, err = g.stop()
    assert second.returncode == 0, second.stderr
    assert "ran cancel all" in err  # through the guard, where the threads outlive the run


def test_a_caller_during_a_slow_keep_warm_get_is_served_by_the_guard(env):
    """The venue takes 3 s to answer the guard's keep-warm GET. A caller that came meanwhile was told "busy" (the
    GET held the callers' lock) and ran cold; it is now served by the guard, on a connection of its own beside the
    GET's, at once."""
    from keepalive import KeepAliveServer, answer

    gets = []

    def script(seen):
        if seen.path == "/v1/symbols":
            gets.append(time.monotonic())
            if len(gets) > 1:  # the start-up GET is quick; every keep-warm GET after it is slow
                time.sleep(3)
            return answer(200, b'["btcusd"]')
        return answer(200, b'{"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}}')

    with KeepAliveServer(script, lifetime=60) as venue:
        env.write_config({"main": {"venue": "gemini", "base_url": venue.url}})
        env.secret("main", "api_key", GEMINI_KEY)
        env.secret("main", "api_secret", GEMINI_SECRET)
        env.vars.update(ROOMY)
        g = Running(env, "--refresh", "1")
        try:
            deadline = time.monotonic() + 20
            while len(gets) < 2 and time.monotonic() < deadline:  # a keep-warm GET is waiting for its answer
                time.sleep(0.02)
            assert len(gets) >= 2, "no keep-warm GET came"
            began = time.monotonic()
            proc = env.run("cancel", "all", "--json", "--timeout", "5")
            ended = time.monotonic()
            cancels = venue.paths("/v1/order/cancel/all")
        finally:
            _, err = g.stop()
    assert proc.returncode == 0, proc.stderr
    assert "ran cancel all" in err, err  # the guard ran it: no "busy", no cold run
    assert ended - gets[1] < 3, "the caller's cancel waited for the keep-warm GET's answer"
    assert began - gets[1] < 3 and len(cancels) == 1
    assert cancels[0].connection != venue.paths("/v1/symbols")[1].connection  # beside the GET, not behind it
