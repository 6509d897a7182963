"""A hostile venue: a loopback HTTP server that answers exactly what the test says.

Unlike the simulator it checks nothing and keeps no book: each path has a
queue of scripted answers (status, body bytes, or ``drop`` to close the
connection after reading the request, an answer lost on the way back). The
last answer of a queue repeats. Every request is logged (method, path, JSON
body). The server binds 127.0.0.1, runs in a daemon thread and stops by
itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    drop: bool = False  # read the request, then close the connection without answering
    delay: float = 0.0  # seconds to wait before answering


def reply(status: int = 200, body: object = None, *, raw: bytes | None = None, drop: bool = False, delay: float = 0.0) -> Reply:
    """A scripted answer: ``body`` as JSON, or ``raw`` bytes as they are."""
    data = raw if raw is not None else json.dumps(body).encode()
    return Reply(status, data, drop, delay)


class HostileVenue:
    def __init__(self, lifetime: float = 120.0) -> None:
        self.routes: dict[str, list] = {}
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.lifetime = lifetime

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, path: str, *replies) -> None:
        """Answer requests for ``path`` (exact, query string ignored) with ``replies`` in turn; the last repeats.

        A reply may be a callable taking the logged request (``{"method", "path", "body", "time"}``)
        and returning a Reply: an answer that depends on time or on what was sent.
        """
        with self.lock:
            self.routes[path] = list(replies)

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.log.clear()

    def requests(self, path: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.log if path is None or r["path"] == path]

    def _next(self, request: dict) -> Reply:
        with self.lock:
            queue = self.routes.get(request["path"])
            if not queue:
                return Reply(404, b'{"error":"not scripted"}')
            r = queue.pop(0) if len(queue) > 1 else queue[0]
        return r(request) if callable(r) else r

    def __enter__(self) -> "HostileVenue":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self._server.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()


def _handler(venue: HostileVenue):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            payload = self.headers.get("X-GEMINI-PAYLOAD")
            if payload:
                import base64

                body = json.loads(base64.b64decode(payload))
            request = {"method": method, "path": path, "body": body, "time": time.monotonic()}
            with venue.lock:
                venue.log.append(request)
            r = venue._next(request)
            if r.delay:
                time.sleep(r.delay)
            if r.drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.send_response(r.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(r.body)))
            self.end_headers()
            self.wfile.write(r.body)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

    return Handler
