"""The venue simulator: a real HTTP server on 127.0.0.1 that answers as the venues do.

Gemini is served under ``/v1/...`` (profile ``base_url`` = the server's
root URL) and Pacifica under ``/api/v1/...`` (``base_url`` = root +
``/api/v1``). Tests and ``cancelctl demo`` run it in a thread; ``cancelctl
sim`` runs it standalone. It stops by itself after ``lifetime`` seconds.

Faults can be queued per path prefix (:meth:`Simulator.fail`): an HTTP
status with a Gemini/HTML/bare-string body, a delay before or after the
request is processed, a connection reset mid-answer, truncated JSON. For a
standalone server the same is reachable over HTTP: ``POST /_sim/fault``
with the fault as JSON, ``GET /_sim/state``, and ``POST /_sim/seed``
(:meth:`Simulator.seed`: the rehearsal accounts' orders back, as at start).

``clock_offset`` (seconds, default 0; ``POST /_sim/clock`` with
``{"offset": s}``) moves the simulated venues' clock: the ``Date``
header of every answer, Pacifica's expiry check and Gemini's
time-based nonce window. The public endpoints ``GET /v1/symbols``
(Gemini) and ``GET /api/v1/info`` (Pacifica) answer without a key. The
request log keeps each request's header names (never values), when it arrived and when it was answered.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cancelctl.sim.gemini import GeminiSim


@dataclass
class Fault:
    """One queued fault for requests whose path starts with ``path``.

    kind: ``status`` (answer ``status`` with ``body``: "gemini" (the
    ``{"result": "error", "reason", "message"}`` envelope), "error"
    (Gemini's second envelope ``{"error": reason, "message"}``), "html",
    "text" or "none"; or, with ``payload`` set, exactly that text as the
    body, with ``content_type`` and any ``headers``: every answer a venue
    can give, such as a conformance fixture's status, headers and body),
    ``delay`` (sleep ``seconds`` then handle normally),
    ``late`` (handle, then sleep ``seconds`` before answering), ``reset``
    (handle, then drop the connection mid-answer), ``truncated`` (handle,
    then send half of the JSON), ``trickle`` (handle, send the headers,
    then the body one byte every ``seconds``, 0.2 s when not set: an answer
    that never times out a per-read timeout), ``hold`` (wait until the
    request log holds ``until[path]`` requests of each exact path in
    ``until``, at most ``seconds``, then handle normally: a test's proof that
    a client sends those requests without waiting for this one's answer).
    ``times``: how many requests
    it hits (-1 for every one). ``key``: only requests signed by this Gemini
    API key or for this Pacifica account (None: any). ``exact``: only
    requests whose path is ``path`` itself, not one under it.
    """

    path: str
    kind: str = "status"
    status: int = 503
    body: str = "gemini"
    reason: str = "Maintenance"
    retry_after: float | None = None
    seconds: float = 0.0
    times: int = 1
    key: str | None = None
    payload: str | None = None  # verbatim body (overrides ``body``)
    content_type: str | None = None  # with ``payload``; default application/json
    headers: dict | None = None  # extra answer headers, e.g. {"ratelimit": "\"credits\";r=0;t=2"}
    exact: bool = False  # the path itself only (GET /api/v1/orders, not /api/v1/orders/twap)
    until: dict | None = None  # kind "hold": {exact path: how many requests of it the log must hold}


class _Server(ThreadingHTTPServer):
    """The HTTP server; a client that hangs up mid-answer is its own business, never a traceback."""

    request_queue_size = 256  # a hundred profiles connect at once (benchmarks/panic.py): none waits for a SYN retry

    def handle_error(self, request, client_address) -> None:
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):  # BrokenPipe, reset, a client that stopped reading
            return
        sys.stderr.write(
            f"cancelctl sim: error answering {client_address[0]}:{client_address[1]}: {type(error).__name__}: {error}\n"
        )


class Simulator:
    """Both venues behind one loopback HTTP server."""

    def __init__(
        self, port: int = 0, lifetime: float | None = 300.0, tls=None, idle_timeout: float | None = None
    ) -> None:
        """``tls``: an ``ssl.SSLContext`` with the server's certificate to serve HTTPS instead of HTTP.
        ``idle_timeout``: seconds after which a kept-alive connection with no request is closed (None: never), as a
        venue's front end does; may be changed while running (it applies to connections opened afterwards)."""
        self.idle_timeout = idle_timeout
        self.gemini = GeminiSim()
        self.pacifica = None
        try:
            from cancelctl.sim.pacifica import PacificaSim

            self.pacifica = PacificaSim()
        except ImportError:
            pass
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.log: list[dict] = []
        self.arrived = threading.Condition(self.lock)  # notified as each request is logged (Fault kind "hold")
        self.lifetime = lifetime
        self.clock_offset = 0.0  # seconds the venues' clock is ahead of this machine's (see clock())
        self.gemini.clock = self.clock
        if self.pacifica is not None:
            self.pacifica.clock = self.clock
        self._server = _Server(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim", daemon=True
        )
        self._thread.start()
        if self.lifetime:
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def serve_forever(self) -> None:
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.2)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def clock(self) -> float:
        """The simulated venues' time, seconds since the epoch: this machine's plus ``clock_offset``."""
        return time.time() + self.clock_offset

    def fail(self, path: str, kind: str = "status", **kw) -> Fault:
        fault = Fault(path=path, kind=kind, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, path: str, key: str | None = None) -> Fault | None:
        with self.lock:
            for f in self.faults:
                hit = path == f.path if f.exact else path.startswith(f.path)
                if hit and f.times != 0 and (f.key is None or f.key == key):
                    if f.times > 0:
                        f.times -= 1
                    return f
        return None

    def hold(self, until: dict[str, int], seconds: float) -> bool:
        """Wait until the log holds ``until[path]`` requests of each exact path, at most ``seconds``; whether it
        did (Fault kind ``hold``)."""
        end = time.monotonic() + seconds
        with self.arrived:
            while not all(sum(e["path"] == p for e in self.log) >= n for p, n in until.items()):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    def requests(self, path_prefix: str = "") -> list[dict]:
        """The logged requests whose path starts with ``path_prefix``, in the order they arrived: ``method``,
        ``path``, ``query`` (after the ``?``: Pacifica's unsigned reads name their account there), ``time``
        (when it was read, ``time.time()`` s), ``answered`` (when its answer began to be written, or the connection
        was given up; absent until then), ``status``, the header names, and what identifies it
        (:func:`_identity`). Which requests arrived after another was answered shows which waited for it
        (:func:`round_trips`)."""
        with self.lock:
            return [r for r in self.log if r["path"].startswith(path_prefix)]

    def state(self) -> dict:
        with self.lock:
            return {"gemini": self.gemini.state(), "pacifica": self.pacifica.state() if self.pacifica else None}

    def seed(self) -> dict:
        """Give the rehearsal accounts (:data:`REHEARSAL`) their resting orders again; what they hold now.

        What ``cancelctl sim`` starts with and what ``cancelctl sim --seed``
        (``POST /_sim/seed``) restores without a restart: the Gemini key's
        account gets 3 orders on the key's session and 3 placed in the UI,
        the Pacifica account 4 orders (one reduce-only, one stop) and a
        0.01 BTC long position. Orders still open on those accounts are
        removed first, so the book is the same after every seed. Returns
        ``{"gemini_orders": n, "pacifica_orders": n, "pacifica_positions": n}``.
        """
        key, secret, account = REHEARSAL["gemini_key"], REHEARSAL["gemini_secret"], REHEARSAL["gemini_account"]
        with self.lock:
            if key not in self.gemini.keys:
                self.gemini.add_key(key, secret, account=account)
            for order in self.gemini.open_orders(account):
                order.live = False
            for symbol, price in (("btcusd", "50000.00"), ("ethusd", "2500.00"), ("solusd", "140.00")):
                self.gemini.add_order(account, key, symbol=symbol, price=price)
                self.gemini.add_order(account, "UI", symbol=symbol, price=price)
            counts = {"gemini_orders": len(self.gemini.open_orders(account)), "pacifica_orders": 0}
            counts["pacifica_positions"] = 0
            if self.pacifica is not None:
                private, public = rehearsal_pacifica()
                p = self.pacifica
                p.add_account(private)
                for resting in p.open_orders(public):
                    resting.live = False
                p.add_order(public, "BTC", price="61000")
                p.add_order(public, "ETH", side="ask", price="2600")
                p.add_order(public, "SOL", side="ask", price="160", reduce_only=True)
                p.add_order(public, "ETH", side="ask", price="2200", reduce_only=True, stop=True)
                p.add_position(public, "BTC", "bid", "0.01", entry_price="60000")
                counts["pacifica_orders"] = len(p.open_orders(public))
                counts["pacifica_positions"] = len(p.open_positions(public))
            return counts


def _identity(path: str, headers: dict[str, str], body: bytes) -> dict:
    """What identifies a request in the log: Gemini ``key`` and ``nonce`` (text, as signed), Pacifica ``account``
    and ``timestamp`` (ms).

    Tests check from these that every retry was re-signed with a fresh nonce
    or timestamp. Nothing is verified here; unparsable requests log nothing.
    """
    import base64

    try:
        if path.startswith("/v1/") and headers.get("x-gemini-payload"):
            payload = json.loads(base64.b64decode(headers["x-gemini-payload"]))
            return {"key": headers.get("x-gemini-apikey"), "nonce": str(payload.get("nonce"))}
        if path.startswith("/api/v1/") and body:
            data = json.loads(body)
            if isinstance(data, dict) and isinstance(data.get("actions"), list) and data["actions"]:
                data = data["actions"][0].get("data") or {}
            if isinstance(data, dict):
                return {"account": data.get("account"), "timestamp": data.get("timestamp")}
    except (ValueError, TypeError, AttributeError):
        pass
    return {}


def round_trips(log: list[dict]) -> int:
    """The longest chain of requests in ``log`` (entries of :meth:`Simulator.requests`) in which each one arrived
    after the one before it was answered: how many round trips one after the other the client spent, whatever
    the latency and the machine's load. Requests sent together (the second before the first was answered)
    count once."""
    depth: list[int] = []
    for i, e in enumerate(log):
        before = [depth[j] for j, d in enumerate(log[:i]) if d.get("answered", float("inf")) <= e["time"]]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


#: The fake credentials ``cancelctl sim`` prints (rehearsal only: they exist on this simulator and nowhere else).
REHEARSAL = {
    "gemini_key": "account-SIMULATOR00000001",
    "gemini_secret": "simulator-secret-not-real",
    "gemini_account": "primary",
}
REHEARSAL_PACIFICA_SEED = b"cancelctl-simulator-rehearsal-01"  # 32 bytes: the Pacifica rehearsal key's seed


def rehearsal_pacifica() -> tuple[str, str]:
    """(base58 private key, base58 account) of the Pacifica rehearsal account."""
    from cancelctl.sim.pacifica import solana_keypair

    return solana_keypair(REHEARSAL_PACIFICA_SEED)


# Public endpoint (no key, GET): Gemini "Symbols", trimmed. Gemini's ticker and symbol details come
# from GeminiSim.public, Pacifica's "Get market info" (/api/v1/info) from PacificaSim.
PUBLIC: dict[str, object] = {
    "/v1/symbols": ["btcusd", "ethusd", "solusd", "btcgusdperp", "ethgusdperp", "solgusdperp"],
}


MAX_LINE, MAX_HEADERS = 65536, 100  # a request's longest header line and most header lines (the stdlib's limits)


class _Headers(list):
    """A request's header lines as (name, value) pairs, in order: what the handler asks of ``http.client``'s
    message (``get``: the first value of a name, any case; ``items``)."""

    def get(self, name: str, default: str = "") -> str:
        key = name.lower()
        for k, v in self:
            if k.lower() == key:
                return v
        return default

    def items(self) -> list[tuple[str, str]]:
        return list(self)


def _handler(sim: Simulator):
    class Handler(BaseHTTPRequestHandler):
        entry: dict | None = None  # the request being answered (its log entry)
        protocol_version = "HTTP/1.1"
        server_version = "cancelctl-sim"
        disable_nagle_algorithm = True

        def setup(self):
            self.timeout = sim.idle_timeout  # type: ignore[misc]  # socketserver.StreamRequestHandler: the connection's idle timeout (s)
            super().setup()

        def log_message(self, format, *args):
            pass

        def parse_request(self) -> bool:
            """The stdlib's, with the header block read here instead of by :mod:`email`'s parser, which was about a
            third of the simulator's CPU per request with a hundred profiles (docs/performance.md). A request line
            that is not ``METHOD TARGET HTTP/1.x`` gets the stdlib's own parse and error answers."""
            line: bytes = self.raw_requestline  # type: ignore[attr-defined]  # read by handle_one_request
            words = str(line, "iso-8859-1").rstrip("\r\n").split()
            if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
                return super().parse_request()
            self.requestline = " ".join(words)
            self.command, path, self.request_version = words
            self.path = "/" + path.lstrip("/") if path.startswith("//") else path  # as the stdlib (gh-87389)
            self.close_connection = True
            headers = _Headers()
            for _ in range(MAX_HEADERS + 1):
                line = self.rfile.readline(MAX_LINE + 1)
                if len(line) > MAX_LINE:
                    self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                    return False
                if line in (b"\r\n", b"\n", b""):
                    break
                name, colon, value = line.decode("iso-8859-1").partition(":")
                if colon:
                    headers.append((name.strip(), value.strip()))
            else:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            self.headers = headers  # type: ignore[assignment]
            connection = headers.get("Connection", "").lower()
            self.close_connection = connection == "close" or (
                self.request_version == "HTTP/1.0" and connection != "keep-alive"
            )
            if headers.get("Expect", "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
                return self.handle_expect_100()
            return True

        def date_time_string(self, timestamp=None):
            """The ``Date`` header, on the simulated venues' clock (``sim.clock_offset``)."""
            return super().date_time_string(sim.clock() if timestamp is None else timestamp)

        def _send(
            self,
            status: int,
            body: object,
            *,
            raw: bytes | None = None,
            ctype: str = "application/json",
            headers: dict | None = None,
        ) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            if ctype:  # "" sends none (a fixture that records no Content-Type)
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            entry = getattr(self, "entry", None)
            if entry is not None and "answered" not in entry:
                # stamped before the first byte of the answer goes out, not after the last: the client may read it
                # and send its next request before this thread runs again, and that request must not seem earlier
                entry["answered"] = time.time()
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            body = self._body()
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            if path.startswith("/_sim/"):
                return self._admin(method, path, body)
            entry = {"method": method, "path": path, "query": query, "time": time.time()}
            self.entry = entry
            entry.update(_identity(path, headers, body))
            with sim.lock:
                sim.log.append(entry)
                entry["headers"] = sorted(headers)  # names only: tests check what was (not) signed
                sim.arrived.notify_all()
            try:
                self._answer(method, path, query, headers, body, entry)
            finally:
                self.entry = None
                entry.setdefault("answered", time.time())  # when the answer began to go out (or was given up)

        def _answer(
            self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, entry: dict
        ) -> None:
            fault = sim._take_fault(path, entry.get("key") or entry.get("account"))
            if fault and fault.kind == "status":
                entry["fault"] = fault.kind
                return self._fault_status(fault)
            if fault and fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault and fault.kind == "hold":
                entry["held"] = sim.hold(fault.until or {}, fault.seconds)
            with sim.lock:
                if method == "GET" and path in PUBLIC:
                    status, answer = 200, PUBLIC[path]
                elif method == "GET" and path.startswith("/v1/"):
                    status, answer = sim.gemini.public(path)
                elif path.startswith("/api/v1/") and sim.pacifica is not None:
                    status, answer = sim.pacifica.handle(method, path, query, headers, body)
                elif path.startswith("/v1/") and method == "POST":
                    status, answer = sim.gemini.handle(path, headers, self.client_address[0])
                else:
                    status, answer = 404, None
            entry["status"] = status
            if fault and fault.kind == "late":
                time.sleep(fault.seconds)
            if status == 404 and answer is None:
                return self._send(404, None, raw=b"<html><body>404 Not Found</body></html>", ctype="text/html")
            data = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
            if fault and fault.kind == "reset":
                self.wfile.write(
                    (
                        f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data) + 50}\r\n\r\n"
                    ).encode()
                    + data[: len(data) // 2]
                )
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if fault and fault.kind == "truncated":
                return self._send(status, None, raw=data[: max(1, len(data) // 2)])
            if fault and fault.kind == "trickle":
                return self._trickle(status, data, fault.seconds or 0.2)
            from cancelctl.sim.pacifica import Html

            ctype = (
                "text/html"
                if isinstance(answer, Html)
                else "application/json"
                if not isinstance(answer, bytes)
                else "text/plain"
            )
            self._send(status, None, raw=data, ctype=ctype, headers=getattr(answer, "headers", None))

        def _trickle(self, status: int, data: bytes, interval: float) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.flush()
                for i in range(len(data)):
                    time.sleep(interval)
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
            except OSError:  # the client gave up: that is the point
                pass

        def _fault_status(self, fault: Fault) -> None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            headers.update(fault.headers or {})
            if fault.payload is not None:
                ctype = fault.content_type if fault.content_type is not None else "application/json"
                for name in [k for k in headers if k.lower() == "content-type"]:
                    ctype = headers.pop(name)
                return self._send(fault.status, None, raw=fault.payload.encode(), ctype=ctype, headers=headers)
            if fault.body == "error":
                return self._send(
                    fault.status, {"error": fault.reason, "message": f"simulated {fault.reason}"}, headers=headers
                )
            if fault.body == "gemini":
                body = {"result": "error", "reason": fault.reason, "message": f"simulated {fault.reason}"}
                return self._send(fault.status, body, headers=headers)
            if fault.body == "html":
                return self._send(
                    fault.status,
                    None,
                    raw=b"<html><body><h1>Bad Gateway</h1></body></html>",
                    ctype="text/html",
                    headers=headers,
                )
            if fault.body == "text":
                return self._send(fault.status, None, raw=fault.reason.encode(), ctype="text/plain", headers=headers)
            return self._send(fault.status, None, raw=b"", headers=headers)

        def _admin(self, method: str, path: str, body: bytes) -> None:
            if path == "/_sim/state":
                return self._send(200, sim.state())
            if path == "/_sim/fault" and method == "POST":
                try:
                    fault = sim.fail(**json.loads(body or b"{}"))
                except (TypeError, ValueError) as e:
                    return self._send(400, {"error": str(e)})
                return self._send(200, asdict(fault))
            if path == "/_sim/seed" and method == "POST":
                return self._send(200, sim.seed())
            if path == "/_sim/clock" and method == "POST":
                try:
                    sim.clock_offset = float(json.loads(body or b"{}")["offset"])
                except (KeyError, TypeError, ValueError):
                    return self._send(400, {"error": 'want {"offset": seconds}'})
                return self._send(200, {"offset": sim.clock_offset})
            return self._send(404, {"error": "unknown admin path"})

    return Handler
