"""A tiny loopback HTTP server that answers exactly what a test tells it to.

For faults the simulator has no words for (a body that never ends, a
header with a nonsense value, venue text with control characters): the
test gives a function ``answer(request) -> bytes | iterable of bytes``
that produces the raw HTTP answer. Listens on 127.0.0.1 only, stops by
itself after ``lifetime`` seconds, and at the end of the ``with`` block.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float
    n: int  # 0 for the first request this server saw


def response(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = "OK") -> bytes:
    """One whole HTTP/1.1 answer (Content-Length set, connection closed after it)."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    )
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    return head.encode() + b"\r\n" + body


class Loopback:
    def __init__(self, answer: Callable[[Request], bytes | Iterable[bytes]], lifetime: float = 60.0) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(10)
                f = self.request.makefile("rb")
                try:
                    line = f.readline(65536).decode("latin-1").split()
                    if len(line) < 2:
                        return
                    headers = {}
                    while True:
                        h = f.readline(65536).decode("latin-1")
                        if h in ("\r\n", "\n", ""):
                            break
                        k, _, v = h.partition(":")
                        headers[k.strip().lower()] = v.strip()
                    body = f.read(int(headers.get("content-length") or 0))
                    with outer.lock:
                        req = Request(line[0], line[1], headers, body, time.monotonic(), len(outer.requests))
                        outer.requests.append(req)
                    out = outer.answer(req)
                    chunks = [out] if isinstance(out, bytes) else out
                    for chunk in chunks:
                        if outer.stopping.is_set():
                            return
                        self.request.sendall(chunk)
                except OSError:  # the client hung up: often the point of the test
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Loopback:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


def port_in_use() -> tuple[socket.socket, int]:
    """A listening loopback socket and its port (close it when done)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]
