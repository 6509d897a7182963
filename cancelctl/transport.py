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
        """A request on this deadline was written whole (see :attr:`on_written`)."""
        hook = self.on_written
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


def new_client(profile: str | None = None) -> httpx.Client:
    """An httpx client for one profile (keep-alive across that profile's requests); in ``cancelctl guard``, the
    warm one it keeps for ``profile`` (see :data:`warm_clients`).

    Certificates are verified (the context from :func:`warm_tls` when it was
    started, else :func:`tls_context`); redirects are never followed.
    Raises ConfigError (78) naming the environment variable when the proxy
    or CA settings cannot be used (see :func:`check_proxies`, :func:`tls_context`).
    """
    import httpx

    warm = warm_clients.get(profile) if warm_clients is not None and profile is not None else None
    if warm is not None:
        return warm
    thread = _tls.get("thread")
    if thread is not None:
        thread.join()
    if "error" in _tls:
        raise _tls["error"]
    verify = _tls.get("context") or tls_context()
    try:
        return httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False, verify=verify)
    except (ImportError, ValueError, httpx.InvalidURL):
        check_proxies()  # names the variable
        if _drop_unreadable_no_proxy(verify):
            return httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False, verify=verify)
        raise ConfigError(
            "the proxy settings in the environment are unusable",
            hint="check or unset HTTPS_PROXY, HTTP_PROXY and ALL_PROXY",
        ) from None


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
    button; the entry only ever kept a host off a proxy, and the line says which variable to fix.
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


def send(client: httpx.Client, request: PreparedRequest, deadline: Deadline) -> Answer:
    """Send ``request`` with the deadline's remaining time (s) as every timeout.

    Whether anything went out is decided by httpcore's ``trace`` events,
    not by the exception's type: a failure before the request's first byte
    (DNS, connect, a closed gate) is NotSent, one after it OutcomeUnknown.
    A kept-alive connection that fails before the whole request was written
    (the venue closed it while it sat idle) cannot have been acted on: the
    request goes again at once on a new connection (at most
    ``STALE_RETRIES`` times), without waiting for the retry backoff.
    Raises NotSent, OutcomeUnknown or ConfigError (a URL httpx cannot use).
    """
    for _ in range(STALE_RETRIES):
        try:
            return _send(client, request, deadline)
        except _Stale:
            continue
    return _send(client, request, deadline, stale_retry=False)


STALE_RETRIES = 2  # a request whose kept-alive connection turned out closed is sent again on a new one, this often


class _Stale(Exception):
    """A reused connection failed before the whole request went out: nothing can have reached the venue."""


def _send(client: httpx.Client, request: PreparedRequest, deadline: Deadline, *, stale_retry: bool = True) -> Answer:
    import httpx

    if deadline.closed:
        raise NotSent("the run was stopped before the request was sent")
    remaining = deadline.remaining()
    if remaining <= 0.0:
        raise DeadlinePassed("the deadline passed before the request could be sent", hint="raise --timeout")
    wrote = False
    fresh = False  # the request went on a connection opened for it (not one kept alive)
    whole = False  # the whole request (headers and body) was written

    def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal wrote, fresh, whole
        if event.startswith("connection.connect_tcp."):
            fresh = True
        elif event == "http11.send_request_headers.started":
            deadline.writing()  # Stopped when the run has stopped waiting: the request never goes out
            wrote = True
        elif event == "http11.send_request_body.complete":
            whole = True
            deadline.written()

    host = _host(request.url)
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
        raise NotSent(f"cannot reach {host}: {_why(e)}") from None
    except httpx.PoolTimeout:
        raise NotSent(f"cannot reach {host}: no connection before the deadline") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise ConfigError(f"unusable URL {request.url}: {_why(e)}", hint="check the profile's base_url") from None
    except httpx.TimeoutException:
        if not wrote:
            raise NotSent(f"cannot reach {host}: no connection before the deadline") from None
        raise OutcomeUnknown(f"no answer from {host} before the deadline") from None
    except httpx.TransportError as e:
        if stale_retry and not fresh and not whole and not deadline.closed:
            raise _Stale from None
        if not wrote:
            raise NotSent(f"cannot reach {host}: {_why(e)}") from None
        raise OutcomeUnknown(f"connection to {host} failed mid-request: {_why(e)}") from None
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, body)


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
