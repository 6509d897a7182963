"""A hostile venue: scripted answers per path, on top of the loopback server (``tests/loopback.py``).

Unlike the simulator it checks nothing and keeps no book: each path has a
queue of scripted answers (status and body bytes, or ``drop``: read the
request, then close the connection without answering, an answer lost on
the way back). The last answer of a queue repeats; an answer may also be a
function of the request. Every request is logged as ``{"method", "path",
"body", "time"}`` with the JSON body (for Gemini, the signed payload). The
server listens on 127.0.0.1 only and stops by itself after ``lifetime`` s.

Also the fixtures the tests against it share (registered for every test
module by ``pytest_plugins`` in ``tests/conftest.py``): ``venue`` (a fresh
hostile venue), ``gem`` (profile ``g``: a Gemini account key on it) and
``pac`` (profile ``p``: a Pacifica main-wallet key on it, base URL ``venue.url + P``).
A module may extend one by requesting it under the same name.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass

import pytest

from cancelctl.sim.pacifica import solana_keypair

from loopback import Loopback, Request, response

PAC_PRIVATE, PAC_ACCOUNT = solana_keypair(bytes(range(151, 183)))
P = "/api/v1"  # Pacifica's path prefix: a profile's base_url is venue.url + P


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    drop: bool = False  # read the request, then close the connection without answering
    delay: float = 0.0  # seconds to wait before answering
    trickle: float = 0.0  # > 0: send the head, then the body one byte every ``trickle`` s (a body that crawls in)


def reply(
    status: int = 200,
    body: object = None,
    *,
    raw: bytes | None = None,
    drop: bool = False,
    delay: float = 0.0,
    trickle: float = 0.0,
) -> Reply:
    """A scripted answer: ``body`` as JSON, or ``raw`` bytes as they are."""
    data = raw if raw is not None else json.dumps(body).encode()
    return Reply(status, data, drop, delay, trickle)


def _trickled(whole: bytes, body_size: int, every: float):
    head = whole[: len(whole) - body_size]
    yield head
    for i in range(len(whole) - body_size, len(whole)):
        time.sleep(every)
        yield whole[i : i + 1]


def _logged(req: Request) -> dict:
    payload = req.headers.get("x-gemini-payload")
    try:
        body = json.loads(base64.b64decode(payload)) if payload else (json.loads(req.body) if req.body else None)
    except ValueError:
        body = None
    return {"method": req.method, "path": req.path.split("?", 1)[0], "body": body, "time": req.time}


class HostileVenue:
    def __init__(self, lifetime: float = 120.0) -> None:
        self.routes: dict[str, list] = {}
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self._server = Loopback(self._answer, lifetime=lifetime)

    @property
    def url(self) -> str:
        return self._server.url

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

    def _answer(self, req: Request) -> bytes:
        request = _logged(req)
        with self.lock:
            self.log.append(request)
            queue = self.routes.get(request["path"])
            r = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply(404, b'{"error":"not scripted"}')
        if callable(r):
            r = r(request)
        if r.delay:
            time.sleep(r.delay)
        if r.trickle:
            return _trickled(response(r.status, r.body), len(r.body), r.trickle)
        return b"" if r.drop else response(r.status, r.body)

    def __enter__(self) -> HostileVenue:
        self._server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()


@pytest.fixture
def venue():
    with HostileVenue(lifetime=60) as v:
        yield v


@pytest.fixture
def gem(venue, env):
    """Profile ``g``: a Gemini account key on the hostile venue."""
    from conftest import GEMINI_KEY, GEMINI_SECRET

    env.write_config({"g": {"venue": "gemini", "base_url": venue.url}})
    env.secret("g", "api_key", GEMINI_KEY)
    env.secret("g", "api_secret", GEMINI_SECRET)
    return venue


@pytest.fixture
def pac(venue, env):
    """Profile ``p``: a Pacifica main-wallet key on the hostile venue."""
    env.write_config({"p": {"venue": "pacifica", "base_url": venue.url + P}})
    env.secret("p", "private_key", PAC_PRIVATE)
    return venue
