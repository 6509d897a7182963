"""HTTP transport: send a prepared request under the run's deadline, and retry safely.

Every failure is classified by what it means for the order, not by the
exception's type:

* :class:`~cancelctl.errors.NotSent` (exit 75): nothing reached the venue
  (connection refused, DNS failure, connect timeout), or the venue refused
  to act before doing anything (429, 503 maintenance). Safe to retry.
* :class:`~cancelctl.errors.OutcomeUnknown` (exit 5): the request may have
  been processed and no answer says so (read timeout, connection reset
  mid-answer, unreadable body, 500/502/504).

Cancels are idempotent (cancelling a cancelled order answers the same), so
both are retried, re-signed with a fresh nonce or timestamp each time, with
exponential backoff or ``Retry-After``, never past the deadline. If any
attempt may have been processed and none gave an answer, the result is
OutcomeUnknown even when the last attempt was not sent.
"""

from __future__ import annotations

import _thread
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cancelctl import __version__
from cancelctl.errors import ConfigError, NotSent, OutcomeUnknown
from cancelctl.signing import PreparedRequest

if TYPE_CHECKING:
    import socket
    import ssl

    import httpx

T = TypeVar("T")
USER_AGENT = f"cancelctl/{__version__}"


YOUNG_PROCESS_S = 1.0  # a process younger than this spent its life starting this run

#: Set by ``cancelctl guard`` while it runs a caller's command: the caller's own start (monotonic s), so the
#: caller's ``--timeout`` counts from when the caller started, as on the cold path.
start_override: float | None = None
#: Set by ``cancelctl guard``: profile name -> the httpx client whose warm connection that profile's venue
#: client uses.
warm_clients: dict[str, httpx.Client] | None = None
#: Set by ``cancelctl guard`` while it runs a caller's command: called (in the sending thread, never raising) each
#: time any request has been written whole, as :attr:`Deadline.on_written`; the guard starts listening for the
#: caller's Ctrl-C there, once the first cancel is on the wire (:meth:`cancelctl.guard.Caller.start_listening`).
on_any_written: Callable[[], object] | None = None


def run_start() -> float:
    """When the run began, on the monotonic clock (seconds).

    For a process younger than ``YOUNG_PROCESS_S`` that is the moment the
    process started (Linux: ``/proc/self/stat``, 10 ms resolution), so the
    interpreter's start-up counts against ``--timeout`` as the user's clock
    sees it; otherwise (a dead-man's switch firing, a test calling
    ``main.run`` in-process, no ``/proc``) it is now. After a guard took the
    command and then failed to answer (:data:`cancelctl.handoff.resumed`), it
    is the moment the cold path took over: the guard's wait already spent the
    caller's ``--timeout``, and a cold run counted from the process start
    could not send a single cancel.
    """
    if start_override is not None:
        return start_override
    import sys

    resumed = getattr(sys.modules.get("cancelctl.handoff"), "resumed", None)
    if isinstance(resumed, float):  # a guard took the command and never answered: the cold run gets its own time
        return resumed
    now = time.monotonic()
    try:
        import os

        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0.0 <= age < YOUNG_PROCESS_S else now


class Stopped(Exception):
    """Raised inside httpx when a request would start going out after :meth:`Deadline.close`."""


class DeadlinePassed(NotSent):
    """No time was left to send: says nothing about the venue, so a retry loop reports the failure before it."""


class Deadline:
    """The run's overall deadline (``--timeout``, seconds), on the monotonic clock, and its gate.

    ``start`` defaults to now. :meth:`close` shuts the gate: no request
    begins to go out afterwards (see :func:`send`), so a run that stops
    waiting for a profile knows for sure whether that profile sent anything
    (``wrote``). :meth:`fork` gives each profile its own gate on the same clock.

    ``listener``: called with a short text for each event worth showing a
    person while the run waits (a retry: ``Gemini unavailable (HTTP 503),
    retry 2 in 0.4 s``); None (the default, a class attribute) when nobody
    listens, so an event costs one attribute read. See :mod:`cancelctl.progress`.
    """

    listener: Callable[[str], None] | None = None

    def event(self, text: str) -> None:
        """Tell the listener, if any, about ``text``; never raises."""
        listener = self.listener
        if listener is not None:
            try:
                listener(text)
            except Exception:  # noqa: BLE001 - a listener's failure never touches the run
                pass

    def __init__(self, seconds: float, *, start: float | None = None) -> None:
        import threading

        self.seconds = seconds
        self.start = time.monotonic() if start is None else start
        self.end = self.start + seconds
        self.closed = False
        self.wrote = False  # some request began to go out (its bytes may have reached the venue)
        self._gate = threading.Lock()

    def fork(self) -> Deadline:
        """A deadline with the same start and end and a gate of its own."""
        return Deadline(self.seconds, start=self.start)

    def part(self, seconds: float) -> Deadline:
        """This deadline's gate and listener with an end of its own, ``seconds`` from now at the latest (s; never
        later than this one's): for a read that runs in a thread of its own next to the profile's thread
        (:class:`cancelctl.venues.base.Ahead`), where :meth:`capped` would move the end under the other thread.
        Closing this gate stops the part's requests too; the part's own writes count as this deadline's."""
        return _Part(self, seconds)

    #: Called (in the sending thread, never raising) each time a request has been written whole, until set back
    #: to None: Pacifica's cancel-all starts its TWAP listing there, once the cancel is on the wire.
    on_written: Callable[[], None] | None = None

    def written(self) -> None:
        """A request on this deadline was written whole (see :attr:`on_written` and :data:`on_any_written`)."""
        for hook in (self.on_written, on_any_written):
            if hook is not None:
                try:
                    hook()
                except Exception:  # noqa: BLE001 - what the hook starts is an extra; the request's answer comes first
                    pass

    def remaining(self) -> float:
        """Seconds left (0.0 once passed or closed)."""
        if self.closed:
            return 0.0
        return max(0.0, self.end - time.monotonic())

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 1)

    @contextmanager
    def capped(self, seconds: float) -> Iterator[None]:
        """Inside the block the deadline ends ``seconds`` from now at the latest (s; never later than it did).

        For a step that must leave time for what comes after it (closing
        positions keeps time to read them back) or must not hold the run
        (reading positions after a panic). The gate is the same: closing
        it stops the block's requests too. Only the profile's own thread
        may use it.
        """
        end = self.end
        self.end = min(end, time.monotonic() + max(0.0, seconds))
        try:
            yield
        finally:
            self.end = end

    def close(self) -> bool:
        """Shut the gate; True when some request had already begun to go out."""
        with self._gate:
            self.closed = True
            return self.wrote

    def writing(self) -> None:
        """Called as a request's first byte is about to go out; raises Stopped once closed."""
        with self._gate:
            if self.closed:
                raise Stopped
            self.wrote = True


class _Part(Deadline):
    """See :meth:`Deadline.part`: ``closed``, ``wrote``, the gate and the listener are the whole deadline's."""

    def __init__(self, whole: Deadline, seconds: float) -> None:  # no gate of its own: the whole's
        self.whole = whole
        self.seconds, self.start = whole.seconds, whole.start
        self.end = min(whole.end, time.monotonic() + max(0.0, seconds))

    @property
    def closed(self) -> bool:
        return self.whole.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self.whole.closed = value

    @property
    def wrote(self) -> bool:
        return self.whole.wrote

    @wrote.setter
    def wrote(self, value: bool) -> None:
        self.whole.wrote = value

    @property
    def listener(self) -> Callable[[str], None] | None:
        return self.whole.listener

    @listener.setter
    def listener(self, value: Callable[[str], None] | None) -> None:
        self.whole.listener = value

    def fork(self) -> Deadline:
        return self.whole.fork()

    def close(self) -> bool:
        return self.whole.close()

    def writing(self) -> None:
        self.whole.writing()


@dataclass
class Answer:
    """A venue's HTTP answer: status, headers (lower-case names) and raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """The body parsed as JSON; OutcomeUnknown when it is not JSON."""
        import json

        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
            raise OutcomeUnknown(f"unreadable answer (HTTP {self.status}, not JSON)") from None

    def retry_after(self) -> float | None:
        """``Retry-After`` in seconds (RFC 9110 10.2.3: delay-seconds) when it is a positive, finite number, else None.

        None means "use the normal backoff": a value of 0, a negative one,
        ``nan``, ``inf`` or an HTTP date would otherwise make a hot loop
        against a venue that is already rate-limiting.
        """
        import math

        value = self.headers.get("retry-after")
        try:
            seconds = float(value) if value is not None else math.nan
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds > 0.0 else None


_tls: dict[str, Any] = {}
TLS_EXIT_WAIT_S = 2.0  # the longest an exit waits for the TLS thread (s)


def warm_tls() -> None:
    """Start building the TLS context in a background thread; :func:`new_client` waits for it.

    Loading the CA certificates (``load_verify_locations``, about 30 ms)
    runs in C without the GIL, so done here it overlaps with importing httpx
    instead of following it. The trust store is httpx's default, in httpx's
    order (``httpx._config.create_ssl_context`` with ``verify=True``):
    ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle.
    """
    import threading

    def build() -> None:
        try:
            _tls["context"] = tls_context()
        except ConfigError as e:  # new_client raises it: every profile reports the one-line fix
            _tls["error"] = e
        except Exception:  # noqa: BLE001 - new_client lets httpx build it and report the error
            pass

    if "thread" not in _tls:
        import atexit

        _tls["thread"] = thread = threading.Thread(target=build, name="cancelctl-tls", daemon=True)
        thread.start()
        # A run that ends before any client is made (a config error, Ctrl-C) must not let the
        # interpreter finalize under OpenSSL still loading certificates: that crashes (SIGSEGV).
        # Daemon, so a stuck CA file cannot hold the exit for more than TLS_EXIT_WAIT_S.
        atexit.register(thread.join, TLS_EXIT_WAIT_S)


def tls_context() -> ssl.SSLContext:
    """The ``ssl.SSLContext`` that verifies venue certificates, from the environment as httpx would build it.

    ``SSL_CERT_FILE`` (a regular PEM file of at most ``CA_FILE_LIMIT``
    bytes), else ``SSL_CERT_DIR`` (a directory), else certifi's bundle.
    Raises ConfigError (78) naming the variable and the fix when the one
    set is missing, not a regular file (a FIFO would block the load for
    ever), too large, or holds no certificate.
    """
    import os
    import ssl

    from cancelctl.files import CA_FILE_LIMIT, opened_regular

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile:
        fix = "point SSL_CERT_FILE at a PEM bundle of CA certificates, or unset it"
        try:
            with opened_regular(cafile, f"$SSL_CERT_FILE ({cafile})", limit=CA_FILE_LIMIT, hint=fix) as fd:
                # Loaded by path, not as cadata: OpenSSL then reads and parses the bundle without
                # holding the GIL, so the load overlaps with the profile's imports instead of
                # stalling them (docs/performance.md). Through /dev/fd it reads the very file checked
                # above: a FIFO put in its place meanwhile cannot block the load.
                checked = f"/dev/fd/{fd}"
                return ssl.create_default_context(cafile=checked if os.path.exists(checked) else cafile)
        except FileNotFoundError:
            raise ConfigError(f"$SSL_CERT_FILE ({cafile}) does not exist", hint=fix) from None
        except (ssl.SSLError, ValueError):
            raise ConfigError(f"$SSL_CERT_FILE ({cafile}) holds no PEM certificate", hint=fix) from None
    if capath:
        if not os.path.isdir(capath):
            raise ConfigError(
                f"$SSL_CERT_DIR ({capath}) is not a directory",
                hint="point SSL_CERT_DIR at a directory of hashed CA certificates, or unset it",
            )
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")  # what httpx can use (httpx "Proxies" docs)


def check_proxies() -> None:
    """ConfigError (78) naming the proxy variable that httpx could not use, and the fix.

    httpx reads ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``ALL_PROXY`` (either
    case) when it builds a client (https://www.python-httpx.org/environment_variables/).
    A SOCKS proxy needs the ``socks`` extra. The value itself is never
    echoed: a proxy URL can hold a password.
    """
    import os

    import httpx

    for name in PROXY_VARS:
        value = os.environ.get(name)
        if not value:
            continue
        try:
            url = httpx.URL(value if "://" in value else "http://" + value)
            scheme, host = url.scheme, url.host
        except (httpx.InvalidURL, ValueError, TypeError):
            scheme, host = "", ""
        if scheme not in PROXY_SCHEMES or not host:
            raise ConfigError(
                f"${name} is not a proxy URL cancelctl can use",
                hint=f"use http://HOST:PORT (or socks5://HOST:PORT), or unset {name}",
            )
        if scheme.startswith("socks"):
            try:
                import socksio  # type: ignore[import-not-found]  # noqa: F401
            except ImportError:
                raise ConfigError(
                    f"${name} names a SOCKS proxy, which needs httpx's socks extra",
                    hint=f"pip install 'httpx[socks]' next to cancelctl, or use an http:// proxy, or unset {name}",
                ) from None


def broken_proxy(scheme: str) -> ConfigError | None:
    """The ConfigError (78) for the proxy variable httpx uses for ``scheme`` (``http``/``https``) when its host
    cannot be a host name (``http://a b:1``, ``http://:8080``); None when there is none or it looks usable.

    httpx accepts such a URL when it builds the client and fails only when it
    connects, which would otherwise read as the venue being unreachable (75,
    "retry") after the whole deadline. Asked only after a connection failed,
    so a variable that a request never uses cannot stop a cancel. The value
    is never echoed (it can hold a password).
    """
    import os
    import re

    import httpx

    for name in (f"{scheme.upper()}_PROXY", f"{scheme.lower()}_proxy", "ALL_PROXY", "all_proxy"):
        value = os.environ.get(name)
        if not value:
            continue
        try:
            host = httpx.URL(value if "://" in value else "http://" + value).host
        except (httpx.InvalidURL, ValueError, TypeError):
            host = ""
        if not re.fullmatch(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+", host or ""):
            return ConfigError(
                f"${name} is not a proxy URL cancelctl can use (its host is not a host name)",
                hint=f"use http://HOST:PORT, or unset {name}",
            )
        return None
    return None


KEEPALIVE_S = 5.0  # s an idle connection of a run is kept (httpx's default keepalive_expiry)
ACCEPT_ENCODING = "gzip, deflate"  # what :func:`_decoded` undoes (zlib), as httpx asks without brotli installed


def new_client(profile: str | None = None) -> Client | httpx.Client:
    """An HTTP client for one profile (keep-alive across that profile's requests); in ``cancelctl guard``, the
    warm one it keeps for ``profile`` (see :data:`warm_clients`).

    A :class:`Client` (HTTP/1.1 on h11, a fraction of httpx's CPU per request) unless a proxy variable is set
    (:data:`PROXY_VARS`): then an httpx client, which reads them (see :func:`client`).
    Certificates are verified (the context from :func:`warm_tls` when it was
    started, else :func:`tls_context`); redirects are never followed.
    Raises ConfigError (78) naming the environment variable when the proxy
    or CA settings cannot be used (see :func:`check_proxies`, :func:`tls_context`).
    """
    warm = warm_clients.get(profile) if warm_clients is not None and profile is not None else None
    if warm is not None:
        return warm
    thread = _tls.get("thread")
    if thread is not None:
        thread.join()
    if "error" in _tls:
        raise _tls["error"]
    return client(_tls.get("context") or tls_context())


def proxied() -> bool:
    """Whether a proxy variable is set (:data:`PROXY_VARS`, in any case: ``Https_Proxy`` too, as
    ``urllib.request.getproxies``, which httpx reads, lowercases every name): requests then go through httpx, which
    applies it."""
    import os

    environ = os.environ
    return any(name.lower() in _PROXY_NAMES and environ[name] for name in environ)


_PROXY_NAMES = frozenset(name.lower() for name in PROXY_VARS)


def client(verify: ssl.SSLContext, *, keepalive_s: float = KEEPALIVE_S, warm: bool = False) -> Client | httpx.Client:
    """A new HTTP client: a :class:`Client`, or with a proxy variable set (:func:`proxied`) an httpx client (which
    applies ``HTTPS_PROXY``, ``NO_PROXY``...: https://www.python-httpx.org/environment_variables/).

    ``verify``: the TLS context (one is shared by every client: each CA bundle loaded costs about 1 MB);
    ``keepalive_s``: how long an idle connection is kept (s); ``warm`` (``cancelctl guard``): ``close()`` keeps
    the connections (a run's end), ``shutdown()`` closes them. Raises ConfigError (78) for unusable proxy settings.
    """
    if not proxied():
        return Client(verify, keepalive_s=keepalive_s, warm=warm)
    import httpx

    class Warm(httpx.Client):
        def close(self) -> None:  # a run's end: the connection stays warm
            pass

        def shutdown(self) -> None:
            super().close()

    # No connection is kept between requests through a proxy: httpx (httpcore's h11 buffer) would hand bytes a venue
    # sent after an answer to the next request on that connection as its answer (a stray "[]" after a cancel-all
    # read as the book: "no open orders" while one is open). cancelctl's own Client closes such a connection
    # (689c268); here each request gets a new one, at the cost of a handshake through the proxy per request.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0, keepalive_expiry=keepalive_s)

    def make() -> httpx.Client:
        return (Warm if warm else httpx.Client)(
            headers={"User-Agent": USER_AGENT}, follow_redirects=False, verify=verify, limits=limits
        )

    try:
        return _bounded(make())
    except (ImportError, ValueError, httpx.InvalidURL):
        check_proxies()  # names the variable
        if _drop_unreadable_no_proxy(verify):
            return _bounded(make())
        raise ConfigError(
            "the proxy settings in the environment are unusable",
            hint="check or unset HTTPS_PROXY, HTTP_PROXY and ALL_PROXY",
        ) from None


def _bounded(c: httpx.Client) -> httpx.Client:
    """``c`` with every connection's name lookup under the deadline (:func:`resolve`), as :class:`Client`'s: the
    connection pools of its transports (the direct one and each proxy's) get a network backend whose ``connect_tcp``
    looks the host (the proxy's, or the venue's past ``NO_PROXY``) up through :func:`resolve`, then connects to
    each address with the time left. httpcore's own backend calls ``socket.create_connection``, whose lookup no
    timeout bounds. A transport of another shape (a future httpx) keeps its backend."""
    backend = _bounded_backend()
    for transport in [c._transport, *c._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = backend
    return c


_backend: list[Any] = []


def _bounded_backend() -> Any:
    """The one httpcore network backend of :func:`_bounded` (made at first use: httpcore is imported with httpx)."""
    if _backend:
        return _backend[0]
    import httpcore
    from httpcore._backends.sync import SyncStream

    class Bounded(httpcore.SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            until = time.monotonic() + (timeout if timeout is not None else 3600.0)
            try:
                found = resolve(host, port, until)
            except TimeoutError as e:
                raise httpcore.ConnectTimeout(str(e)) from None
            except OSError as e:
                raise httpcore.ConnectError(str(e)) from None
            error: Exception | None = None
            for *_, address in found:
                left = until - time.monotonic()
                if left <= 0.0:
                    break
                try:
                    stream = super().connect_tcp(address[0], port, left, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                    error = e
                    continue
                return Capped(stream._sock) if type(stream) is SyncStream else stream
            raise error or httpcore.ConnectTimeout(f"no connection to {host} before the deadline")

    class Capped(SyncStream):
        """A connection's stream whose every read and write waits at most the time left now on the deadline of the
        request this thread sends (:data:`_sending`), as :class:`Client`'s (:func:`_left`): httpx gives each read
        the timeout the request began with."""

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return super().read(max_bytes, _capped(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            super().write(buffer, _capped(timeout))

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
            stream = super().start_tls(ssl_context, server_hostname, timeout)
            return Capped(stream._sock) if type(stream) is SyncStream else stream

    _backend.append(Bounded())
    return _backend[0]


#: The deadline of the request the current thread sends through httpx (:func:`_send_httpx`), for :func:`_capped`.
_sending = _thread._local()


def _capped(timeout: float | None) -> float | None:
    """``timeout`` (s) of a read or write through httpx, no longer than the time left now on the deadline of the
    request this thread sends (:func:`_left`); as given outside one."""
    deadline = getattr(_sending, "deadline", None)
    if deadline is None:
        return timeout
    left = _left(deadline)
    return left if timeout is None else min(timeout, left)


NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
_no_proxy: dict[str, Any] = {}  # "lock": profiles build their clients concurrently, one of them cleans the variables


def _drop_unreadable_no_proxy(verify: ssl.SSLContext) -> bool:
    """After httpx could not build a client though every proxy variable is usable: the entries of ``NO_PROXY``
    (``no_proxy``) that httpx cannot read are dropped from the environment, said in one stderr line, and True
    (build it again); False when that was not the cause.

    httpx turns every ``NO_PROXY`` entry into a URL pattern when it builds a client, proxy or not
    (https://www.python-httpx.org/environment_variables/), and raises on one it cannot parse: an IPv6 address in
    brackets (``[::1]``, read here as ``::1``) or an IPv6 range (``fe80::/10``). Refusing the cancel (78) for a
    list of hosts that only says where *not* to use a proxy, when often no proxy is set at all, would jam the
    button; the entry only ever kept a host off a proxy, and the line says which variable to fix. (With no proxy
    variable set, requests go through :class:`Client`, which has no use for ``NO_PROXY`` and never reads it.)
    """
    import os
    import sys
    import threading

    import httpx

    with _no_proxy.setdefault("lock", threading.Lock()):
        value = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")  # urllib prefers the lowercase one
        if not value:
            return False
        saved = {n: os.environ.get(n) for n in NO_PROXY_VARS}

        def readable(candidate: str) -> bool:
            for n in NO_PROXY_VARS:
                os.environ[n] = candidate
            try:
                httpx.Client(verify=verify).close()
            except (ValueError, httpx.InvalidURL):
                return False
            return True

        entries = [e.strip() for e in value.split(",") if e.strip()]
        kept = []
        for entry in entries:
            bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
            if readable(bare):
                kept.append(bare)
        if not readable(",".join(kept)):
            for n, v in saved.items():
                if v is None:
                    os.environ.pop(n, None)
                else:
                    os.environ[n] = v
            return False
        for n in NO_PROXY_VARS:
            if saved[n] is None and n != "NO_PROXY":
                os.environ.pop(n, None)
        dropped = len(entries) - len(kept)
        if dropped:
            sys.stderr.write(
                f"cancelctl: warning: ignored {dropped} entr{'y' if dropped == 1 else 'ies'} of $NO_PROXY that httpx "
                "cannot read (an IPv6 range, say); fix NO_PROXY to keep those hosts off the proxy\n"
            )
        return True


class _Connection:
    """One HTTP/1.1 connection: its socket and h11's state of it."""

    def __init__(self, sock: socket.socket, origin: tuple[str, str, int]) -> None:
        import h11

        self.sock = sock
        self.origin = origin
        self.http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.idle_since = time.monotonic()

    def reusable(self, now: float, keepalive_s: float) -> bool:
        """Idle for less than ``keepalive_s`` (s) and not readable: a readable idle connection was closed by the
        venue (end of file, a TLS close) or holds bytes nobody asked for."""
        if now - self.idle_since >= keepalive_s:
            return False
        import select

        try:
            if getattr(self.sock, "pending", lambda: 0)():  # TLS: bytes already decrypted that nobody asked for
                return False
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Client:
    """One profile's HTTP/1.1 connections (h11 over a socket, TLS through ``verify``), kept alive between its
    requests; several at once when its requests go out together (Pacifica's reads beside a cancel).

    What httpx's client did for cancelctl, at a quarter of the CPU per request (docs/performance.md, "100
    profiles"): the same request headers (``User-Agent``, ``Accept``, ``Accept-Encoding: gzip, deflate``,
    ``Connection: keep-alive``), no redirects, no cookies kept. An idle connection is reused for at most
    ``keepalive_s`` seconds and only while the venue has not closed it (:meth:`_Connection.reusable`).
    ``warm``: see :func:`client`. Thread-safe. Proxies are httpx's job (:func:`client`).
    """

    def __init__(self, verify: ssl.SSLContext | None, *, keepalive_s: float = KEEPALIVE_S, warm: bool = False) -> None:
        import threading

        self.verify = verify
        self.keepalive_s = keepalive_s
        self.warm = warm
        self.is_closed = False
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def take(self, origin: tuple[str, str, int]) -> _Connection | None:
        """An idle connection to ``origin`` that can be reused (the newest first), or None."""
        now = time.monotonic()
        while True:
            with self._lock:
                for i in range(len(self._idle) - 1, -1, -1):
                    if self._idle[i].origin == origin:
                        conn = self._idle.pop(i)
                        break
                else:
                    return None
            if conn.reusable(now, self.keepalive_s):
                return conn
            conn.close()

    def put(self, conn: _Connection) -> None:
        """Keep ``conn`` for the next request (closed instead when the client is)."""
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self.is_closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """A run's end: close every connection (a ``warm`` client keeps them: :meth:`shutdown` closes it)."""
        if not self.warm:
            self.shutdown()

    def shutdown(self) -> None:
        with self._lock:
            self.is_closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def get(self, url: str, *, timeout: float) -> int:
        """``GET url`` within ``timeout`` s on this client's connection (the guard's keep-warm request): the
        answer's status; raises NotSent, OutcomeUnknown or ConfigError as :func:`send`. Not a caller's request:
        its being written calls no hook (:data:`on_any_written`, which tells the guard a caller's first cancel is
        on the wire; the GET may run beside a caller's command)."""
        from cancelctl.signing import PreparedRequest

        return send(self, PreparedRequest("GET", url, {}), _Aside(timeout)).status


class _Aside(Deadline):
    """The deadline of a request that is no run's (:meth:`Client.get`): written, it tells nobody."""

    def written(self) -> None:
        pass


def send(client: Client | httpx.Client, request: PreparedRequest, deadline: Deadline) -> Answer:
    """Send ``request`` with the deadline's remaining time (s) as every timeout.

    Whether anything went out is decided by where the failure came, not by
    the exception's type: a failure before the request's first byte (DNS,
    connect, TLS, a closed gate) is NotSent, one after it OutcomeUnknown.
    A kept-alive connection that fails before the whole request was written
    (the venue closed it while it sat idle) cannot have been acted on: the
    request goes again at once on a new connection (at most
    ``STALE_RETRIES`` times), without waiting for the retry backoff.
    Raises NotSent, OutcomeUnknown or ConfigError (a URL that cannot be used).
    """
    one = _send if isinstance(client, Client) else _send_httpx
    for _ in range(STALE_RETRIES):
        try:
            return one(client, request, deadline)  # type: ignore[arg-type]
        except _Stale:
            continue
    return one(client, request, deadline, stale_retry=False)  # type: ignore[arg-type]


STALE_RETRIES = 2  # a request whose kept-alive connection turned out closed is sent again on a new one, this often


class _Stale(Exception):
    """A reused connection failed before the whole request went out: nothing can have reached the venue."""


def _send_httpx(
    client: httpx.Client, request: PreparedRequest, deadline: Deadline, *, stale_retry: bool = True
) -> Answer:
    """:func:`send` through httpx (a proxy is set: :func:`client`); the trace events of httpcore say what went out."""
    import httpx

    if deadline.closed:
        raise NotSent("the run was stopped before the request was sent")
    remaining = deadline.remaining()
    if remaining <= 0.0:
        raise DeadlinePassed("the deadline passed before the request could be sent", hint="raise --timeout")
    wrote = False
    fresh = False  # the request went on a connection opened for it (not one kept alive)
    whole = False  # the whole request (headers and body) was written
    host = _host(request.url)
    reach = host  # what a connection failure could not reach: the venue, or the proxy httpx connected to

    def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal wrote, fresh, whole, reach
        if event.startswith("connection.connect_tcp."):
            fresh = True
            if event == "connection.connect_tcp.started":
                reach = _proxy_or(host, info)
        elif event == "http11.send_request_headers.started":
            if getattr(info.get("request"), "method", None) == b"CONNECT":  # the proxy's tunnel, not the venue's
                return
            deadline.writing()  # Stopped when the run has stopped waiting: the request never goes out
            wrote = True
        elif event == "http11.send_request_body.complete" and wrote:  # the venue's request, not a CONNECT
            whole = True
            deadline.written()

    _sending.deadline = deadline  # every read and write of this request waits at most the time left (_capped)
    try:
        with client.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.content or None,
            timeout=httpx.Timeout(remaining),
            extensions={"trace": trace},
        ) as r:
            body = _read_capped(r, host, deadline)
    except Stopped:
        raise NotSent("the run was stopped before the request was sent") from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        broken = broken_proxy(str(request.url).split(":", 1)[0])
        if broken is not None:  # the proxy, not the venue: no retry fixes it
            raise broken from None
        raise NotSent(f"cannot reach {reach}: {_why(e)}") from None
    except httpx.PoolTimeout:
        raise NotSent(f"cannot reach {reach}: no connection before the deadline") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise ConfigError(f"unusable URL {request.url}: {_why(e)}", hint="check the profile's base_url") from None
    except httpx.ProxyError as e:  # the proxy refused the tunnel (CONNECT answered no 2xx): nothing reached the venue
        raise NotSent(f"{reach} did not open a tunnel to {host}: {_why(e)}") from None
    except httpx.TimeoutException:
        if not wrote:
            raise NotSent(f"cannot reach {reach}: no connection before the deadline") from None
        raise OutcomeUnknown(f"no answer from {host} before the deadline") from None
    except httpx.TransportError as e:
        if stale_retry and not fresh and not whole and not deadline.closed:
            raise _Stale from None
        if not wrote:
            raise NotSent(f"cannot reach {reach}: {_why(e)}") from None
        raise OutcomeUnknown(f"connection to {host} failed mid-request: {_why(e)}") from None
    finally:
        _sending.deadline = None
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, body)


def _proxy_or(host: str, info: dict[str, Any]) -> str:
    """What a failed connection could not reach: ``host`` (the venue's ``host[:port]``) when httpcore's
    ``connection.connect_tcp.started`` trace ``info`` (its ``host`` and ``port``) names the venue, else ``the proxy
    HOST:PORT`` (httpx connected to the proxy of a proxy variable). Only a host and a port: a proxy URL's
    ``user:password@`` never reaches a message."""
    target, port = info.get("host"), info.get("port")
    if not isinstance(target, str) or not target:
        return host
    name = f"[{target}]" if ":" in target else target
    if host in (name, f"{name}:{port}") or (host == name and port in DEFAULT_PORTS.values()):
        return host
    return f"the proxy {name}:{port}" if isinstance(port, int) else f"the proxy {name}"


DEFAULT_PORTS = {"http": 80, "https": 443}


_targets: dict[str, tuple[tuple[str, str, int], str, str]] = {}  # url -> _target(url): a profile repeats its URLs


def _target(url: str) -> tuple[tuple[str, str, int], str, str]:
    """(origin (scheme, host, port), ``Host`` header, request target) of ``url``; ConfigError (78) when it is not an
    ``http``/``https`` URL with a host."""
    known = _targets.get(url)
    if known is not None:
        return known
    if len(_targets) >= 4096:
        _targets.clear()
    _targets[url] = known = _parse_target(url)
    return known


def _parse_target(url: str) -> tuple[tuple[str, str, int], str, str]:
    from urllib.parse import urlsplit

    fix = "check the profile's base_url"
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError as e:
        raise ConfigError(f"unusable URL {url}: {_why(e)}", hint=fix) from None
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"unusable URL {url}: Request URL has an unsupported protocol '{scheme}://'.", hint=fix)
    if not host:
        raise ConfigError(f"unusable URL {url}: Request URL is missing a host", hint=fix)
    name = f"[{host}]" if ":" in host else host
    authority = name if port is None or port == DEFAULT_PORTS[scheme] else f"{name}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, host, port or DEFAULT_PORTS[scheme]), authority, target


def _connect(client: Client, origin: tuple[str, str, int], timeout: float) -> _Connection:
    """A new connection to ``origin`` (TCP, then TLS for https, certificate and host name verified), within
    ``timeout`` s; the socket's errors propagate (nothing was sent)."""
    import socket

    scheme, host, port = origin
    sock = _open(host, port, time.monotonic() + timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as httpcore: a request is one write
        if client.warm:
            _keepalive(sock)
        if scheme == "https":
            context = client.verify or tls_context()
            sock = context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return _Connection(sock, origin)


class LookupTimeout(TimeoutError):
    """The name lookup (``getaddrinfo``) of a host did not answer before the deadline: nothing was sent."""


#: (host, port) -> the lookup in flight: its Event (set when it answered) and its answer (addresses or the error).
_lookups: dict[tuple[str, int], tuple[Any, list[Any]]] = {}


def resolve(host: str, port: int, until: float) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo(host, port, 0, SOCK_STREAM)``, waited for until ``until`` (monotonic s) at most.

    The C resolver cannot be interrupted, and it waits as long as
    ``/etc/resolv.conf`` says (``timeout:`` times ``attempts:``, per name
    server and per search domain: tens of seconds), so a resolver that hangs
    would hold a cancel past ``--timeout``. The lookup runs in a thread of its
    own; when the deadline comes first, that thread is abandoned (it ends when
    the resolver gives up; a daemon thread, it never holds the process's exit)
    and :class:`LookupTimeout` is raised (an ``OSError``: nothing was sent,
    :func:`send` says "cannot reach HOST"). One lookup per host and port is in
    flight at a time: a retry, another profile, or in ``cancelctl guard`` the
    next command, waits for the one under way instead of starting another, so
    a hung resolver costs one thread, not one per attempt. An IP address is no
    lookup: it is resolved at once, in this thread. Other errors of
    ``getaddrinfo`` (``socket.gaierror``: no such name) are raised as they are; no thread to be had for the
    lookup (``RuntimeError`` of the thread's start) is an ``OSError`` too, and leaves no lookup in flight.
    """
    import socket

    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        pass
    import threading

    key = (host, port)
    with _lookup_lock:
        pending = _lookups.get(key)
        if pending is None:
            pending = _lookups[key] = (threading.Event(), [])
            done, answer = pending

            def lookup() -> None:
                try:
                    answer.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
                except BaseException as e:  # noqa: BLE001 - handed to every waiter, raised there
                    answer.append(e)
                finally:
                    with _lookup_lock:
                        if _lookups.get(key) is pending:
                            del _lookups[key]
                    done.set()

            try:
                _thread.start_new_thread(lookup, ())  # no Thread.start(): it waits for the thread to run
            except RuntimeError as e:  # no thread to be had (pids.max, ulimit -u): no lookup is in flight
                del _lookups[key]  # else every later lookup of the name would wait on an event nobody sets
                raise OSError(f"the name lookup of {host} could not start: {e}") from None
    done, answer = pending
    if not done.wait(max(0.0, until - time.monotonic())):
        raise LookupTimeout(f"the name lookup of {host} did not answer before the deadline")
    found = answer[0]
    if isinstance(found, BaseException):
        raise found
    return list(found)


_lookup_lock = _thread.allocate_lock()  # guards _lookups


def _open(host: str, port: int, until: float) -> socket.socket:
    """A TCP connection to ``host``:``port``, made before ``until`` (monotonic s): the name looked up under the
    deadline (:func:`resolve`), then each address in turn, as ``socket.create_connection``, each connect waiting at
    most the time left when it begins; the last error raised (``OSError``, ``TimeoutError``)."""
    import socket

    error: OSError | None = None
    for family, kind, proto, _, address in resolve(host, port, until):
        left = until - time.monotonic()
        if left <= 0.0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
        except OSError as e:
            sock.close()
            error = e
            continue
        return sock
    raise error or TimeoutError(f"no connection to {host} before the deadline")


#: TCP keepalive of the guard's warm connections: (s of silence before the first probe, s between probes, probes
#: unanswered before the kernel calls the connection dead). A connection a NAT or a firewall dropped without a FIN
#: or an RST is found dead within about 4 s of silence, before a cancel is written on it.
WARM_KEEPALIVE = (2, 1, 2)


def _keepalive(sock: socket.socket) -> None:
    """Turn on TCP keepalive on ``sock`` with :data:`WARM_KEEPALIVE` (``SO_KEEPALIVE``; ``TCP_KEEPIDLE``, or
    ``TCP_KEEPALIVE`` on macOS; ``TCP_KEEPINTVL``, ``TCP_KEEPCNT``: each where the platform has it; one it refuses
    is left at the system's value).

    For ``cancelctl guard``, whose connections sit idle between keep-warm GETs (``--refresh``, 20 s): a connection
    dropped in silence (a NAT's table entry expired, a firewall restarted, a laptop changed networks) otherwise
    looks alive until a request is written on it, and that request's answer never comes (an unknown outcome after
    the whole ``--timeout``). With keepalive the kernel probes the silent connection, and when the probes go
    unanswered it ends it with an error (``ETIMEDOUT``): the socket turns readable, which is what
    :meth:`_Connection.reusable` checks before a request is written, so the request goes on a fresh connection
    instead. A probe is a bare TCP segment the peer's kernel answers: no HTTP request, nothing the venue sees.
    """
    import contextlib
    import socket

    idle, interval, count = WARM_KEEPALIVE
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        options = (("TCP_KEEPIDLE", idle), ("TCP_KEEPALIVE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count))
        for name, value in options:
            option = getattr(socket, name, None)
            if option is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _send(client: Client, request: PreparedRequest, deadline: Deadline, *, stale_retry: bool = True) -> Answer:
    """:func:`send` on a :class:`Client`: one HTTP/1.1 exchange (h11) on a kept-alive connection or a new one."""
    import h11

    if deadline.closed:
        raise NotSent("the run was stopped before the request was sent")
    remaining = deadline.remaining()
    if remaining <= 0.0:
        raise DeadlinePassed("the deadline passed before the request could be sent", hint="raise --timeout")
    origin, authority, target = _target(request.url)
    host = _host(request.url)
    if client.is_closed:
        raise NotSent("the run was stopped before the request was sent")
    conn = client.take(origin)
    fresh = conn is None
    if conn is None:
        try:
            conn = _connect(client, origin, remaining)
        except OSError as e:  # refused, DNS, timed out, TLS (ssl.SSLError is an OSError): nothing was sent
            raise NotSent(f"cannot reach {host}: {_why(e)}") from None
        except ValueError as e:  # a host name that cannot be encoded (IDNA), a port out of range
            raise ConfigError(f"unusable URL {request.url}: {_why(e)}", hint="check the profile's base_url") from None
    whole = False  # the whole request was written
    try:
        try:
            data = _request_bytes(conn, request, authority, target)
        except (h11.LocalProtocolError, ValueError) as e:  # a header h11 refuses (a line break, not ASCII): not sent
            raise ConfigError(
                f"cannot send a request to {host}: {_why(e)}", hint="check the profile's credentials"
            ) from None
        try:
            deadline.writing()  # Stopped when the run has stopped waiting: the request never goes out
        except Stopped:
            raise NotSent("the run was stopped before the request was sent") from None
        conn.sock.settimeout(_left(deadline))  # each write and read waits at most the time left when it begins
        conn.sock.sendall(data)
        whole = True
        deadline.written()
        answer = _receive(conn, host, deadline)
    except (OSError, h11.ProtocolError) as e:
        conn.close()
        if stale_retry and not fresh and not whole and not deadline.closed:
            raise _Stale from None
        if isinstance(e, TimeoutError):  # socket.timeout: the deadline's time ran out on a write or a read
            raise OutcomeUnknown(f"no answer from {host} before the deadline") from None
        raise OutcomeUnknown(f"connection to {host} failed mid-request: {_why(e)}") from None
    except BaseException:
        conn.close()
        raise
    if conn.http.our_state is h11.DONE and conn.http.their_state is h11.DONE and not conn.http.trailing_data[0]:
        conn.http.start_next_cycle()
        client.put(conn)
    else:  # the venue said "Connection: close", the exchange did not end cleanly, or bytes came after the answer
        # (a second answer nobody asked for: kept, h11 would hand it to the next request as that request's answer)
        conn.close()
    return answer


#: httpx's default request headers, as (name, value, lower-case name) bytes: what every request carries unless it
#: sets the header itself.
_DEFAULT_HEADERS = tuple(
    (name.encode("ascii"), value.encode("ascii"), name.lower())
    for name, value in (
        ("Accept", "*/*"),
        ("Accept-Encoding", ACCEPT_ENCODING),
        ("Connection", "keep-alive"),
        ("User-Agent", USER_AGENT),
    )
)


def _request_bytes(conn: _Connection, request: PreparedRequest, authority: str, target: str) -> bytes:
    """The request as h11 writes it: ``Host``, then httpx's default headers unless ``request`` sets them, then
    ``request``'s, then ``Content-Length`` (0 for a POST without a body, as httpx sends)."""
    import h11

    own = {k.lower() for k in request.headers}
    headers = [(b"Host", authority.encode("ascii"))] if "host" not in own else []
    headers += [(name, value) for name, value, lower in _DEFAULT_HEADERS if lower not in own]
    headers += [(k.encode("ascii"), v.encode("ascii")) for k, v in request.headers.items()]  # as h11 encodes text
    content = request.content
    framed = "content-length" in own or "transfer-encoding" in own
    if not framed and (content or request.method in ("POST", "PUT", "PATCH")):
        headers.append((b"Content-Length", b"%d" % len(content)))
    http = conn.http
    out = http.send(h11.Request(method=request.method.encode("ascii"), target=target.encode("ascii"), headers=headers))
    out = out or b""
    if content:
        out += http.send(h11.Data(data=content)) or b""
    return out + (http.send(h11.EndOfMessage()) or b"")


def _receive(conn: _Connection, host: str, deadline: Deadline) -> Answer:
    """The answer on ``conn``, its body at most ``MAX_ANSWER_BYTES`` (decoded), all of it before the deadline.

    More is OutcomeUnknown (5, unreadable answer): a body that streams
    zeros would otherwise fill memory. Each read waits at most the time
    left when that read begins (:func:`_left`: an answer whose first byte
    came just before the deadline, then silence, ends at the deadline, not
    one ``--timeout`` past it), and an answer still arriving at the deadline (a byte at a
    time, wherever it is: its head, ``100 Continue`` after ``100
    Continue``, its body, its trailers) is cut off before the next read
    (OutcomeUnknown too: the request went out); an answer whose last byte
    came is read whole however late it is read. Socket and h11 errors
    propagate.
    """
    import h11

    http, sock = conn.http, conn.sock
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    arriving = False  # some of the answer came: it must end by the deadline
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            still = f"no answer from {host} before the deadline (the answer was still arriving)"
            if arriving and time.monotonic() > deadline.end:  # each read is bounded, an answer in pieces is not
                raise OutcomeUnknown(still)
            sock.settimeout(_left(deadline))  # the time left now, not when the request began
            try:
                data = sock.recv(65536)
            except TimeoutError:  # the deadline came during the read
                if arriving:
                    raise OutcomeUnknown(still) from None
                raise  # no byte of an answer before the deadline
            http.receive_data(data)
            arriving = True
        elif isinstance(event, h11.Response):
            response = event
            declared = dict(event.headers).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise OutcomeUnknown(
                    f"unreadable answer from {host}: {declared.decode()} bytes, more than the {MAX_ANSWER_BYTES}"
                    " cancelctl reads"
                )
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_ANSWER_BYTES:
                raise OutcomeUnknown(
                    f"unreadable answer from {host}: more than the {MAX_ANSWER_BYTES} bytes cancelctl reads"
                )
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.InformationalResponse):
            continue
        else:  # ConnectionClosed before the answer ended, or PAUSED
            raise h11.RemoteProtocolError(f"the connection ended ({type(event).__name__})")
    assert response is not None
    headers: dict[str, str] = {}
    for name, value in response.headers:
        key = name.decode("latin-1")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    body = b"".join(chunks)
    encoding = headers.get("content-encoding", "").strip().lower()
    if body and encoding not in ("", "identity"):
        body = _decoded(body, encoding, host)
    return Answer(response.status_code, headers, body)


READ_FLOOR_S = 0.001  # s: a read begun at or past the deadline still takes what already arrived, and waits no more


def _left(deadline: Deadline) -> float:
    """The timeout (s) of the next socket write or read: the deadline's time left now (its ``end``, which
    :meth:`Deadline.capped` may bring forward), at least :data:`READ_FLOOR_S` (a timeout of 0 would make the socket
    non-blocking, and an answer already in the socket is still read)."""
    return max(deadline.end - time.monotonic(), READ_FLOOR_S)


def _decoded(body: bytes, encoding: str, host: str) -> bytes:
    """``body`` with its ``Content-Encoding`` (gzip or deflate: what :data:`ACCEPT_ENCODING` asks) undone, at most
    ``MAX_ANSWER_BYTES``; OutcomeUnknown (unreadable answer) for another coding, a broken stream or more."""
    import zlib

    unreadable = f"unreadable answer from {host}"
    if encoding in ("gzip", "x-gzip"):
        decoders = [zlib.MAX_WBITS | 16]
    elif encoding == "deflate":  # zlib-wrapped as RFC 9110 says, or raw deflate as some servers send it (httpx too)
        decoders = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        raise OutcomeUnknown(f"{unreadable}: content encoding {encoding!r}")
    too_large = f"{unreadable}: more than the {MAX_ANSWER_BYTES} bytes cancelctl reads"
    for wbits in decoders:
        out, rest = b"", body
        try:
            while True:  # gzip: member after member (RFC 1952 2.2), as gzip(1) and Python's gzip module read them
                decoder = zlib.decompressobj(wbits)
                out += decoder.decompress(rest, MAX_ANSWER_BYTES + 1 - len(out))
                if decoder.unconsumed_tail or len(out) > MAX_ANSWER_BYTES:
                    raise OutcomeUnknown(too_large)
                out += decoder.flush()
                if len(out) > MAX_ANSWER_BYTES:
                    raise OutcomeUnknown(too_large)
                if not decoder.eof:  # the stream stops short: what it gave is the start of a body, not a body
                    raise zlib.error("truncated")
                rest = decoder.unused_data
                if not rest.strip(b"\0"):  # the end, or the zeros some servers pad a gzip file with
                    return out
                if wbits != zlib.MAX_WBITS | 16:  # bytes after a deflate stream: not a body cancelctl can read
                    raise zlib.error("trailing bytes")
        except zlib.error:
            continue
    raise OutcomeUnknown(f"{unreadable}: a broken {encoding} body")


MAX_HEAD_BYTES = 100 << 10  # bytes: the longest answer head read, as httpcore (h11's own default is 16 KiB)
MAX_ANSWER_BYTES = 4 << 20  # bytes, decoded: the largest venue answer (a full order book) is well under 1 MB


def _read_capped(r: httpx.Response, host: str, deadline: Deadline) -> bytes:
    """The answer's body, at most ``MAX_ANSWER_BYTES`` (after decompression), read before the deadline.

    More is OutcomeUnknown (5, unreadable answer): a body that streams
    zeros would otherwise fill memory. httpx's timeout bounds each read
    only, so an answer trickling in a byte at a time is cut off here at the
    deadline (OutcomeUnknown too: the request went out).
    """
    import time as clock

    declared = r.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise OutcomeUnknown(
            f"unreadable answer from {host}: {declared} bytes, more than the {MAX_ANSWER_BYTES} cancelctl reads"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in r.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise OutcomeUnknown(
                f"unreadable answer from {host}: more than the {MAX_ANSWER_BYTES} bytes cancelctl reads"
            )
        chunks.append(chunk)
        if clock.monotonic() > deadline.end:
            raise OutcomeUnknown(f"no answer from {host} before the deadline (the answer was still arriving)")
    return b"".join(chunks)


def _host(url: str) -> str:
    return url.split("/")[2] if "//" in url else url


def _why(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


def retry_note(exc: BaseException | None, n: int, seconds: float) -> str:
    """``Gemini unavailable (HTTP 503), retry 2 in 0.4 s``: a retry as the status line shows it (``seconds``: the
    wait)."""
    from cancelctl.text import one_line

    why = one_line(getattr(exc, "message", None) or type(exc).__name__, 80)
    return f"{why}, retry {n} in {seconds:.1f} s"


def with_retries(attempt: Callable[[], T], deadline: Deadline) -> T:
    """Call ``attempt`` until it returns, retrying NotSent and OutcomeUnknown.

    ``attempt`` must re-sign on every call. Backoff: 0.1 s doubling to 2 s,
    or the error's ``retry_after`` (the venue's Retry-After) when that is
    longer: the backoff is a floor, so no answer can make a hot loop. An
    error whose ``retry_after_floor`` is False (Gemini InvalidNonce: our own
    shorter wait for the clock) waits its ``retry_after`` exactly. No
    attempt starts after the deadline. Any other exception propagates at once.

    The first attempt runs before tenacity is imported (about 10 ms of
    start-up): in an emergency nothing the first cancel does not need runs
    before it. tenacity drives every attempt after a retryable failure.
    """
    maybe_processed: list[OutcomeUnknown] = []
    not_sent: list[NotSent] = []  # what kept earlier attempts from going out (the reason to report)

    def tracked() -> T:
        try:
            return attempt()
        except OutcomeUnknown as e:
            maybe_processed.append(e)
            raise
        except DeadlinePassed:
            raise
        except NotSent as e:
            not_sent.append(e)
            raise

    def delay(exc: BaseException | None, failures: int) -> float:
        backoff = min(0.1 * 2 ** (failures - 1), 2.0)
        wanted = getattr(exc, "retry_after", None)
        if wanted is None or not math.isfinite(wanted) or wanted < 0.0:
            wanted = backoff
        elif getattr(exc, "retry_after_floor", True):
            wanted = max(wanted, backoff)
        return float(min(wanted, deadline.remaining()))

    def out_of_time(exc: BaseException | None) -> bool:
        wanted = getattr(exc, "retry_after", None)
        return deadline.remaining() <= max(0.05, wanted if wanted is not None and math.isfinite(wanted) else 0.0)

    try:
        try:
            return tracked()
        except (NotSent, OutcomeUnknown) as first:
            if out_of_time(first):
                raise
            pause = delay(first, 1)
            if getattr(deadline, "listener", None) is not None:  # the note is made only for someone who listens
                deadline.event(retry_note(first, 1, pause))
            time.sleep(pause)

        import tenacity

        def failure(state: tenacity.RetryCallState) -> BaseException | None:
            return state.outcome.exception() if state.outcome else None

        def wait(state: tenacity.RetryCallState) -> float:
            exc = failure(state)
            seconds = delay(exc, state.attempt_number + 1)
            if getattr(deadline, "listener", None) is not None:
                deadline.event(retry_note(exc, state.attempt_number + 1, seconds))
            return seconds

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((NotSent, OutcomeUnknown)),
            wait=wait,
            stop=lambda state: out_of_time(failure(state)),
            reraise=True,
        )
        return retrying(tracked)
    except NotSent as e:
        if isinstance(e, DeadlinePassed) and (maybe_processed or not_sent):
            if not maybe_processed:
                raise not_sent[-1] from None
            last = maybe_processed[-1]
            raise OutcomeUnknown(last.message, venue_reason=last.venue_reason) from None
        if maybe_processed:
            last = maybe_processed[-1]
            raise OutcomeUnknown(
                f"{last.message}; retries then failed: {e.message}", venue_reason=last.venue_reason
            ) from None
        raise


if TYPE_CHECKING:
    #: What :func:`new_client` returns and :func:`send` takes.
    HTTPClient = Client | httpx.Client
