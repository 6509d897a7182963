"""The hand-off: give the command to a running ``cancelctl guard`` before anything heavy is imported.

The entry point (:func:`main`, before anything else). Standard library only, and only
its C parts once a guard's socket exists (``_socket``, ``_json``, the
built-in sha256): when no guard runs, the cold path pays one ``stat`` and an
argv scan, nothing else; with one, the hand-off imports no Python module
that the interpreter had not already loaded (no ``socket``, ``json``,
``hashlib``, ``enum`` or ``re``).

:func:`try_guard` returns the exit code when the guard ran the command, or
None when the caller must run it cold: no guard, a socket that does not
answer ``R`` (ready) within :data:`BUDGET_S`, a guard of another user, a
guard that declines (busy, a profile it does not hold, a different
environment), ``--no-guard``, ``CANCELCTL_NO_GUARD=1``, or a command the
guard does not take. The protocol and every failure are in docs/design.md
("The guard").
"""

import os
import sys

# No ``from __future__ import annotations`` here or in cancelctl.main: it imports ``__future__``, 0.67 M instructions
# of the client's 46 M (callgrind), so the annotations below are evaluated when the module loads.
TYPE_CHECKING = False  # mypy reads the name as true; importing typing would cost more than the whole hand-off
if TYPE_CHECKING:
    from typing import Any
else:
    Any = object  # what the annotations evaluate to at run time

BUDGET_S = 0.020  # s: connect, send the request and read the guard's "ready" within this, or run cold
BUDGET_VAR = "CANCELCTL_GUARD_BUDGET_MS"  # another budget, in ms (a machine so loaded that 20 ms is too short)
SOCKET_NAME = "guard.sock"
LOCK_NAME = "guard.lock"

#: The commands the guard runs: command word -> the sub-command words it takes (empty: no sub-command).
GUARDED: dict[str, frozenset[str]] = {
    "panic": frozenset(),
    "orders": frozenset(),
    "positions": frozenset(),
    "cancel": frozenset({"all", "session", "order", "pacifica"}),
}
#: Options that end the hand-off at once: help, version and completion are not the guard's business.
COLD_WORDS = frozenset({"--no-guard", "--help", "-h", "--version", "--install-completion", "--show-completion"})

#: The caller's environment variables the guard applies for the request (their value, or unset).
APPLIED = (
    "CANCELCTL_PROFILE",
    "CANCELCTL_TIMEOUT",
    "CANCELCTL_DEBUG",
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "COLORTERM",
    "COLUMNS",
    "LINES",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)
#: Variables that must be the same in the caller and the guard, set or unset alike (compared as a digest, never
#: sent): where the config, state and keyring are, which CA and proxy the connections use. Every other
#: ``CANCELCTL_*`` variable (per-profile secrets and ``*_FILE``, the keyring passphrase) the caller has set must
#: have the same value in the guard; those the caller has not set are the guard's own business (its
#: LoadCredential= files, say).
SAME = (
    "CANCELCTL_CONFIG_DIR",
    "CANCELCTL_STATE_DIR",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",  # where the file keyrings are (keyrings.cryptfile: $XDG_DATA_HOME/python_keyring/)
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "PYTHON_KEYRING_BACKEND",
)
NOT_COMPARED = frozenset({"CANCELCTL_NO_GUARD", "CANCELCTL_COMPLETE", BUDGET_VAR, *APPLIED})
_WANTED = frozenset({*APPLIED, *SAME})  # with every CANCELCTL_* name: what a request reads of the environment

# Frame types (one byte, then a 4-byte big-endian length, then the payload).
REQUEST, GO, INTERRUPT, STATUS = b"Q", b"G", b"I", b"S"  # client -> guard
READY, BUSY, DECLINED, STDOUT, STDERR, EXIT = b"R", b"B", b"D", b"O", b"E", b"X"  # guard -> client
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
#: ``time.monotonic()`` when the cold path took over from a guard that had said "go" and then gave no answer (None:
#: it did not): :func:`cancelctl.transport.run_start` counts the cold run's ``--timeout`` from here.
resumed: float | None = None
#: The caller's first SIGINT, SIGTERM or SIGHUP from the moment it found a guard's socket until the cold run's own
#: handlers are in (None: none came). A command the guard handed back (declined, busy, gone) then runs cold only to
#: report that signal: :func:`cancelctl.main.run` raises it first thing, so nothing is sent (docs/design.md, "The
#: guard"). It was lost: the cold run installed its handlers over it and sent every cancel, exit 0.
interrupted: int | None = None
#: Whether the guard had the caller's "go" and then gave no whole answer (it went away, fell silent, or sent no exit
#: code): what it sent is not known. Said in the interrupted cold run's error line.
unanswered = False
_before: dict[int, Any] = {}  # the signal handlers from before the hand-off, given back when the guard answered


def _record(signum: int, frame: object) -> None:
    """The caller's handler from the moment it found a guard's socket: keep the first signal (see
    :data:`interrupted`); the process goes on (a read on the socket resumes, PEP 475)."""
    global interrupted
    if interrupted is None:
        interrupted = signum


def _catch(handler: Any) -> None:
    """SIGINT, SIGTERM and SIGHUP to ``handler`` (main thread only; elsewhere nothing changes), keeping in
    :data:`_before` the handlers from before the hand-off."""
    import _signal as signal  # type: ignore[import-not-found]  # the C module: ``signal`` builds its enums first

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if isinstance(sig, int):
            try:
                old = signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                continue
            _before.setdefault(sig, old)


def _release() -> None:
    """The guard answered: the handlers from before the hand-off come back, or SIG_IGN after a signal (the process
    only exits now; a further Ctrl-C must not turn into a traceback)."""
    import _signal as signal

    for sig, handler in _before.items():
        try:
            signal.signal(sig, signal.SIG_IGN if interrupted is not None else handler)
        except (ValueError, OSError, TypeError):
            pass


def socket_dir() -> str:
    """``$XDG_RUNTIME_DIR/cancelctl``; without an absolute ``XDG_RUNTIME_DIR``: ``$TMPDIR`` (else ``/tmp``)
    ``/cancelctl-UID``. The guard makes it 0700 and refuses one that is not its user's own."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if base and os.path.isabs(base):
        return os.path.join(base, "cancelctl")
    tmp = os.environ.get("TMPDIR", "")
    return os.path.join(tmp if os.path.isabs(tmp) else "/tmp", f"cancelctl-{os.getuid()}")


def socket_path() -> str:
    return os.path.join(socket_dir(), SOCKET_NAME)


def maybe_guarded(argv: list[str]) -> bool:
    """A quick look without parsing: could ``argv`` be a command the guard runs? (The guard decides with
    :func:`words`; a wrong guess costs one round trip on the socket and the cold path.)"""
    for word in argv:
        if word == "--" or word in COLD_WORDS:
            return False
        if word in GUARDED:
            return True
    return False


def words(argv: list[str]) -> list[str] | None:
    """The command path of ``argv`` (``["panic"]``, ``["cancel", "all"]``) when the guard takes that command, else
    None: the guard's check, made with the parser the command itself will use (:func:`cancelctl.flags.arrange`),
    so no spelling of the line can run another command than the one checked."""
    from cancelctl.flags import ROOT_OPTIONS, arrange

    for word in argv:
        if word == "--" or word in COLD_WORDS:
            return None  # after "--" every word is an argument: not worth the guard's time to read
    arranged = arrange(argv)
    i = 0
    while i < len(arranged) and arranged[i] in ROOT_OPTIONS:
        i += 1
    path = arranged[i : i + 2]
    if not path or path[0] not in GUARDED:
        return None
    subs = GUARDED[path[0]]
    if subs and (len(path) < 2 or path[1] not in subs):
        return None
    return path if subs else path[:1]


_sha256_new: Any = None  # the built-in sha256 constructor, found once per process


def _sha256() -> Any:
    """A sha256 object from the interpreter's built-in module (``hashlib`` would load OpenSSL first). The constructor
    is looked up once: a failed ``import`` searches every ``sys.path`` entry, and the guard digests every request."""
    global _sha256_new
    if _sha256_new is None:
        try:
            if sys.version_info >= (3, 12):
                from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]
            else:
                from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:  # an interpreter built without its own sha2 module
            from hashlib import sha256
        _sha256_new = sha256
    return _sha256_new()


def secret_names(environ: dict[str, str] | Any) -> list[str]:
    """The caller's ``CANCELCTL_*`` variables that are neither per-request knobs nor in :data:`SAME`: per-profile
    secrets, their ``*_FILE`` paths, the keyring passphrase (names only)."""
    return sorted(n for n in environ if n.startswith("CANCELCTL_") and n not in NOT_COMPARED and n not in SAME)


def _proxy_name(name: str) -> bool:
    """A proxy variable in any spelling (``Https_Proxy``): httpx reads them all (``urllib.request.getproxies``); or a
    keyring backend's property (``KEYRING_PROPERTY_FILE_PATH``: keyring sets every ``KEYRING_PROPERTY_*`` on its
    backend, keyring/backend.py, so it can name another keyring file). Compared by :func:`env_digest` like
    :data:`SAME`."""
    return name[-6:].lower() == "_proxy" or name.startswith("KEYRING_PROPERTY_")


def env_digest(environ: dict[str, str] | Any, names: list[str] | None = None) -> str:
    """sha256 over ``names`` (default :data:`SAME`, every proxy variable in ``environ`` spelt otherwise and every
    ``KEYRING_PROPERTY_*``: :func:`_proxy_name`) as set
    in ``environ``: name and value, or name and unset. Never sent in clear: the values can be secrets."""
    h = _sha256()
    if names is None:
        names = [*SAME, *sorted(n for n in environ if _proxy_name(n) and n not in SAME)]
    for n in names:
        value = environ.get(n)
        h.update(n.encode() + (b"\1" + value.encode("utf-8", "surrogateescape") if value is not None else b"\2"))
        h.update(b"\0")
    return str(h.hexdigest())


def _char(c: str) -> str:
    """One character of a JSON string as ASCII: itself when printable, else its ``\\u`` escape(s)."""
    if c == '"' or c == "\\":
        return "\\" + c
    if " " <= c <= "~":
        return c
    code = ord(c)
    if code > 0xFFFF:  # a surrogate pair, as JSON spells a character beyond the BMP
        code -= 0x10000
        return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"
    return f"\\u{code:04x}"


def string(text: str) -> str:
    """``text`` as a JSON string in ASCII (what ``json.dumps`` gives, up to the spelling of escapes). Plain
    Python: the C encoder (``_json``) is an extension module to load, 0.45 M instructions (callgrind), for the few
    short strings of a request."""
    if text.isascii() and text.isprintable():  # every character in " " .. "~": only quotes and backslashes escaped
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + "".join(map(_char, text)) + '"'


def dumps(value: object) -> str:
    """JSON text of ``value`` (dicts with str keys, lists, str, int, float, bool, None) in ASCII, without ``json``
    (it would import ``re`` and its decoder first)."""
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{string(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(type(value).__name__)


def process_start() -> float | None:
    """This process's start on the monotonic clock (s), as :func:`cancelctl.transport.run_start` reads it; None
    when unknown. The guard counts the caller's ``--timeout`` from here, as the cold path does."""
    import time

    try:
        fd = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)  # 3 system calls; open() makes 9 and 2 objects
        try:
            stat = os.read(fd, 4096)  # about 300 bytes, generated whole at the first read
        finally:
            os.close(fd)
        fields = stat.rsplit(b")", 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.monotonic() - age if 0.0 <= age < 1.0 else None


def _utf8(stream: Any) -> bool:
    encoding = getattr(stream, "encoding", None) or ""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def _width() -> int | None:
    for fd in (0, 1, 2):  # the order rich reads them in (rich.console._STD_STREAMS)
        try:
            return os.get_terminal_size(fd).columns
        except (OSError, ValueError):
            continue
    return None


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def read_frame(sock: Any, deadline: float | None = None) -> tuple[bytes, bytes]:
    """One frame from ``sock``; EOFError when the peer closed (or sent a torn frame); TimeoutError when
    ``deadline`` (``time.monotonic()``, s) passes first, however the peer trickles its bytes (a socket timeout
    alone bounds each ``recv``, not the frame)."""
    head = _read_exact(sock, 5, deadline)
    size = int.from_bytes(head[1:], "big")
    if size > 64 << 20:
        raise EOFError("frame too large")
    return head[:1], _read_exact(sock, size, deadline)


def _read_exact(sock: Any, n: int, deadline: float | None = None) -> bytes:
    import time

    chunks = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(left)
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def peer_uid(sock: Any) -> int:
    """The uid of the process at the other end of a Unix socket (``SO_PEERCRED``, Linux: struct ucred {pid, uid,
    gid}, three native ints)."""
    import _socket

    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(cred[4:8], sys.byteorder, signed=True)


def budget() -> float:
    """The hand-off's budget (s): ``$CANCELCTL_GUARD_BUDGET_MS`` when it is a number of ms in (0, 10000], else
    :data:`BUDGET_S`."""
    try:
        ms = float(os.environ.get(BUDGET_VAR, ""))
    except ValueError:
        return BUDGET_S
    return ms / 1000 if 0 < ms <= 10_000 else BUDGET_S


def connect(budget: float = BUDGET_S) -> Any:
    """A connected socket to this user's guard, or None (no socket, refused, too slow, another user's).

    A ``_socket.socket`` (the C type under :class:`socket.socket`): importing ``socket`` costs more than the
    whole hand-off."""
    import _socket

    path = socket_path()
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(budget)
        sock.connect(path)
        if peer_uid(sock) != os.getuid():
            sock.close()
            return None
    except OSError:
        sock.close()
        return None
    return sock


def try_guard(argv: list[str]) -> int | None:
    """Run ``argv`` through the guard: its exit code, after writing its stdout and stderr here; None: run cold."""
    if (os.environ.get("CANCELCTL_NO_GUARD", "").strip().lower() in TRUE_WORDS) or not maybe_guarded(argv):
        return None
    try:
        if not os.path.exists(socket_path()):  # the cold path's whole cost when no guard runs
            return None
    except (OSError, ValueError):
        return None
    if sys.stdout is None or sys.stderr is None or not (_utf8(sys.stdout) and _utf8(sys.stderr)):
        return None
    import time

    began = time.monotonic()
    allowed = budget()
    _catch(_record)  # a signal is kept, whichever way the command goes (as main() does; here for an in-process caller)
    sock = connect(allowed)
    if sock is None:
        return None
    try:
        code = _hand_off(sock, argv, began, allowed)
    finally:
        sock.close()
    if code is not None:
        _release()
    return code


def main() -> None:
    """The entry point of the console script (``cancelctl``) and of ``python -m cancelctl``: the hand-off to a
    running guard, else the cold path (:func:`cancelctl.main.main`). Through a guard, ``cancelctl.main`` is never
    imported: the client loads this module and the interpreter's C modules only (0.74 M instructions less, of
    44.0 M, callgrind).

    From here a SIGINT, SIGTERM or SIGHUP is kept (:data:`interrupted`) until the run's own handlers are in, and
    then reported by the run (130/143, nothing sent): before, one in the milliseconds of imports between here and
    those handlers was Python's own (a ``KeyboardInterrupt`` traceback; SIGTERM's silent death)."""
    _catch(_record)
    handed = try_guard(sys.argv[1:])
    if handed is not None:
        sys.exit(handed)
    from cancelctl.main import main as cold

    cold()


def _hand_off(sock: Any, argv: list[str], began: float, allowed: float) -> int | None:
    import time

    tty = {"stdout": _isatty(1), "stderr": _isatty(2)}
    # The variables the request reads, in a plain dict: one pass over os.environ, where each lookup of a name that
    # is not set raises and catches a KeyError inside os.environ (about half the client's environment work).
    mine = {n: os.environ[n] for n in os.environ if n in _WANTED or n.startswith("CANCELCTL_") or _proxy_name(n)}
    env = {n: mine[n] for n in APPLIED if n in mine}
    if (tty["stdout"] or tty["stderr"]) and "COLUMNS" not in env:
        width = _width()
        if width:
            env["COLUMNS"] = str(width)  # rich reads COLUMNS before the terminal: the guard's table is this wide
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    names = secret_names(mine)
    request = {
        "v": 1,
        "argv": argv,
        "reason": _reason(argv),
        "start": process_start() or began,
        "tty": tty,
        "env": env,
        "same": env_digest(mine),
        "secrets": {"names": names, "digest": env_digest(mine, names)},
        "cwd": cwd,
        "pid": os.getpid(),
    }
    try:
        sock.settimeout(max(0.001, allowed - (time.monotonic() - began)))
        sock.sendall(frame(REQUEST, dumps(request).encode("ascii")))
        kind, _ = read_frame(sock, began + allowed)
        if kind != READY:
            return None  # busy, or a request it does not take: nothing was done
        if interrupted is not None:  # a Ctrl-C meanwhile: no "go", so the guard acts on nothing; reported cold
            return None
        sock.sendall(frame(GO))  # from here the guard runs the command; this process only shows its answer
    except (OSError, EOFError):
        return None
    return _answer(sock, argv)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _reason(argv: list[str]) -> str | None:
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word == "--reason" and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith("--reason="):
            return word.partition("=")[2]
    return None


def _timeout(argv: list[str]) -> float:
    value = os.environ.get("CANCELCTL_TIMEOUT", "10")
    for i, word in enumerate(argv):
        if word == "--timeout" and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith("--timeout="):
            value = word.partition("=")[2]
    try:
        seconds = float(value)
    except ValueError:
        return 10.0
    return min(max(seconds, 0.1), 3600.0) if seconds == seconds else 10.0


def _answer(sock: Any, argv: list[str]) -> int | None:
    """Show the guard's answer; its exit code. None (run cold) when it declined, or stopped before any output."""
    import _signal as signal  # the C module: ``signal`` builds its enums first
    import time

    global unanswered
    seen: list[int] = [interrupted] if interrupted is not None else []  # one kept since the "go" went out

    def tell(signum: int) -> None:  # the guard's command gets the caller's signal (an ``I`` frame)
        try:
            sock.sendall(frame(INTERRUPT, bytes([signum])))
        except OSError:
            pass

    def forward(signum: int, frame_: object) -> None:
        _record(signum, frame_)
        seen.append(signum)
        if len(seen) == 1:
            tell(signum)
        elif len(seen) == 2:  # as the cold path: a second signal ends the process soon whatever is stuck
            import threading

            code = 130 if seen[0] == signal.SIGINT else 143  # the first signal decides, not the one arming this
            timer = threading.Timer(2.0, os._exit, args=(code,))
            timer.daemon = True
            timer.start()

    _catch(forward)
    if seen:  # it landed between the "go" and the line above: the guard's command gets it now
        tell(seen[0])
    wrote = False
    stdout_ok = True
    # The guard answers by the command's own deadline (``--timeout`` plus its grace); past that plus a margin it is
    # stuck, and the command runs cold (cancels are idempotent: a second cancel-all finds nothing left).
    until = time.monotonic() + _timeout(argv) + 5.0
    try:
        while True:
            try:
                kind, payload = read_frame(sock, until)
            except (OSError, EOFError) as e:
                if wrote:
                    os.write(2, b"cancelctl: error: the guard stopped in the middle of its report; outcome unknown\n")
                    return 5
                why = "did not answer in time" if isinstance(e, TimeoutError) else "stopped before answering"
                os.write(2, f"cancelctl: warning: the guard {why}; running without it\n".encode())
                unanswered = True
                _resume()
                return None
            if kind == DECLINED:
                _resume()
                return None
            if kind == EXIT:
                code = payload.decode("ascii", "replace")
                if code.isdecimal() and len(code) <= 3 and int(code) <= 255:
                    return int(code)
                if wrote:  # part of a report, then no exit code: what was done is not known
                    os.write(2, b"cancelctl: error: the guard ended its report without an exit code; outcome unknown\n")
                    return 5
                os.write(2, b"cancelctl: warning: the guard answered no exit code; running without it\n")
                unanswered = True
                _resume()
                return None
            if kind == STDOUT and stdout_ok:
                wrote = True
                stdout_ok = _write(1, payload)
            elif kind == STDERR:
                wrote = True
                _write(2, payload)
    finally:
        _catch(_record)  # handed back: a signal from now on is kept for the cold run (try_guard releases on an answer)


def reset() -> None:
    """Forget this process's hand-off: the signal it kept (:data:`interrupted`), when the cold path took over
    (:data:`resumed`) and whether a guard went silent (:data:`unanswered`) belong to the one command handed off.
    :func:`cancelctl.main.run` calls it as it ends, so a later run in the same process (an in-process caller, a
    test) does not start with an old signal or count its ``--timeout`` from an old time."""
    global interrupted, resumed, unanswered
    interrupted, resumed, unanswered = None, None, False


def _resume() -> None:
    """The cold path takes over after "go": its ``--timeout`` counts from now (:data:`resumed`)."""
    import time

    global resumed
    resumed = time.monotonic()


def _write(fd: int, data: bytes) -> bool:
    """Write all of ``data`` to ``fd``; False once the reader has gone (EPIPE: the rest is dropped, as cold)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return False
        except OSError:
            return False
        view = view[n:]
    return True
