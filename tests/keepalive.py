"""A scripted loopback HTTP/1.1 server that keeps connections alive (``tests/loopback.py`` closes each one).

For what only a reused connection shows: bytes left over after an answer, a
connection closed just before its reuse, answers that come in pieces. The test
gives ``answer(request) -> bytes | list of (bytes, pause_s)``: the raw bytes
written after the request was read (pieces with a pause after each); ``None``
closes the connection without answering. Every request is logged with the
number of the connection it came on. Listens on 127.0.0.1 only and stops by
itself after ``lifetime`` seconds, and at the end of the ``with`` block.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int  # 1 for the first connection the server accepted


def answer(status: int = 200, body: bytes = b"", extra: str = "") -> bytes:
    """One whole HTTP/1.1 answer that keeps the connection open (``extra``: more header lines, CRLF-ended)."""
    return (
        f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


Script = Callable[[Seen], "bytes | list[tuple[bytes, float]] | None"]


class KeepAliveServer:
    def __init__(self, script: Script, lifetime: float = 30.0) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def paths(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if path is None or s.path.split("?")[0] == path]

    def __enter__(self) -> KeepAliveServer:
        threading.Thread(target=self._accept, daemon=True).start()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.timer.cancel()
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, conn: socket.socket, n: int) -> None:
        conn.settimeout(10)
        buf = b""
        with conn:
            try:
                while not self.stopping.is_set():
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    method, path = lines[0].split(" ")[:2]
                    headers = {}
                    for line in lines[1:]:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                    size = int(headers.get("content-length") or 0)
                    while len(buf) < size:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    body, buf = buf[:size], buf[size:]
                    seen = Seen(method, path, headers, body, n)
                    with self.lock:
                        self.seen.append(seen)
                    out = self.script(seen)
                    if out is None:
                        return
                    for piece, pause in [(out, 0.0)] if isinstance(out, bytes) else out:
                        if self.stopping.is_set():
                            return
                        conn.sendall(piece)
                        if pause:
                            time.sleep(pause)
            except OSError:  # the client hung up: often the point of the test
                return
