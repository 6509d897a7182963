"""``cancelctl guard``: a resident process that runs the cancel commands on warm connections.

The guard resolves its profiles' credentials once, keeps keep-alive HTTPS
connections to each venue warm (:class:`Warm`), and listens on a Unix socket
(:func:`cancelctl.handoff.socket_path`, directory 0700, socket 0600, the
peer's uid checked with ``SO_PEERCRED``). A caller (:mod:`cancelctl.handoff`)
sends its argv and terminal facts; the guard runs the very same code as the
cold path (:func:`cancelctl.main.run`) with the caller's output captured, and
sends back the stdout bytes, the stderr bytes and the exit code. One request
at a time: a second caller meanwhile is told "busy" and runs cold (the
guard's own keep-warm GET never makes a caller busy: :meth:`Guard.keep_warm`).

Whenever the guard cannot give the cold path's answer it hands the command
back before anything is sent (``D``): a profile it does not hold or that
changed in the config since it started, an environment that differs where it
matters (:func:`cancelctl.handoff.env_digest`). docs/design.md, "The guard",
has the protocol and every failure.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import io
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cancelctl import handoff
from cancelctl.errors import CancelctlError, ConfigError, ExitCode

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials

REFRESH_S = 20.0  # s between keep-warm requests on each connection (servers close idle ones after about a minute)
MIN_PING_GAP_S = 0.5  # s: at most two keep-warm GETs a second, however many profiles
BEAT_JOIN_S = 2.0  # s the ordered stop waits for the heartbeat (and deadman) thread to end
READ_REQUEST_S = 1.0  # s a connected caller has to send its request, then its "go"
#: s the accepting thread waits for a caller's first byte itself; one slower is greeted by a thread of its own, so a
#: caller that connects and says nothing cannot hold every later caller for READ_REQUEST_S (they would run cold).
FIRST_BYTE_S = 0.005
LISTEN_LATE_S = 0.05  # s after "ready": the caller's Ctrl-C is listened for by then, even if no request was written
PING_PATH = {"gemini": "/v1/symbols", "pacifica": "/info"}  # public GETs that keep a connection busy


#: The signals a caller forwards (cancelctl.handoff._answer): the only numbers an ``I`` frame may raise in the guard.
FORWARDED = frozenset({int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGHUP)})
OWN_THREADS = ("guard-", "heartbeat")  # names of the guard's own threads (watch.interruptible's is "heartbeat")


class Decline(BaseException):
    """Raised inside a caller's command when the guard cannot run it as the cold path would; nothing was sent."""


def _readable(conn: socket.socket, seconds: float) -> bool:
    """Whether ``conn`` has bytes to read (or was closed) within ``seconds``."""
    import select

    try:
        poller = select.poll()
        poller.register(conn, select.POLLIN)
        return bool(poller.poll(seconds * 1000))
    except (OSError, ValueError):
        return True  # greeted at once, as before: greet() finds out what is wrong with it


def _say(text: str) -> None:
    """One line on the guard's own terminal (stderr), whatever a request has captured; every registered secret
    scrubbed (a caller's ``--reason`` is shown, and a trader may paste a secret there)."""
    from cancelctl.redact import scrub

    try:
        sys.__stderr__.write(f"cancelctl guard: {scrub(text)}\n")  # type: ignore[union-attr]
        sys.__stderr__.flush()  # type: ignore[union-attr]
    except (OSError, ValueError, AttributeError):
        pass


class _Frames(io.RawIOBase):
    """A byte sink that records each write as one frame of ``kind`` (stdout or stderr) for the caller."""

    def __init__(self, kind: bytes, frames: list[tuple[bytes, bytes]], tty: bool) -> None:
        super().__init__()
        self.kind, self.frames, self.tty = kind, frames, tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty

    def write(self, b: Any) -> int:
        data = bytes(b)
        if threading.current_thread().name.startswith(OWN_THREADS):  # the guard's own lines never reach a caller
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.__stderr__.write(data.decode("utf-8", "replace"))  # type: ignore[union-attr]
        elif data:
            self.frames.append((self.kind, data))
        return len(data)


def _stream(kind: bytes, frames: list[tuple[bytes, bytes]], tty: bool) -> io.TextIOWrapper:
    return io.TextIOWrapper(_Frames(kind, frames, tty), encoding="utf-8", errors="strict", write_through=True)  # type: ignore[arg-type]


def warm_client(keepalive_s: float, verify: ssl.SSLContext) -> Any:
    """One profile's HTTP client in the guard (:func:`cancelctl.transport.client`): its own connections, so a
    hundred profiles' runs never queue on one pool's lock (measured: benchmarks/panic.py), with idle connections
    kept ``keepalive_s`` seconds; ``verify``: the one TLS context every profile's client shares
    (:func:`cancelctl.transport.tls_context`).

    ``close()`` (which every venue client calls when its run ends) keeps the
    connection; ``shutdown()`` closes it.
    """
    from cancelctl.transport import client

    return client(verify, keepalive_s=keepalive_s, warm=True)


@dataclass
class Held:
    """A profile the guard holds: its configuration when the guard started, its credentials and its state."""

    profile: Profile
    creds: Credentials
    state: str = "connecting"  # connecting | warm | error: <why>
    last_ok: float | None = None  # time.time() of the last keep-warm answer
    last_heartbeat: float | None = None
    heartbeat_error: str | None = None
    open_orders: int | None = None  # with --poll
    polled: float | None = None


@dataclass
class Settings:
    refresh: float = REFRESH_S
    poll: float | None = None
    heartbeat: bool = False
    heartbeat_interval: float = 15.0
    deadman: str | None = None
    ttl: float | None = None
    panic_on_exit: bool = False


@dataclass
class Caller:
    """A caller whose command the guard has begun: ``R`` was sent, its ``G`` may not have come yet.

    The main thread starts the command as soon as ``R`` is out and runs it up
    to the first thing that would change the world (:meth:`Guard.gate`: the
    runner's first step, the audit line), where it reads the caller's ``G``
    itself (:meth:`wait_go`): by then it is usually waiting in the socket, and
    no other thread wakes, or wants the GIL, on the way to the first cancel. A
    caller that does not say "go" in time runs cold, so its command must do
    nothing here: the gate declines it, and nothing is ever written back to it.

    The caller's Ctrl-C (``I``) is read by a thread of its own
    (:meth:`Guard.listen`), started only once the command's first request was
    written whole, or :data:`LISTEN_LATE_S` after ``R`` when none was by then
    (:meth:`start_listening`): the frame waits in the socket meanwhile.
    """

    conn: socket.socket
    request: dict[str, Any]
    until: float  # time.monotonic() by which the "go" must have come
    go: bool = False
    said: threading.Event = field(default_factory=threading.Event)  # set once go is settled, either way
    done: threading.Event = field(default_factory=threading.Event)  # the command has ended: stop listening
    forwarded: list[int] = field(default_factory=list)  # the caller's signals raised in the main thread
    settling: threading.Lock = field(default_factory=threading.Lock)
    listening: bool = False  # a thread reads the caller's Ctrl-C (start_listening)
    gated: bool = False  # the command passed its gate (Guard.gate): from here it may have acted

    def settle(self, go: bool) -> bool:
        """Settle whether the caller said "go" (the first call decides); the settled answer."""
        with self.settling:
            if not self.said.is_set():
                self.go = go
                self.said.set()
            return self.go

    def wait_go(self) -> bool:
        """Whether the caller said "go": reads its next frame (at most until :attr:`until`; anything but ``G``, a
        silence or a closed socket settles it as no). Called by the main thread only, once the command needs to
        know; nothing else reads the socket before it is settled."""
        if not self.said.is_set():
            go = False
            try:
                # A "go" already in the socket counts however late the command asks (a slow config read, say): the
                # caller sent it in time; one not there yet is waited for until :attr:`until`, and 1 ms at most past it.
                kind, _ = handoff.read_frame(self.conn, max(self.until, time.monotonic() + 0.001))
                go = kind == handoff.GO
                self.conn.settimeout(None)
            except (OSError, EOFError):
                pass
            self.settle(go)
        return self.go

    def start_listening(self, listen: Callable[[Caller], None]) -> bool:
        """Start ``listen(self)`` in a thread of its own once the caller said "go", at most once, never after the
        command ended; whether it is (or was already) started. ``_thread``, not ``threading.Thread``: ``start()``
        waits until the new thread has run, a GIL hand-over for the thread that called it."""
        with self.settling:
            if self.listening:
                return True
            if not self.said.is_set() or not self.go or self.done.is_set():
                return False
            self.listening = True
        import _thread

        try:
            _thread.start_new_thread(listen, (self,))
        except RuntimeError:  # no thread to be had: the command runs, the caller's Ctrl-C does not reach it
            _say("the caller's Ctrl-C will not reach its command (no thread to listen for it)")
        return True


@dataclass
class Guard:
    """The running guard (see the module's docstring)."""

    held: dict[str, Held]
    clients: dict[str, Any]  # profile name -> its warm httpx client (warm_client)
    settings: Settings = field(default_factory=Settings)
    started: float = field(default_factory=time.time)
    served: int = 0
    last_checkin: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    heartbeat_stop: threading.Event = field(default_factory=threading.Event)
    deadman_code: int | None = None
    busy: threading.Lock = field(default_factory=threading.Lock)
    digest: str = ""
    listener: socket.socket | None = None
    queue: list[Caller] = field(default_factory=list)
    current: Caller | None = None  # the caller whose command the main thread runs
    wake: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    exit_code: int = 0
    forwarding: int | None = None  # a caller's signal raised in the main thread for its command, not for the guard
    unheard: Caller | None = None  # the caller whose listener the accepting thread starts, if nothing else did

    # ---- keeping connections warm -------------------------------------------------------------

    def ping(self, h: Held) -> None:
        """One public GET on ``h``'s connection (opened if it was not): kept busy, neither side closes it as idle,
        its TLS session stays up. The profile's connection state says how it went."""
        url = h.profile.base_url + PING_PATH.get(h.profile.venue, "/")
        try:
            self.clients[h.profile.name].get(url, timeout=5.0)
            state = "warm"
        except Exception as e:  # noqa: BLE001 - any failure is the connection's state, shown in status
            state = "error: " + (str(e).splitlines()[0][:120] if str(e) else type(e).__name__)
        if state != h.state and h.state != "connecting":  # the guard's terminal hears of every change
            _say(f"profile {h.profile.name}: connection {state}")
        h.state = state
        if state == "warm":
            h.last_ok = time.time()

    def warm(self) -> None:
        """Open every held profile's connection at once (start-up)."""
        threads = [threading.Thread(target=self.ping, args=(h,), daemon=True) for h in self.held.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(6.0)

    def gap(self) -> float:
        """Seconds between two keep-warm GETs: each profile's connection every ``--refresh`` s, but never more
        than one GET every ``MIN_PING_GAP_S`` (a hundred profiles must not look like a flood to a venue)."""
        return max(self.settings.refresh / max(1, len(self.held)), MIN_PING_GAP_S)

    def keep_warm(self) -> None:
        """Each profile's connection in turn, one every :meth:`gap` seconds; not begun while a caller's command runs.

        It never holds the caller's lock (``busy``): a caller that comes while a keep-warm GET waits for its answer
        is served, not told "busy" and sent cold. The GET takes its connection out of the profile's client for its
        exchange (:meth:`cancelctl.transport.Client.take`), so the caller's command opens a fresh one beside it (a
        handshake, still no interpreter start or import) and never queues behind the GET's answer."""
        while True:
            for h in list(self.held.values()):
                if self.stop.wait(self.gap()):
                    return
                if not self.busy.locked():  # a caller's command runs: its cancels first, the GET waits its turn
                    self.ping(h)

    def poll(self) -> None:
        """With ``--poll S``: count each held profile's open orders every S seconds (for ``guard status``).

        Like the keep-warm GET it never holds the callers' lock (``busy``), and a profile's read is not begun while
        a caller's command runs: a read the venue holds (up to its 10 s deadline) held that lock for the whole
        round, and the dead-man's switch, whose panic waits for it, fired that much later (callers were told busy
        meanwhile)."""
        from cancelctl import config as config_mod
        from cancelctl.transport import Deadline
        from cancelctl.venues.base import open_client

        assert self.settings.poll is not None
        while not self.stop.wait(self.settings.poll):
            for h in self.held.values():
                if self.stop.is_set():
                    return
                if self.busy.locked():
                    continue  # a caller's command (or the switch's panic) is running: its cancels first
                try:
                    client = open_client(h.profile, h.creds, state_dir=config_mod.state_dir(), deadline=Deadline(10.0))
                    try:
                        count = len(client.open_orders())
                    finally:
                        client.close()
                    if count != h.open_orders:
                        _say(f"profile {h.profile.name}: {count} open order(s)")
                    h.open_orders = count
                    h.polled = time.time()
                except CancelctlError as e:
                    h.open_orders = None
                    _say(f"profile {h.profile.name}: open orders not read: {e.one_line()}")

    def heartbeat(self) -> None:
        """``--heartbeat``: ``heartbeat``'s loop (:func:`cancelctl.cli.watch.keep_alive`) on the held Gemini
        profiles, until the guard stops it (first, at shutdown)."""
        from cancelctl.cli import watch

        profiles = heartbeat_profiles(self.held)
        beat = watch.beater(profiles, {p.name: self.held[p.name].creds for p in profiles}, self.heartbeat_stop)

        def recorded(name: str, seconds: float) -> None:
            h = self.held[name]
            try:
                beat(name, seconds)
            except CancelctlError as e:
                h.heartbeat_error = e.one_line()
                raise
            h.last_heartbeat, h.heartbeat_error = time.time(), None

        code = watch.keep_alive(
            [p.name for p in profiles],
            recorded,
            interval=self.settings.heartbeat_interval,
            wait=self.heartbeat_stop.wait,
            say=_say,
        )
        if code != ExitCode.OK:
            self.exit_code = int(code)

    def deadman(self) -> None:
        """``--deadman FILE --ttl S``: ``deadman``'s watch (:func:`cancelctl.cli.watch.watch_file`); when it fires,
        panic on every held profile on the warm connections (after a running caller's command), report and audit
        as ``deadman`` does, and stay up with the switch disarmed."""
        from cancelctl import main
        from cancelctl.cli import watch
        from cancelctl.cli.panic import run_panic
        from cancelctl.runner import Options

        assert self.settings.deadman is not None and self.settings.ttl is not None
        ttl = self.settings.ttl

        def checked_in(t: float) -> None:
            self.last_checkin = t

        silent = watch.watch_file(Path(self.settings.deadman), ttl, self.stop, say=_say, checked_in=checked_in)
        if silent is None:
            _say("deadman disarmed")
            return
        _say(f"deadman: no check-in for {silent:.1f} s (TTL {ttl:g} s): panic")
        opts = Options(
            profiles=list(self.held), verify=True, reason=f"deadman: no check-in for {silent:.1f} s (TTL {ttl:g} s)"
        )
        with self.busy:  # after a caller's command, never beside it (its output is captured meanwhile)
            outcome = run_panic(
                [h.profile for h in self.held.values()], opts, {n: h.creds for n, h in self.held.items()}
            )
            self.deadman_code = main.finish(outcome)
        _say(f"deadman: panic exit {self.deadman_code}; the switch is disarmed, the guard runs on")
        notify_fired("deadman", self.deadman_code, outcome.report, opts.reason)  # after the report, as ``deadman``

    # ---- the socket --------------------------------------------------------------------------

    def accept_loop(self) -> None:
        assert self.listener is not None
        while not self.stop.is_set():
            unheard = self.unheard  # a caller whose Ctrl-C no thread reads yet (Caller.start_listening)
            try:
                # While there is one, accept() wakes every LISTEN_LATE_S to start its listener if the command's first
                # request has not done so; otherwise it sleeps until a caller comes.
                self.listener.settimeout(LISTEN_LATE_S if unheard is not None else None)
                conn, _ = self.listener.accept()
            except TimeoutError:
                if unheard is not None and (unheard.start_listening(self.listen) or unheard.done.is_set()):
                    self.unheard = None
                continue
            except OSError:
                if self.stop.is_set():
                    return
                time.sleep(0.05)
                continue
            if _readable(conn, FIRST_BYTE_S):
                self.greet_safely(conn)  # here, not in a thread of its own: one thread switch less before the cancel
            else:
                try:
                    _thread.start_new_thread(self.greet_safely, (conn,))
                except RuntimeError:  # no thread to be had: greeted here, as before
                    self.greet_safely(conn)

    def greet_safely(self, conn: socket.socket) -> None:
        """:meth:`greet`, whatever the caller sends: one odd caller must not end the accepting for every later one."""
        try:
            self.greet(conn)
        except Exception as e:  # noqa: BLE001
            _say(f"dropped a request: {type(e).__name__}")
            with contextlib.suppress(OSError):
                conn.close()

    def greet(self, conn: socket.socket) -> None:
        """Check the caller, read its request, answer ready/busy; hand it to the main thread at once, which begins
        the command and reads the caller's "go" when it needs it (:class:`Caller`)."""
        caller = None
        try:
            if handoff.peer_uid(conn) != os.getuid():
                _say("refused a connection from another user")
                return
            until = time.monotonic() + READ_REQUEST_S  # for the request and the "go" together, however they trickle
            kind, payload = handoff.read_frame(conn, until)
            if kind == handoff.STATUS:
                from cancelctl import redact

                # Scrubbed here: a venue's error text kept for status (a heartbeat's refusal) may echo a key, and
                # ``guard status`` has no secret of its own to scrub it with.
                conn.sendall(handoff.frame(handoff.EXIT, redact.dumps(self.status()).encode()))
                return
            if kind != handoff.REQUEST:
                return
            request = json.loads(payload.decode("utf-8", "surrogateescape"))
            if not well_formed(request) or handoff.words(request["argv"]) is None:
                conn.sendall(handoff.frame(handoff.BUSY, b"not a command the guard runs"))
                return
            if self.stop.is_set() or not self.busy.acquire(blocking=False):
                conn.sendall(handoff.frame(handoff.BUSY, b"busy"))
                return
            try:
                conn.sendall(handoff.frame(handoff.READY))
                caller = Caller(conn, request, until)
                self.unheard = caller
                self.queue.append(caller)  # from here the main thread owns the connection and the busy lock
                self.wake.set()
            finally:
                if caller is None:
                    self.busy.release()
        except (OSError, EOFError, ValueError, UnicodeDecodeError, RecursionError):
            return
        finally:
            if caller is None:
                conn.close()

    def listen(self, caller: Caller) -> None:
        """The caller's Ctrl-C (or SIGTERM) reaches its command as the cold path's would: an ``I`` frame becomes the
        signal in the main thread, once. Runs in a thread of its own (:meth:`Caller.start_listening`), after the
        caller's "go" was read."""
        from cancelctl import signals

        while not caller.done.is_set():
            try:
                kind, payload = handoff.read_frame(caller.conn)
            except (OSError, EOFError):
                return
            if kind != handoff.INTERRUPT or len(payload) != 1 or payload[0] not in FORWARDED:
                continue  # the client forwards these three only: any other number (9, 19) is no caller's to raise here
            if not caller.forwarded and not caller.done.is_set():
                caller.forwarded.append(payload[0])
                # The command may not have installed its handlers yet (it began before the "go"): until it has, the
                # guard's own handler would drop the signal, so it waits for them (a millisecond or so).
                while not signals.active() and not caller.done.wait(0.001):
                    pass
                if caller.done.is_set():
                    return
                self.forwarding = payload[0]  # if it lands after the command, the guard's handler drops it
                signal.pthread_kill(threading.main_thread().ident or 0, payload[0])

    def gate(self) -> None:
        """Called before the running caller's command changes anything (the runner's first step, before any
        request; the audit line): returns once the caller has said "go"; Decline when it did not (it runs cold, or
        has gone), so nothing was sent and nothing written."""
        c = self.current
        if c is None or threading.current_thread() is not threading.main_thread():
            return
        if not c.gated and (self.stop.is_set() or self._signalled(c)):
            # The guard itself is being stopped (systemd, Ctrl-C in its pane) and nothing of this command went out
            # yet: handed back, so the caller's own process cancels, instead of a "terminated" with every order
            # still resting (exit 143 for a panic that never left).
            raise Decline("the guard is stopping")
        if not c.wait_go():
            raise Decline("the caller did not say go")
        c.gated = True

    @staticmethod
    def _signalled(c: Caller) -> bool:
        """Whether a signal reached the guard's running command that its caller did not forward (the guard's own)."""
        from cancelctl import signals

        return any(s not in c.forwarded for s in signals.RECEIVED)

    # ---- running a caller's command ------------------------------------------------------------

    def admit(self, profiles: list[Profile]) -> dict[str, Credentials]:
        """The runner's gate while a caller's command runs (:data:`cancelctl.runner.admit`): the credentials held
        for ``profiles``; Decline when one is not held or its configuration changed since the guard started."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        self.gate()  # nothing of the command goes out before the caller's "go"
        creds = {}
        for p in profiles:
            h = self.held.get(p.name)
            if h is None:
                raise Decline(f"profile {p.name} is not held by the guard")
            if p.broken is not None or h.profile != p:
                raise Decline(f"profile {p.name} changed since the guard started")
            creds[p.name] = h.creds = reread(h)
        return creds

    def serve(self, caller: Caller) -> None:
        """Run one caller's command here, as :func:`cancelctl.main.run` would in its process, from its request on
        (:class:`Caller`: nothing goes out before its "go"); send the answer.

        The words a command registers as secrets (:func:`cancelctl.redact.register`: a usage error's command line,
        a pasted ``--symbol``) are its own, as they are a cold process's: forgotten once its answer and
        notifications are out, or every later caller's report would have them scrubbed (an earlier caller's
        ``--reason`` or client order ID shown ``<redacted>``, unlike cold). The held credentials stay registered.
        """
        from cancelctl import redact

        before = set(redact.SECRETS)
        try:
            self._serve(caller)
        finally:
            redact.SECRETS.intersection_update(before.union(*(h.creds.values() for h in self.held.values())))

    def _serve(self, caller: Caller) -> None:
        from cancelctl import main, runner, signals, transport

        conn, request = caller.conn, caller.request
        handed = False  # the end of the answer was handed to a thread of its own, which closes the connection
        frames: list[tuple[bytes, bytes]] = []
        decline: str | None = None
        code = int(ExitCode.INTERNAL)
        forwarded = caller.forwarded
        self.current = caller

        secrets = request.get("secrets") or {}
        names = secrets.get("names") if isinstance(secrets, dict) else None
        if request.get("same") != self.digest:
            decline = "the caller's environment differs from the guard's"
        elif not isinstance(names, list) or not all(isinstance(n, str) and n.startswith("CANCELCTL_") for n in names):
            decline = "a request without the caller's secret names"
        elif secrets.get("digest") != handoff.env_digest(os.environ, names):
            decline = "the caller's CANCELCTL_* secrets differ from the guard's"
        saved_env = {n: os.environ.get(n) for n in handoff.APPLIED}
        saved_cwd = os.getcwd()
        saved_out, saved_err, saved_argv = sys.stdout, sys.stderr, sys.argv
        waiting: list[tuple[str, str, object]] = []  # notifications of the command (main.deferred)
        if decline is None:
            try:
                os.chdir(str(request.get("cwd") or saved_cwd))
            except (OSError, TypeError, ValueError):
                decline = "cannot enter the caller's directory"
        if decline is None:
            tty = request.get("tty") or {}
            env = request.get("env") or {}
            for n in handoff.APPLIED:
                value = env.get(n)
                if isinstance(value, str):
                    os.environ[n] = value
                else:
                    os.environ.pop(n, None)
            sys.stdout = _stream(handoff.STDOUT, frames, bool(tty.get("stdout")))
            sys.stderr = _stream(handoff.STDERR, frames, bool(tty.get("stderr")))
            start = request.get("start")
            # The caller's start is behind us: a later one (infinity, 1e300 from a broken caller; JSON's NaN is none)
            # would give its command a deadline past the caller's own wait, or none a socket can take (exit 70).
            if isinstance(start, (int, float)) and math.isfinite(start):
                transport.start_override = min(float(start), time.monotonic())
            else:
                transport.start_override = None
            runner.admit = self.admit
            transport.on_any_written = functools.partial(caller.start_listening, self.listen)  # the first cancel is out
            sys.argv = ["cancelctl", *request["argv"]]  # the audit line records the caller's command
            signals.RECEIVED.clear()
            main.deferred = waiting  # notifications after the caller's answer, never before it
            main.gate = self.gate  # no audit line before the caller's "go"
            try:
                code = main.run(list(request["argv"]), restore=True)
            except Decline as e:
                decline = str(e)
            except BaseException as e:  # noqa: BLE001 - a caller's command must never take the guard down
                decline = None
                frames.append((handoff.STDERR, f"cancelctl: error: the guard failed: {type(e).__name__}\n".encode()))
                code = int(ExitCode.INTERNAL)
            finally:
                main.deferred = None
                main.gate = None
                caller.done.set()
                runner.admit = None
                transport.on_any_written = None
                transport.start_override = None
                for s in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        s.flush()
                sys.stdout, sys.stderr, sys.argv = saved_out, saved_err, saved_argv
                for n, v in saved_env.items():
                    if v is None:
                        os.environ.pop(n, None)
                    else:
                        os.environ[n] = v
                with contextlib.suppress(OSError):
                    os.chdir(saved_cwd)
            own = [s for s in signals.RECEIVED if s not in forwarded]
            if own:  # the guard itself was signalled while it ran the command: it stops after answering
                self.stop.set()
        self.current = None
        caller.done.set()
        try:
            if not caller.wait_go():  # it runs cold (or has gone): nothing of this command was sent or written
                if decline is None:
                    decline = "the caller did not say go"
                _say(f"ran nothing for pid {request.get('pid')}: {decline}")
                waiting.clear()
            elif decline is not None:
                _say(f"handed back to the caller: {decline}")
                conn.sendall(handoff.frame(handoff.DECLINED, decline.encode()))
            else:
                out = b"".join(handoff.frame(kind, data) for kind, data in frames)
                rest = _send_some(conn, out + handoff.frame(handoff.EXIT, str(code).encode()))
                self.served += 1
                from cancelctl.text import one_line

                reason = request.get("reason")
                _say(
                    f"ran {' '.join(handoff.words(request['argv']) or [])} for pid {request.get('pid')}: exit {code}"
                    + (f" ({one_line(reason, 200)})" if isinstance(reason, str) else "")  # no forged line, no escape
                )
                if rest:  # the caller reads slower than its report fits the socket: a thread of its own finishes
                    _deliver_later(conn, rest, waiting)
                    handed, waiting = True, []
        except OSError:
            _say("the caller went away before its answer was sent")
        finally:
            if not handed:
                _hang_up(conn)
        if waiting:  # the caller has its answer (or went away): now the notifications
            main.send_deferred(waiting)

    # ---- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``cancelctl guard status`` shows; never a secret (profile names, states, times, counts; the venue's
        error texts are scrubbed when the document is sent)."""
        return {
            "pid": os.getpid(),
            "started": self.started,
            "served": self.served,
            "socket": handoff.socket_path(),
            "heartbeat": self.settings.heartbeat,
            "deadman": self.settings.deadman,
            "ttl": self.settings.ttl,
            "last_checkin": self.last_checkin,
            "poll": self.settings.poll,
            "profiles": [
                {
                    "profile": name,
                    "venue": h.profile.venue,
                    "connection": h.state,
                    "last_ok": h.last_ok,
                    "last_heartbeat": h.last_heartbeat,
                    "heartbeat_error": h.heartbeat_error,
                    "open_orders": h.open_orders,
                    "polled": h.polled,
                }
                for name, h in self.held.items()
            ],
        }


def _hang_up(conn: socket.socket) -> None:
    """Close a caller's connection, waking the thread that listens on it for the caller's Ctrl-C (:meth:`Guard.listen`):
    a ``close()`` alone leaves a ``recv`` in another thread blocked for as long as the caller keeps its end open (a
    caller stopped with Ctrl-Z, a broken one), a thread and a socket of the guard's for each such caller."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def _send_some(conn: socket.socket, data: bytes) -> bytes:
    """Write what of ``data`` the caller's socket takes now, without waiting; the rest (b"" when all went).
    OSError when the caller has gone."""
    view = memoryview(data)
    conn.setblocking(False)
    try:
        while view:
            try:
                view = view[conn.send(view) :]
            except BlockingIOError:
                break
    finally:
        conn.setblocking(True)
    return bytes(view)


def _deliver_later(conn: socket.socket, rest: bytes, waiting: list[tuple[str, str, object]]) -> None:
    """The end of a report the caller did not take at once (it reads slowly, its terminal or pipe is stuck, it was
    stopped with Ctrl-Z), written by a thread of its own for as long as the caller takes, then its notifications.

    The main thread must not wait for it: it holds the busy lock, without which no later caller is served and the
    dead-man's switch cannot fire, and a write it waits in is resumed after a SIGTERM's handler (the guard would
    not stop). The caller's report is whole in ``rest``: nothing of the command is left to run."""

    def finish() -> None:
        from cancelctl import main

        try:
            conn.sendall(rest)
        except OSError:
            _say("the caller went away before the end of its answer")
        finally:
            _hang_up(conn)
        if waiting:
            main.send_deferred(waiting)

    try:
        threading.Thread(target=finish, name="guard-answer", daemon=True).start()
    except RuntimeError:  # no thread to be had: the caller gets what it took (it sees a torn report: exit 5)
        _say("the end of an answer was dropped (no thread to write it)")
        conn.close()


def reread(held: Held) -> Credentials:
    """``held``'s credentials with every field that came from a ``*_FILE`` read again (a file read, no keyring): a
    key rotated in its file is used at once, as cold would, never the one read at start. Decline when a file can no
    longer be read (the cold run says why). Keyring entries are not re-read (``docs/design.md``, "The guard")."""
    from cancelctl import credentials

    files = [f for f, source in held.creds.sources.items() if source.endswith("_FILE")]
    if not files:
        return held.creds
    values, sources = dict(held.creds.items()), dict(held.creds.sources)
    try:
        for f in files:
            found = credentials._from_env(held.profile.name, f)
            if found is None:
                raise Decline(f"profile {held.profile.name}: its {f} file is no longer set")
            values[f], sources[f] = found
    except CancelctlError as e:
        raise Decline(f"profile {held.profile.name}: {e.one_line()}") from None
    if values == dict(held.creds.items()):
        return held.creds
    _say(f"profile {held.profile.name}: credentials re-read from their files (changed since the last command)")
    return credentials.Credentials(values, sources)


def well_formed(request: object) -> bool:
    """A request of the shape :func:`cancelctl.handoff._hand_off` sends: an object whose ``argv`` is a list of
    strings, whose ``tty``, ``env`` and ``secrets`` (when present) are objects, ``env`` of strings, and whose
    ``start`` (s, monotonic clock) is a number a float holds. Anything
    else is refused before it can reach :meth:`Guard.serve` (where a list in place of an object would end the
    guard)."""
    if not isinstance(request, dict):
        return False
    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(w, str) for w in argv):
        return False
    for key in ("tty", "env", "secrets"):
        if not isinstance(request.get(key) or {}, dict):
            return False
    start = request.get("start")
    if isinstance(start, int) and not -(2**53) < start < 2**53:  # float() of a larger one raises
        return False
    return all(isinstance(v, str) for v in (request.get("env") or {}).values())


# ---- start-up ------------------------------------------------------------------------------------


def prepare_dir(path: str) -> None:
    """Make the socket's directory 0700; ConfigError (78) when it exists and is not this user's own, private,
    real directory (a symlink or another user's directory in /tmp would hand the socket to someone else)."""
    import stat

    from cancelctl.config import private_dir

    try:
        private_dir(__import__("pathlib").Path(path))
        st = os.lstat(path)
    except OSError as e:
        raise ConfigError(f"cannot make the guard's directory {path}: {e.strerror or type(e).__name__}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError(
            f"{path} is not a directory of this user", hint="remove it, or set XDG_RUNTIME_DIR to a private directory"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def lock(path: str) -> int:
    """Hold the guard's lock file (``fcntl.flock``, released when the process ends); ConfigError when another
    guard holds it (a second guard refuses to start)."""
    import fcntl
    import stat

    try:  # never through a symlink; O_NONBLOCK: a FIFO left there must not hang the start
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as e:  # a directory, a symlink, a read-only or full file system
        raise ConfigError(
            f"cannot open the guard's lock file {path}: {e.strerror or type(e).__name__}", hint="remove it"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"the guard's lock file {path} is not a regular file", hint="remove it")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            other = os.read(fd, 32).decode().strip()
        except OSError:
            other = ""
        os.close(fd)
        raise ConfigError(
            f"a guard is already running{' (pid ' + other + ')' if other.isdigit() else ''}",
            hint="see it with: cancelctl guard status; stop it before starting another",
        ) from None
    with contextlib.suppress(OSError):  # the pid is for a second guard's message only: a full disk costs just that
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    return fd


def listen(path: str) -> socket.socket:
    """Bind the guard's socket at ``path`` (0600 from its creation), replacing a stale one; ConfigError (78) when
    it cannot be bound (a path too long for ``AF_UNIX``)."""
    try:
        os.unlink(path)  # the lock is ours: a socket file left here belongs to a guard that is gone
    except FileNotFoundError:
        pass
    except OSError as e:  # a directory in its place, say
        raise ConfigError(f"cannot listen on {path}: {e.strerror or type(e).__name__}", hint="remove it") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError as e:  # a path longer than sun_path (108 bytes on Linux) is the usual one: say so, not a bug
        sock.close()
        why = e.strerror or str(e) or type(e).__name__
        raise ConfigError(
            f"cannot listen on {path}: {why}", hint="set XDG_RUNTIME_DIR to a shorter private directory"
        ) from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock


def hold(names: list[str]) -> dict[str, Held]:
    """The profiles the guard holds (``-p`` names, else every configured one), with their credentials; a broken
    profile or one whose credentials cannot be read is said and left out (callers naming it run cold)."""
    from cancelctl import config as config_mod
    from cancelctl import credentials

    profiles = config_mod.select(config_mod.load(strict=False), names, button=True)
    held: dict[str, Held] = {}
    for p in profiles:
        if p.broken is not None:
            _say(f"profile {p.name} not held: {p.broken.one_line()}")
            continue
        try:
            held[p.name] = Held(p, credentials.resolve(p.name, p.venue))
        except CancelctlError as e:
            _say(f"profile {p.name} not held: {e.one_line()}")
    if not held:
        raise ConfigError("the guard holds no profile", hint="fix the profiles above, then start it again")
    return held


def heartbeat_profiles(held: dict[str, Held]) -> list[Profile]:
    """The held profiles ``--heartbeat`` keeps alive (those on a venue with a heartbeat: Gemini); UsageProblem (2)
    when there is none."""
    from cancelctl.errors import UsageProblem
    from cancelctl.venues.info import VENUES

    profiles = [h.profile for h in held.values() if "heartbeat" in VENUES[h.profile.venue].commands]
    if not profiles:
        raise UsageProblem("--heartbeat: the guard holds no Gemini profile", hint="hold one with -p NAME")
    return profiles


def warm_imports() -> None:
    """Import now what a caller's command will need, and convert its typer app into click commands
    (:data:`cancelctl.cli.prepared`), so its first request costs neither."""
    import importlib

    for name in (
        "cancelctl.cli",
        "cancelctl.cli.panic",
        "cancelctl.cli.cancel",
        "cancelctl.cli.orders",
        "cancelctl.cli.positions",
        "cancelctl.render",
        "cancelctl.audit",
        "cancelctl.verify",
        "cancelctl.closing",
        "cancelctl.venues.gemini",
        "cancelctl.venues.pacifica",
        "tenacity",
        "rich.console",
        "rich.table",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from cancelctl import cli

    cli.prepared = {}  # each command's click tree converted once, here, not in front of a caller's cancel
    for word in handoff.GUARDED:
        cli.command(word)


def run(names: list[str], settings: Settings) -> int:
    """Run the guard in the foreground until SIGINT, SIGTERM or SIGHUP; the exit code (0 after a clean stop)."""
    from cancelctl import handoff as h
    from cancelctl import runner, signals, transport

    signals.BACKSTOP = False  # a signal while a caller's command reports must not end the guard (signals.BACKSTOP)
    directory = h.socket_dir()
    prepare_dir(directory)
    lock_fd = lock(os.path.join(directory, h.LOCK_NAME))
    held = hold(names)
    if settings.heartbeat:
        heartbeat_profiles(held)  # UsageProblem before anything starts when none can have one
    if settings.deadman is not None:
        from cancelctl.cli.watch import _check_in_file

        _check_in_file(Path(settings.deadman))
    warm_imports()
    keepalive = 3 * max(settings.refresh, MIN_PING_GAP_S * len(held))  # s: longer than a keep-warm round
    verify = transport.tls_context()  # one for every client: each CA bundle loaded costs about 1 MB
    guard = Guard(held, {name: warm_client(keepalive, verify) for name in held}, settings)
    guard.digest = h.env_digest(os.environ)
    transport.warm_clients = guard.clients
    stop = guard.stop

    def on_signal(signum: int, frame: object) -> None:
        if guard.forwarding == signum:  # a caller's Ctrl-C that arrived as its command ended: not the guard's stop
            guard.forwarding = None
            return
        stop.set()
        guard.wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    guard.warm()
    guard.listener = listen(h.socket_path())
    tasks = [(guard.accept_loop, "guard-accept"), (guard.keep_warm, "guard-warm")]
    if settings.poll:
        tasks.append((guard.poll, "guard-poll"))
    if settings.heartbeat:
        tasks.append((guard.heartbeat, "guard-heartbeat"))
    if settings.deadman is not None:
        tasks.append((guard.deadman, "guard-deadman"))
    for target, name in tasks:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        guard.threads.append(t)
    _say(
        f"holding {', '.join(f'{n} ({x.profile.venue}: {x.state})' for n, x in held.items())}; "
        f"listening on {h.socket_path()}; Ctrl-C or SIGTERM stops"
    )
    try:
        while not stop.is_set():
            guard.wake.wait(0.5)
            guard.wake.clear()
            while guard.queue:
                caller = guard.queue.pop(0)
                try:
                    guard.serve(caller)
                finally:
                    guard.busy.release()
                    guard.forwarding = None
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # main.run restored them; set them again
                    signal.signal(sig, on_signal)
    finally:
        shutdown(guard, lock_fd)
        runner.admit = None
    return guard.exit_code


def notify_fired(command: str, code: int, report: Any, reason: str | None) -> None:
    """The notification of a panic the guard ran by itself (its deadman fired, ``--panic-on-exit``), sent as the
    ``deadman`` and ``panic`` commands send theirs (contract, "Notifications"): after the report and the audit line,
    when URLs are set; a failure is one line on the guard's terminal; never raises."""
    from cancelctl import notify

    try:
        current = notify.settings()
        if not current.urls and not current.problem:
            return
        title, body = notify.message(command, code, report, reason=reason)
    except Exception as e:  # noqa: BLE001 - notifying never changes what the guard did
        _say(f"notification not sent: {type(e).__name__}")
        return
    notify.send(title, body, current)


def panic_on_exit(guard: Guard) -> None:
    """``--panic-on-exit``: panic on every held profile, on the warm connections; its report and audit line as
    ``panic``'s; the guard then exits with panic's code."""
    from cancelctl import main
    from cancelctl.cli.panic import run_panic
    from cancelctl.runner import Options

    _say("--panic-on-exit: panic on " + ", ".join(guard.held))
    opts = Options(profiles=list(guard.held), verify=True, reason="cancelctl guard stopped (--panic-on-exit)")
    try:
        outcome = run_panic([h.profile for h in guard.held.values()], opts, {n: h.creds for n, h in guard.held.items()})
        guard.exit_code = main.finish(outcome)
        notify_fired("panic", guard.exit_code, outcome.report, opts.reason)  # after the report, as ``panic``
    except Exception as e:  # noqa: BLE001 - said, and the exit code says it
        _say(f"--panic-on-exit failed: {type(e).__name__}")
        guard.exit_code = int(ExitCode.INTERNAL)


def shutdown(guard: Guard, lock_fd: int) -> None:
    """Ordered stop: no new caller, then the standing protections (the heartbeat first), then the connections."""
    from cancelctl import handoff as h
    from cancelctl import transport

    guard.stop.set()
    if guard.listener is not None:
        with contextlib.suppress(OSError):
            os.unlink(h.socket_path())
        with contextlib.suppress(OSError):
            guard.listener.close()
    if guard.settings.heartbeat:  # first: no heartbeat may outlive the guard
        guard.heartbeat_stop.set()
        for t in guard.threads:
            if t.name == "guard-heartbeat":
                t.join(BEAT_JOIN_S)
        _say("heartbeat stopped first; Gemini cancels the sessions' orders 30 s after the last one")
    for t in guard.threads:
        if t.name == "guard-deadman":
            t.join(BEAT_JOIN_S)
    if guard.settings.panic_on_exit:
        panic_on_exit(guard)
    transport.warm_clients = None
    for client in guard.clients.values():
        with contextlib.suppress(Exception):
            client.shutdown()
    with contextlib.suppress(OSError):
        os.close(lock_fd)
    _say(f"stopped after {guard.served} command(s)")


def ask_status(timeout: float = 2.0) -> dict[str, Any] | None:
    """The running guard's :meth:`Guard.status`, or None when no guard of this user answers."""
    sock = handoff.connect(timeout)
    if sock is None:
        return None
    try:
        sock.settimeout(timeout)
        sock.sendall(handoff.frame(handoff.STATUS))
        kind, payload = handoff.read_frame(sock)
        doc = json.loads(payload) if kind == handoff.EXIT else None
    except (OSError, EOFError, ValueError):
        doc = None
    finally:
        sock.close()
    return doc if isinstance(doc, dict) else None


def _ago(t: float | None) -> str:
    return "-" if t is None else f"{max(0.0, time.time() - t):.0f} s ago"


def show_status(as_json: bool) -> int:
    """``cancelctl guard status``: one row per held profile; exit 0, or 1 with one line when no guard answers."""
    from cancelctl.render import out, out_json

    doc = ask_status()
    if doc is None:
        raise CancelctlError(
            f"no guard is running (nothing answers on {handoff.socket_path()})",
            hint="start one with: cancelctl guard",
            kind="no_guard",
        )
    if as_json:
        out_json({"schema": "cancelctl/1", "guard": doc})
        return 0
    # A guard of another version (still running after an upgrade) may answer another shape: one line, not exit 70.
    try:
        lines = [
            f"guard pid {doc['pid']}: up {_ago(doc['started']).removesuffix(' ago')}, {doc['served']} command(s) run; "
            f"heartbeat {'on' if doc['heartbeat'] else 'off'}; "
            + (
                f"deadman on {doc['deadman']} (TTL {doc['ttl']:g} s, last check-in {_ago(doc['last_checkin'])})"
                if doc.get("deadman")
                else "deadman off"
            )
        ]
        for p in doc["profiles"]:
            orders = "-" if p["open_orders"] is None else f"{p['open_orders']} open ({_ago(p['polled'])})"
            beat = _ago(p["last_heartbeat"]) if doc["heartbeat"] and p["venue"] == "gemini" else "-"
            last = f"last ok {_ago(p['last_ok'])}"
            lines.append("\t".join([p["profile"], p["venue"], p["connection"], last, f"heartbeat {beat}", orders]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CancelctlError(
            f"the guard on {handoff.socket_path()} answered a status this cancelctl cannot read",
            hint="a guard of another version? see it with: cancelctl guard status --json; restart it",
            kind="no_guard",
        ) from None
    for line in lines:
        out(line)
    return 0
