"""Start the suite's ``python -m cancelctl`` processes by forking a pre-imported interpreter.

Why: the suite starts about a thousand real cancelctl processes. A fresh interpreter spends most
of each one's CPU (about 0.3 of 0.45 s) starting Python and importing typer, httpx, rich, keyring,
apprise and cancelctl itself, the same work every time; on a 2-core machine that alone kept the
suite above 250 s (docs/performance.md, "Test suite time"). Here one interpreter per test process
(the "zygote") imports all of that once, and every ``python -m cancelctl ...`` the tests start is a
``fork()`` of it that runs ``cancelctl``'s ``__main__`` exactly as the fresh interpreter would:
its own pid, its own stdin/stdout/stderr (the test's pipes, passed over a Unix socket), its own
environment, working directory, argv and exit status; signals sent to it reach it; the test reads
its output and waits for its exit through :class:`Popen`, a :class:`subprocess.Popen`. The cancelctl
code that runs is the same, from the same files; only the imports were done earlier.

What differs from a fresh interpreter, and how the suite keeps it from mattering:

* Module-level state computed at import time comes from the zygote's environment. So a process is
  forked only when its environment differs from the zygote's in variables that are read at run time
  (:data:`RUN_TIME_VARIABLES`: cancelctl's own, ``HOME``, ``XDG_*``, proxies, ``COLUMNS``...); any
  other difference (``LANG``, ``PYTHON*``, ``TZ``, typer's ``FORCE_COLOR``/``TERMINAL_WIDTH``...)
  gets a fresh interpreter, as does anything but plain ``[sys.executable, "-m", "cancelctl", ...]``
  (``-X importtime``, ``-c``), a ``preexec_fn``, ``pass_fds``, another user or umask, and so does a test
  process whose own umask, ignored or blocked signals, resource limits or priority differ from what they
  were when it started its zygote (a fresh child inherits the test's, a forked one the zygote's).
* The order of imports, and so start-up itself, is not exercised by a forked process: the tests
  that are about start-up (``test_startup.py``, ``test_structure.py``'s fresh-interpreter import check,
  ``benchmarks/``) run their own interpreters with flags, so they are always fresh.
* ``PYTHONHASHSEED``: forked processes share the zygote's hash seed.

A zygote that ended (killed) is replaced by the next process that needs one; the processes it had forked
and not yet reported then read as killed (SIGKILL), though they may still be running.

``CANCELCTL_TESTS_FRESH=1`` runs every process in a fresh interpreter (the suite as it was: about
three times the CPU); ``tests/test_zygote.py`` runs the same commands both ways and compares them.
"""

from __future__ import annotations

import atexit
import gc
import io
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, ClassVar

#: Environment variables that cancelctl and its libraries read when they run, never at import time,
#: so a forked process may have values of its own (checked against typer, rich, httpx, keyring,
#: platformdirs and cancelctl's module-level code; tests/test_zygote.py holds the list to it).
RUN_TIME_VARIABLES = frozenset(
    {
        "HOME", "USER", "LOGNAME", "PATH", "NO_COLOR", "COLUMNS", "LINES", "TERM",
        "PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
        "PYTEST_CURRENT_TEST",
        "RES_OPTIONS",  # glibc reads it when a process first resolves a name
        "PYTHONPATH",  # put on sys.path by the forked process as the interpreter does, unless it shadows a module
        "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
        "FILE_KEYRING_PATH", "SLOW_KEYRING_SECONDS",  # the tests' own keyring backends' (never preloaded)
    }
)  # fmt: skip
RUN_TIME_PREFIXES = ("CANCELCTL_", "_CANCELCTL_")


def fresh_only() -> bool:
    return os.environ.get("CANCELCTL_TESTS_FRESH", "") not in ("", "0")


#: Signals whose disposition a fresh interpreter inherits from the test process (one ignored there, SIG_IGN, stays
#: ignored in a fresh ``python``: Python installs its SIGINT handler only over the default), and the resource limits
#: it inherits; a forked process has the zygote's instead.
INHERITED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTSTP", "SIGCHLD")
INHERITED_LIMITS = ("RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_NPROC")


def process_attributes() -> tuple[object, ...]:
    """What a child inherits from this process besides its environment (umask, ignored and blocked signals,
    resource limits): the fork carries the zygote's, so a test process whose own differ starts a fresh one."""
    import resource
    import signal

    mask = os.umask(0o077)
    os.umask(mask)
    ignored = tuple(
        name for name in INHERITED_SIGNALS
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is signal.SIG_IGN
    )  # fmt: skip
    blocked = tuple(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))) if hasattr(signal, "pthread_sigmask") else ()
    limits = tuple(resource.getrlimit(getattr(resource, n)) for n in INHERITED_LIMITS if hasattr(resource, n))
    return mask, ignored, blocked, limits, os.getpriority(os.PRIO_PROCESS, 0)


def same_interpreter(env: dict[str, str], base: dict[str, str]) -> bool:
    """Whether a process with environment ``env`` may be forked from a zygote started with ``base``."""
    for key in env.keys() | base.keys():
        if key in RUN_TIME_VARIABLES or key.startswith(RUN_TIME_PREFIXES):
            continue
        if env.get(key) != base.get(key):
            return False
    # PYTHONPATH is put on sys.path by the forked process itself, which only a zygote started without one can do
    return not base.get("PYTHONPATH") or env.get("PYTHONPATH") == base.get("PYTHONPATH")


# ----------------------------------------------------------------------------------------------------------
# The zygote (a process of its own: python tests/zygote.py SOCKET)
# ----------------------------------------------------------------------------------------------------------

#: Imported once in the zygote: everything a cancelctl command imports, at start or later.
PRELOAD = (
    "cancelctl.main", "cancelctl.cli", "cancelctl.render", "cancelctl.runner", "cancelctl.transport",
    "cancelctl.verify", "cancelctl.audit", "cancelctl.credentials", "cancelctl.notify", "cancelctl.positions",
    "cancelctl.closing", "cancelctl.guard", "cancelctl.demo", "cancelctl.progress", "cancelctl.venues.gemini",
    "cancelctl.venues.pacifica", "cancelctl.signing.gemini", "cancelctl.signing.pacifica", "cancelctl.sim.server",
    "httpx", "httpcore", "h11", "certifi", "ssl", "rich.console", "rich.table", "rich.text", "rich.live",
    "rich.markup", "rich.panel", "rich.progress", "keyring", "keyring.backends.fail", "nacl.signing",
    "nacl.exceptions", "base58", "tomli_w", "tenacity", "filelock", "platformdirs", "apprise", "getpass",
    "difflib", "decimal", "uuid", "hmac", "hashlib", "tomllib", "email.utils", "ipaddress", "argparse",
)  # fmt: skip


def _preload() -> None:
    import importlib

    from cancelctl import cli
    from cancelctl.cli import COMMANDS

    for name in (*PRELOAD, *(module for module, _ in COMMANDS.values())):
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional module: the forked process imports it itself, as a fresh one would
    # Each command's click tree converted from typer once, as cancelctl's guard does (cancelctl.guard.warm_imports):
    # a forked process runs the converted command (cancelctl.cli.command) instead of converting it again.
    cli.prepared = {}
    for word in (None, *COMMANDS):
        cli.command(word)
    # Nothing the zygote holds is garbage: out of the collector's reach, so that a forked process's collections do
    # not touch (and copy) every page of it.
    gc.collect()
    gc.freeze()


def _stream(fd: int, template: io.TextIOWrapper, unbuffered: bool) -> io.TextIOWrapper:
    """A standard stream on ``fd`` as CPython's start-up makes it (Python/pylifecycle.c, ``create_stdio``)."""
    mode = "rb" if fd == 0 else "wb"
    raw = io.FileIO(fd, mode, closefd=False)
    raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]  # type: ignore[misc]
    buffer: Any = raw if unbuffered and fd else (io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw))
    line_buffering = not unbuffered and (raw.isatty() or fd == 2) and fd != 0
    return io.TextIOWrapper(
        buffer,
        encoding=template.encoding,
        errors=template.errors,
        newline="\n",
        line_buffering=line_buffering,
        write_through=unbuffered and fd != 0,
    )


def _exit_code(code: object) -> int:
    """SystemExit's argument as the interpreter turns it into an exit status (Python/pythonrun.c)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:  # noqa: BLE001 - as the interpreter: a failed print does not change the status
        pass
    return 1


def _child(fds: list[int], request: dict[str, Any]) -> None:
    """In the forked process: become ``python -m cancelctl ARGV``, run it, exit as the interpreter would."""
    status = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, 65536)  # the zygote's socket, its connections, the passed fds
        if request["new_session"]:
            os.setsid()
        os.chdir(request["cwd"])
        zygote_path = os.environ.get("PYTHONPATH")
        os.environ.clear()
        os.environ.update(request["env"])
        unbuffered = bool(request["env"].get("PYTHONUNBUFFERED"))
        templates = (sys.__stdin__, sys.__stdout__, sys.__stderr__)
        sys.stdin, sys.stdout, sys.stderr = (_stream(fd, t, unbuffered) for fd, t in enumerate(templates))  # type: ignore[arg-type]
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        sys.argv = ["-m", *request["argv"]]
        sys.path[0] = os.getcwd()  # as ``python -m`` has it: the working directory, symbolic links resolved
        if not zygote_path:  # where the interpreter puts PYTHONPATH: right after sys.path[0], duplicates removed
            sys.path[1:] = _unique([*_python_path(request["env"], request["cwd"]), *sys.path[1:]])
    except KeyboardInterrupt:  # a SIGINT before the interpreter would have run anything: death by SIGINT, as there
        _die_by_sigint()
    except BaseException:  # noqa: BLE001 - the test sees status 127 and whatever reached its stderr
        os._exit(127)
    try:
        status = _main()
    except BaseException:  # noqa: BLE001 - never back into the zygote's loop (a second Ctrl-C while it reported)
        status = 1
    os._exit(status)


def _die_by_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(130)  # not reached


def _main() -> int:
    """Run cancelctl's ``__main__`` and the interpreter's shutdown (Py_RunMain, Py_FinalizeEx)."""
    import atexit
    import runpy
    import signal

    status, interrupted = 0, False
    try:
        runpy.run_module("cancelctl", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        status = _exit_code(exc.code)
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        status, interrupted = 1, True
    except BaseException:  # noqa: BLE001 - an uncaught exception: traceback, status 1
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        status = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # waits for non-daemon threads
    except KeyboardInterrupt:
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - as Py_FinalizeEx: a failed final flush is status 120
            status = 120
    if interrupted:  # Python re-raises an uncaught KeyboardInterrupt as death by SIGINT (bpo-1054041)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return status


def _python_path(env: dict[str, str], cwd: str) -> list[str]:
    """The directories of ``PYTHONPATH`` in ``env`` as the interpreter puts them on ``sys.path`` (Modules/getpath.py:
    each made absolute against the working directory ``cwd``, an empty one being ``cwd`` itself); the zygote itself
    is started without one."""
    value = env.get("PYTHONPATH", "")
    return [os.path.normpath(os.path.join(cwd, d)) for d in value.split(os.pathsep)] if value else []


def _unique(entries: list[str]) -> list[str]:
    """``entries`` without repeats, each where it first came (site.removeduppaths)."""
    seen: set[str] = set()
    return [e for e in entries if not (e in seen or seen.add(e))]  # type: ignore[func-returns-value]


#: Modules a fresh interpreter imports from PYTHONPATH while it starts (site.py), whether or not the zygote has one.
STARTUP_MODULES = frozenset({"sitecustomize", "usercustomize"})


def _homes(name: str) -> set[str]:
    """The directories the imported top-level module ``name`` was found in (empty: built in, frozen, or unknown)."""
    module = sys.modules.get(name)
    homes = set()
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        folder = os.path.dirname(os.path.realpath(file))
        homes.add(os.path.dirname(folder) if hasattr(module, "__path__") else folder)
    elif hasattr(module, "__path__"):  # a namespace package: each of its portions' parents
        homes.update(os.path.dirname(os.path.realpath(p)) for p in list(module.__path__))
    return homes


def _shadowed(directories: list[str]) -> bool:
    """Whether a module in ``directories`` (the working directory, then PYTHONPATH's, as a fresh ``python -m`` searches
    them first) has the name of one the zygote has already imported from elsewhere, or runs at start-up
    (sitecustomize): a fresh interpreter would import that one instead (a test's stand-in), a forked process would
    keep the zygote's. A PYTHONPATH entry that is a file (a zip archive) cannot be listed: fresh too."""
    imported = {name.partition(".")[0] for name in sys.modules} | STARTUP_MODULES
    for directory in directories:
        try:
            entries = os.listdir(directory)
        except NotADirectoryError:
            return True  # a zip or an egg: its modules are not listed here
        except OSError:
            continue
        here = os.path.realpath(directory)
        for entry in entries:
            name = entry.partition(".")[0]
            if name in imported and here not in _homes(name):
                return True
    return False


def serve(path: str) -> None:
    """The zygote: preload, listen on ``path``, fork one process per request, report each one's exit status.

    Protocol (SOCK_SEQPACKET, one connection per process): the client sends one JSON message
    ``{"argv", "env", "cwd", "new_session"}`` with three file descriptors (stdin, stdout, stderr);
    the zygote answers ``b"<pid>"``, and ``b"<wait status>"`` when the process has exited, then closes.
    Ends when its stdin (a pipe from the test process) reaches end of file.
    """
    import selectors

    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(128)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                if not os.read(sys.stdin.fileno(), 4096):
                    return
            elif key.data == "accept":
                conn, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                request = json.loads(message)
                path = [] if os.environ.get("PYTHONPATH") else _python_path(request["env"], request["cwd"])
                if _shadowed([request["cwd"], *path]):
                    for fd in fds:
                        os.close(fd)
                    conn.send(b"fresh")
                    conn.close()
                    continue
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        _child(fds, request)
                finally:
                    for fd in fds:
                        os.close(fd)
                conn.send(str(pid).encode())
                pidfd = os.pidfd_open(pid)
                selector.register(pidfd, selectors.EVENT_READ, (pid, conn))
            else:
                pid, conn = key.data
                selector.unregister(key.fileobj)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                try:
                    conn.send(str(status).encode())
                except OSError:
                    pass  # the test gave up on it
                conn.close()


# ----------------------------------------------------------------------------------------------------------
# The test side
# ----------------------------------------------------------------------------------------------------------


class _Zygote:
    """This test process's zygote, started on first use; None when it could not start."""

    lock = threading.Lock()
    process: subprocess.Popen | None = None
    path = ""
    env: ClassVar[dict[str, str]] = {}
    attributes: tuple[object, ...] = ()  # process_attributes() of this process when it started the zygote
    failed = False
    registered = False  # _stop registered with atexit (once, whichever zygote is current then)
    forked = 0
    fresh = 0

    @classmethod
    def address(cls) -> str | None:
        with cls.lock:
            if cls.process is not None and cls.process.poll() is not None:  # it died (killed): a new one
                sys.stderr.write(f"tests/zygote.py: the zygote ended ({cls.process.returncode}); starting another\n")
                cls._forget()
            if cls.process is None and not cls.failed:
                cls._start()
            return None if cls.failed else cls.path

    @classmethod
    def environment(cls) -> dict[str, str]:
        """The zygote's environment (this process's, when it starts)."""
        return cls.env or dict(os.environ)

    @classmethod
    def _start(cls) -> None:
        directory = tempfile.mkdtemp(prefix="cancelctl-zygote-")
        cls.path = os.path.join(directory, "socket")
        cls.env = dict(os.environ)
        cls.attributes = process_attributes()
        try:
            cls.process = subprocess.Popen(
                [sys.executable, __file__, cls.path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=os.getcwd(),
                env=cls.env,
            )
            assert cls.process.stdout is not None
            ready, _, _ = select.select([cls.process.stdout], [], [], 60)
            if not ready or cls.process.stdout.readline() != b"ready\n":
                raise OSError("the zygote did not start")
            if not cls.registered:
                atexit.register(cls._stop)
                cls.registered = True
        except OSError as exc:
            cls.failed = True
            sys.stderr.write(f"tests/zygote.py: every cancelctl process runs in a fresh interpreter: {exc}\n")


    @classmethod
    def _forget(cls) -> None:
        """Drop a zygote that has ended (its pipe closed, its socket and directory removed)."""
        process, cls.process = cls.process, None
        for pipe in (process.stdin, process.stdout) if process is not None else ():
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        try:
            os.unlink(cls.path)
            os.rmdir(os.path.dirname(cls.path))
        except OSError:
            pass

    @classmethod
    def _stop(cls) -> None:
        """End of the test process: the zygote sees end of file and exits; waited for, so that its CPU (and its
        processes') counts in this process's ``RUSAGE_CHILDREN``."""
        process = cls.process
        if process is not None and process.stdin is not None:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None:
            cls._forget()  # its socket and directory: nothing of the suite is left in /tmp


class Popen(subprocess.Popen):
    """``subprocess.Popen`` whose ``[sys.executable, "-m", "cancelctl", ...]`` processes are forked from the zygote.

    Anything else, or anything the zygote cannot reproduce (see the module's docstring), starts as
    ``subprocess.Popen`` would. ``forked`` says which one it was.
    """

    forked = False
    _conn: socket.socket | None = None

    def _execute_child(  # type: ignore[override]
        self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo, creationflags, shell,
        p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, restore_signals, gid, gids, uid, umask,
        start_new_session, process_group,
    ):  # fmt: skip
        environment = dict(os.environ if env is None else env)
        address = None
        if (
            not fresh_only()
            and same_interpreter(environment, _Zygote.environment())
            and isinstance(args, (list, tuple))
            and list(args[:3]) == [sys.executable, "-m", "cancelctl"]
            and all(isinstance(a, str) for a in args)
            and executable is None
            and preexec_fn is None
            and not pass_fds
            and not shell
            and restore_signals
            and (gid, gids, uid) == (None, None, None)
            and process_group in (None, -1)
            and umask < 0
            and _execable(args, environment, cwd)
        ):
            address = _Zygote.address()
            if address is not None and process_attributes() != _Zygote.attributes:
                address = None  # a umask, an ignored or blocked signal, a limit of the test's own: fresh

        def fresh() -> None:
            """Start it as subprocess.Popen does (a fresh interpreter for cancelctl)."""
            if list(args[:3]) == [sys.executable, "-m", "cancelctl"]:
                _Zygote.fresh += 1
            return super(Popen, self)._execute_child(
                args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo, creationflags, shell,
                p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, restore_signals, gid, gids, uid, umask,
                start_new_session, process_group,
            )  # fmt: skip

        if address is None:
            return fresh()
        request = {
            "argv": list(args[3:]),
            "env": environment,
            "cwd": os.path.abspath(os.fspath(cwd)) if cwd is not None else os.getcwd(),
            "new_session": bool(start_new_session),
        }
        fds = [p2cread if p2cread != -1 else 0, c2pwrite if c2pwrite != -1 else 1, errwrite if errwrite != -1 else 2]
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(address)
            socket.send_fds(conn, [json.dumps(request).encode()], fds)
            answer = conn.recv(64)
            if not answer:
                raise OSError("the zygote closed the connection")
            if answer == b"fresh":  # the directory or PYTHONPATH holds a module the zygote has imported (_shadowed)
                conn.close()
                return fresh()
            self.pid = int(answer)
        except BaseException:
            conn.close()
            self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]
            raise
        self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]
        self._conn = conn
        self._child_created = True
        self.forked = True
        _Zygote.forked += 1

    def _status(self, block: bool) -> int | None:
        """The wait status the zygote reported, or None while the process runs (``block=False``)."""
        conn = self._conn
        assert conn is not None
        if not block and not select.select([conn], [], [], 0)[0]:
            return None
        data = conn.recv(64)
        conn.close()
        self._conn = None
        return int(data) if data else 9  # the zygote died: the process is as good as killed (SIGKILL)

    def _internal_poll(self, _deadstate=None, _waitpid=None, _WNOHANG=None, _ECHILD=None):  # type: ignore[override]
        if not self.forked:
            return super()._internal_poll(_deadstate)  # type: ignore[misc]
        if self.returncode is None and self._waitpid_lock.acquire(False):  # type: ignore[attr-defined]
            try:
                if self.returncode is None:
                    status = self._status(block=False)
                    if status is not None:
                        self._handle_exitstatus(status)  # type: ignore[attr-defined]
            except OSError:
                if _deadstate is not None:
                    self.returncode = _deadstate
            finally:
                self._waitpid_lock.release()  # type: ignore[attr-defined]
        return self.returncode

    def _wait(self, timeout):  # type: ignore[override]
        if not self.forked:
            return super()._wait(timeout)  # type: ignore[misc]
        end = None if timeout is None else time.monotonic() + timeout
        with self._waitpid_lock:  # type: ignore[attr-defined]
            while self.returncode is None:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                assert self._conn is not None
                if select.select([self._conn], [], [], remaining)[0]:
                    self._handle_exitstatus(self._status(block=True))  # type: ignore[attr-defined]
        return self.returncode


def _execable(args: Any, env: dict[str, str], cwd: Any) -> bool:
    """Whether ``exec`` could start this process at all: a NUL in an argument or the environment, a variable name with
    ``=``, or a working directory that is not one make ``subprocess.Popen`` raise (ValueError, FileNotFoundError...),
    which :meth:`Popen.fresh` then does; a forked process would have run with them (exit 127, or an argument no
    real process can receive)."""
    words = [*map(str, args), *env, *env.values()]
    if any("\0" in w for w in words) or any("=" in k for k in env):
        return False
    return cwd is None or os.path.isdir(cwd)


def run(*popenargs: Any, input: Any = None, capture_output: bool = False, timeout: float | None = None,
        check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess:  # fmt: skip
    """``subprocess.run`` with :class:`Popen` (the standard library's, which names its own Popen)."""
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with Popen(*popenargs, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        except BaseException:
            process.kill()
            raise
        retcode = process.poll()
        if check and retcode:
            raise subprocess.CalledProcessError(retcode, process.args, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(process.args, retcode, stdout, stderr)  # type: ignore[arg-type]


def start() -> None:
    """Start this test process's zygote now (about a second: it imports everything), so that no test's timed
    process waits for it (``pytest_sessionstart`` in tests/conftest.py)."""
    if not fresh_only():
        _Zygote.address()


def counts() -> tuple[int, int]:
    """How many cancelctl processes this test process forked, and how many it started fresh."""
    return _Zygote.forked, _Zygote.fresh


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # as ``python -m`` has it: the working directory, not tests/
    serve(sys.argv[1])
