"""The hand-off against a broken or hostile guard socket, and a guard fed malformed requests.

Real processes: the ``cancelctl`` client and guard against the simulator; the "guard" that misbehaves is a
socket served by a thread of this test (the same user, so the peer check passes), doing what the test says.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from test_guard import ROOMY, Running, sock_path

from cancelctl import handoff

from conftest import GEMINI_KEY, GEMINI_SECRET, Env


@pytest.fixture
def main(sim, gemini):
    """A Gemini profile ``main`` on the simulator (conftest's ``gemini``); the simulator."""
    return sim


def _read(conn: socket.socket) -> tuple[bytes, bytes]:
    conn.settimeout(5)
    return handoff.read_frame(conn)


class Fake:
    """A socket at the guard's path; each connection is handed to ``behave`` in its own thread."""

    def __init__(self, env: Env, behave: Callable[[socket.socket], None]) -> None:
        path = sock_path(env)
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.stop = threading.Event()
        self.connections = 0
        self.behave = behave
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            self.behave(conn)
        except (OSError, EOFError):
            pass
        finally:
            conn.close()

    def trickle(self, conn: socket.socket, head: bytes, every: float) -> None:
        """Send ``head`` (a frame's header announcing more than will come), then one byte every ``every`` s."""
        conn.sendall(head)
        while not self.stop.wait(every):
            conn.sendall(b"x")

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture
def fake(env) -> Iterator[Callable[[Callable[[socket.socket], None]], Fake]]:
    made: list[Fake] = []

    def make(behave: Callable[[socket.socket], None]) -> Fake:
        made.append(Fake(env, behave))
        return made[-1]

    yield make
    for f in made:
        f.close()


def ready_then(conn: socket.socket) -> None:
    """Read the request, say ready, read the go."""
    assert _read(conn)[0] == handoff.REQUEST
    conn.sendall(handoff.frame(handoff.READY))
    assert _read(conn)[0] == handoff.GO


def test_a_guard_that_trickles_its_ready_frame_costs_no_more_than_the_budget(main, env, fake):
    """A ready frame announced long and sent a byte at a time, each byte well within the budget: the hand-off's
    budget bounds the whole frame, not each read; the command runs cold."""
    f = fake(lambda conn: (_read(conn), f.trickle(conn, handoff.READY + (10_000).to_bytes(4, "big"), 0.02)))
    main.gemini.add_order()
    t0 = time.monotonic()
    proc = env.run("panic", "--json", extra_env={"CANCELCTL_GUARD_BUDGET_MS": "300"}, timeout=30)
    spent = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert main.gemini.open_orders() == []
    assert f.connections == 1
    assert spent < 15, f"the client spent {spent:.1f} s on a trickling guard"  # cold run ~1 s; headroom for load


def test_a_guard_that_trickles_its_answer_is_left_after_the_deadline(main, env, fake):
    """After "go", a report frame that never completes, a byte every 0.2 s: the client stops waiting at
    ``--timeout`` plus the margin, says so, and runs cold with a --timeout of its own (counted from the process
    start, the guard's wait would leave it none: exit 75, no cancel sent)."""
    f = fake(lambda conn: (ready_then(conn), f.trickle(conn, handoff.STDOUT + (10_000).to_bytes(4, "big"), 0.2)))
    main.gemini.add_order()
    t0 = time.monotonic()
    proc = env.run("panic", "--json", "--timeout", "2", extra_env=ROOMY, timeout=40)
    spent = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert "the guard did not answer in time; running without it" in proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert main.gemini.open_orders() == []
    assert spent < 25, f"the client spent {spent:.1f} s on a trickling guard"  # 2 s + 5 s margin + cold; load


@pytest.mark.parametrize("code", [b"zz", b"\xff", b"99999999999999999999", b"-1", b""])
def test_an_exit_frame_without_an_exit_code_is_no_traceback(main, env, fake, code):
    """An exit frame whose payload is not an exit code (0-255): no traceback, no invented code; before any report
    the command runs cold."""
    fake(lambda conn: (ready_then(conn), conn.sendall(handoff.frame(handoff.EXIT, code))))
    main.gemini.add_order()
    proc = env.run("panic", "--json", extra_env=ROOMY, timeout=30)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "the guard answered no exit code; running without it" in proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert main.gemini.open_orders() == []


def test_a_report_then_no_exit_code_is_an_unknown_outcome(main, env, fake):
    fake(
        lambda conn: (
            ready_then(conn),
            conn.sendall(handoff.frame(handoff.STDERR, b"cancelctl: something\n") + handoff.frame(handoff.EXIT, b"ok")),
        )
    )
    proc = env.run("panic", "-q", extra_env=ROOMY, timeout=30)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 5, proc.stderr
    assert "outcome unknown" in proc.stderr


MALFORMED = [
    b"[1, 2]",
    b'"panic"',
    b"[" * 100_000,
    b"\xff\xfe",
]


def shaped(**changes: object) -> bytes:
    request = {"v": 1, "argv": ["orders", "-q"], "tty": {}, "env": {}, "same": "", "secrets": {}, "cwd": "/"}
    request.update(changes)
    return json.dumps(request).encode()


PAYLOADS = [
    *MALFORMED,
    shaped(argv="panic"),
    shaped(argv=["panic", 1]),
    shaped(tty=[1]),
    shaped(env=["NO_COLOR"]),
    shaped(env={"NO_COLOR": 1}),
    shaped(secrets=[]),
    shaped(start=10**400),
]


def test_malformed_requests_leave_the_guard_serving(main, env):
    """Requests of another shape than the client's (a list, wrong types, deep nesting, not UTF-8) are refused or
    dropped; the guard keeps accepting and runs the next caller's command."""
    env.vars.update(ROOMY)
    g = Running(env)
    try:
        for payload in PAYLOADS:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(str(sock_path(env)))
            s.sendall(handoff.frame(handoff.REQUEST, payload))
            try:
                kind, _ = _read(s)
                if kind == handoff.READY:
                    s.sendall(handoff.frame(handoff.GO))
                    while kind not in (handoff.EXIT, handoff.DECLINED):
                        kind, _ = _read(s)
            except (OSError, EOFError):
                pass
            s.close()
            assert g.proc.poll() is None, f"the guard ended on {payload[:40]!r}"
        main.gemini.add_order()
        proc = env.run("panic", "--json", timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert main.gemini.open_orders() == []
    finally:
        code, err = g.stop()
    assert "ran panic" in err, err  # the last caller was served by the guard, not cold
    assert code == 0, err


ROTATED_KEY, ROTATED_SECRET = "account-ROTATEDkeyabcdefgh34", "ROTATEDSECRET0987654321zyxwv"


def test_a_key_rotated_in_its_file_is_used_at_once(sim, env, tmp_path):
    """The guard read ``main``'s key from ``*_FILE`` files; the files now hold another account's key (a rotation, a
    desk moving the profile to a sub-account). The next panic through the guard signs with the key in the files, as
    cold would: the orders of the account the files name are cancelled, not those of the key read at start."""
    import conftest

    conftest.SECRETS_USED.update({ROTATED_SECRET})
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.gemini.add_key(ROTATED_KEY, ROTATED_SECRET, account="desk2")
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    key, secret = tmp_path / "key", tmp_path / "secret"
    key.write_text(GEMINI_KEY)
    secret.write_text(GEMINI_SECRET)
    env.vars.update(ROOMY, CANCELCTL_MAIN_API_KEY_FILE=str(key), CANCELCTL_MAIN_API_SECRET_FILE=str(secret))
    g = Running(env)
    try:
        kept = sim.gemini.add_order(account="primary")
        moved = sim.gemini.add_order(account="desk2")
        key.write_text(ROTATED_KEY)
        secret.write_text(ROTATED_SECRET)
        proc = env.run("panic", "--json", timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert [o.order_id for o in sim.gemini.open_orders()] == [kept], "cancelled on the key read at start"
        assert moved not in [o.order_id for o in sim.gemini.open_orders()]
    finally:
        code, err = g.stop()
    assert "ran panic" in err, err  # through the guard, not cold


def test_a_runtime_dir_too_long_for_a_unix_socket_is_one_line(main, env, tmp_path):
    """``$XDG_RUNTIME_DIR`` longer than ``AF_UNIX`` takes (108 bytes): the guard says so in one line (exit 78, not an
    internal error); a caller runs cold."""
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    proc = env.run("guard", extra_env={"XDG_RUNTIME_DIR": str(deep)}, timeout=30)
    assert proc.returncode == 78, proc.stderr
    assert "cannot listen on" in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    main.gemini.add_order()
    proc = env.run("panic", "-q", extra_env={"XDG_RUNTIME_DIR": str(deep)}, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert main.gemini.open_orders() == []


def test_a_caller_s_ctrl_c_while_the_guard_reports_does_not_end_the_guard(sim, env):
    """A caller's Ctrl-C is forwarded to the guard's command; landing while that command renders its report (a
    long book: the report is most of the run) it armed the cold path's backstop, which ended the whole guard with
    os._exit(130) two seconds later: no ordered stop, heartbeat and dead-man's switch gone. The guard must stay up."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    env.vars.update(ROOMY)
    for _ in range(3000):
        sim.gemini.add_order()
    g = Running(env)
    try:
        t0 = time.monotonic()
        assert env.run("orders", "--json", timeout=60).returncode == 0
        full = time.monotonic() - t0
        for fraction in (0.5, 0.7, 0.9):
            c = env.popen("orders", "--json")
            time.sleep(full * fraction)
            c.send_signal(signal.SIGINT)
            c.communicate(timeout=60)
        time.sleep(2.5)  # the backstop's 2 s
        assert g.proc.poll() is None, f"the guard ended ({g.proc.returncode}) after a caller's Ctrl-C"
    finally:
        code, err = g.stop()
    assert code == 0, err
    assert "stopped after" in err, err


def test_callers_that_connect_and_say_nothing_do_not_send_the_next_one_cold(main, env):
    """Three connections that send nothing (a hung script of the same user, a port scanner on the socket) each held
    the guard's one accepting thread for the 1 s a request gets, one after the other: a real caller behind them
    waited past its hand-off budget and ran cold. The accepting thread now waits a few ms for a first byte and
    greets a slower caller from a thread of its own, so the real caller is served at once by the guard."""
    env.vars.update(ROOMY)
    g = Running(env)
    silent = []
    try:
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(sock_path(env)))
            silent.append(s)
        main.gemini.add_order()
        proc = env.run("cancel", "all", "--json", extra_env={"CANCELCTL_GUARD_BUDGET_MS": "1500"}, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert main.gemini.open_orders() == []
    finally:
        for s in silent:
            s.close()
        code, err = g.stop()
    assert "ran cancel all" in err, err  # through the guard, not cold after the budget
