"""cancelctl's own HTTP/1.1 client (``transport.Client``) against a hostile venue on a kept-alive connection.

The real ``cancelctl`` process against ``tests/keepalive.py``: what only a
reused connection can show (bytes the venue sent that no request asked for, a
connection closed just before its reuse) and answers whose head never ends.
An answer about another request is not an answer (RFC 9112 6.3: "A client
MUST NOT process, cache, or forward such extra data as a separate response").
"""

from __future__ import annotations

import json
import time

import pytest
from keepalive import KeepAliveServer, Seen, answer

from conftest import GEMINI_KEY, GEMINI_SECRET, parse_json

ORDER = {
    "order_id": "7",
    "symbol": "btcusd",
    "side": "buy",
    "price": "1",
    "remaining_amount": "1",
    "is_live": True,
    "is_cancelled": False,
}
CANCEL_ALL_OK = json.dumps({"result": "ok", "details": {"cancelledOrders": [], "cancelRejects": []}}).encode()


def gemini_on(env, url: str) -> None:
    env.write_config({"g": {"venue": "gemini", "base_url": url}})
    env.secret("g", "api_key", GEMINI_KEY)
    env.secret("g", "api_secret", GEMINI_SECRET)


def book_of_one(seen: Seen) -> bytes:
    """The venue's book always holds order 7; an order cancel names it and says it is still live."""
    if seen.path == "/v1/orders":
        return answer(200, json.dumps([ORDER]).encode())
    if seen.path == "/v1/order/cancel":
        return answer(200, json.dumps(ORDER).encode())
    return answer(200, CANCEL_ALL_OK)


SMUGGLED_BOOK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(answer(200, CANCEL_ALL_OK) + SMUGGLED_BOOK, id="a second answer after the first"),
        pytest.param(  # Content-Length shorter than the body: the rest reads like an answer of its own
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(CANCEL_ALL_OK)}\r\n\r\n".encode() + CANCEL_ALL_OK + SMUGGLED_BOOK,
            id="a body longer than its Content-Length",
        ),
    ],
)
def test_bytes_no_request_asked_for_are_never_the_next_request_s_answer(env, first):
    """The cancel-all's answer comes with an empty book after it on the same connection; the real book holds an
    order. Reading those bytes as the answer to the book read would verify "no open orders" (exit 0) for a book
    that was never read: the connection is dropped instead, and the book read goes out on a new one."""

    def script(seen: Seen) -> bytes:
        if seen.path == "/v1/order/cancel/all" and len(server.paths("/v1/order/cancel/all")) == 1:
            return first
        return book_of_one(seen)

    with KeepAliveServer(script) as server:
        gemini_on(env, server.url)
        proc = env.run("cancel", "all", "-p", "g", "--verify", "--json", "--timeout", "1.5")
        reads = server.paths("/v1/orders")
    assert "Traceback" not in proc.stderr
    assert proc.returncode != 0, proc.stdout  # the book was never empty
    r = parse_json(proc)["results"][0]
    assert r["status"] != "done" and reads, r
    assert reads[0].connection == 2, "the book read went out on the connection that held the stray bytes"


def test_a_body_after_a_204_is_not_the_next_answer():
    """In process: a 204 has no body (RFC 9110 15.3.5), so bytes after its head are not the next request's answer."""
    from cancelctl import transport
    from cancelctl.signing import PreparedRequest

    def script(seen: Seen) -> bytes:
        if len(server.paths()) == 1:
            return b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED_BOOK
        return answer(200, b'["real"]')

    client = transport.Client(None)
    with KeepAliveServer(script) as server:
        answers = [
            transport.send(client, PreparedRequest("GET", server.url + "/x", {}), transport.Deadline(3.0))
            for _ in range(2)
        ]
    client.close()
    assert [(a.status, a.body) for a in answers] == [(204, b""), (200, b'["real"]')]


NEVER_ENDING = {  # answers that keep arriving and never complete, without a byte of body to cut them off at
    "100 Continue after 100 Continue": [(b"HTTP/1.1 100 Continue\r\n\r\n", 0.2)] * 100,
    "a head a byte at a time": [(b"HTTP/1.1 200 OK\r\n", 0.2)] + [(b"X", 0.2)] * 100,
    "trailers a byte at a time": [(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n", 0.2)]
    + [(b"X", 0.2)] * 100,
}


@pytest.mark.parametrize("shape", list(NEVER_ENDING))
def test_an_answer_that_never_ends_is_cut_off_at_the_deadline(shape):
    """In process: each read waits at most the time left when the request began, and an answer still arriving at
    the deadline is cut off, wherever it is (a trickling body was; a head, 1xx answers or trailers were not)."""
    from cancelctl import transport
    from cancelctl.errors import OutcomeUnknown
    from cancelctl.signing import PreparedRequest

    client = transport.Client(None)
    with KeepAliveServer(lambda seen: NEVER_ENDING[shape]) as server:
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown, match="before the deadline"):
            transport.send(client, PreparedRequest("GET", server.url + "/x", {}), transport.Deadline(0.5))
        took = time.monotonic() - started
    client.close()
    assert took < 0.5 + 0.2 + 1.0, took  # the deadline, then at most one more piece (0.2 s apart), load headroom


def test_heartbeat_reports_a_beat_whose_answer_never_ends(env):
    """The same through the real process: ``heartbeat`` (each beat bounded by ``--interval``) sat in its first
    beat for as long as the venue went on, never saying that a heartbeat failed, nor that the session's window
    passed."""
    import signal

    shapes = list(NEVER_ENDING.values())
    with KeepAliveServer(lambda seen: shapes[(len(server.paths()) - 1) % 2], lifetime=30) as server:
        gemini_on(env, server.url)
        proc = env.popen("heartbeat", "--interval", "1")
        try:
            time.sleep(4.5)
            n = len(server.paths())
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=10)
    assert err.count("heartbeat failed for profile g") >= 2, err  # each beat cut off after about 1 s
    assert n >= 2
    assert proc.returncode == 0 and "Traceback" not in err


def test_a_head_as_large_as_httpx_read_is_read(env):
    """httpx (httpcore) reads an answer's head up to 100 KiB; h11 alone stops at 16 KiB. A venue's answer with a
    40 KiB head (cookies, a long policy), in TLS records of 16 KiB, made every cancel an unknown outcome (5) once
    requests left httpx; a head of 200 KiB is still unreadable."""

    def in_pieces(whole: bytes) -> list[tuple[bytes, float]]:  # as TLS hands it over: 16 KiB records
        return [(whole[i : i + (16 << 10)], 0.02) for i in range(0, len(whole), 16 << 10)]

    big = "X-Policy: " + "a" * (40 << 10) + "\r\n"
    huge = "X-Policy: " + "a" * (200 << 10) + "\r\n"
    for extra, code in ((big, 0), (huge, 5)):
        whole = answer(200, CANCEL_ALL_OK, extra)
        with KeepAliveServer(lambda seen, whole=whole: in_pieces(whole)) as server:
            gemini_on(env, server.url)
            proc = env.run("cancel", "all", "-p", "g", "--json", "--timeout", "1")
        assert proc.returncode == code, (len(extra), proc.stderr)
        assert "Traceback" not in proc.stderr


def test_a_proxy_variable_in_any_case_is_a_proxy(env):
    """httpx takes its proxies from ``urllib.request.getproxies()``, which reads ``*_proxy`` variables in any case
    (``Http_Proxy``): before cancelctl's own client, such a variable sent every request through the proxy; since,
    only the six spellings in ``PROXY_VARS`` did, and ``Http_Proxy`` meant a direct connection to the venue."""
    from conftest import closed_port

    venue = f"http://127.0.0.1:{closed_port()}"  # nothing listens there: only the proxy can answer
    with KeepAliveServer(lambda seen: answer(200, CANCEL_ALL_OK)) as proxy:
        gemini_on(env, venue)
        # --timeout 5: a fresh interpreter (not forked from the tests' zygote) that imports httpx, under load
        proc = env.run("cancel", "all", "-p", "g", "--json", "--timeout", "5", extra_env={"Http_Proxy": proxy.url})
        seen = proxy.paths()
    assert proc.returncode == 0, proc.stderr
    assert len(seen) == 1 and seen[0].path == venue + "/v1/order/cancel/all"  # the absolute URL: a proxy's request


def test_a_gzip_book_is_read_whole_or_not_at_all(env):
    """A gzip body is every member of it (RFC 1952 2.2, as gzip(1) reads it): a book sent as ``[]`` then a member
    listing order 7 was read as its first member alone, ``[]``, and verified "no open orders" (exit 0)."""
    import gzip

    book = gzip.compress(b"[]") + gzip.compress(json.dumps([ORDER]).encode())

    def script(seen: Seen) -> bytes:
        if seen.path == "/v1/orders":
            return answer(200, book, "Content-Encoding: gzip\r\n")
        return book_of_one(seen)

    with KeepAliveServer(script) as server:
        gemini_on(env, server.url)
        proc = env.run("cancel", "all", "-p", "g", "--verify", "--json", "--timeout", "1")
        reads = server.paths("/v1/orders")
    assert "Traceback" not in proc.stderr and reads
    assert proc.returncode == 5, proc.stdout  # the whole body, '[][...]', is no list: a book not read
    assert parse_json(proc)["results"][0]["verify_error"]["kind"] == "unknown"


@pytest.mark.parametrize(
    "coding,cut",
    [
        pytest.param("gzip", lambda z: z[:-8], id="gzip without its CRC and size"),
        pytest.param("gzip", lambda z: z[: len(z) // 2], id="half a gzip stream"),
        pytest.param("gzip", lambda z: z + b"junk", id="gzip then bytes that are no member"),
        pytest.param("deflate", lambda z: z[:-6], id="deflate cut short"),
        pytest.param("deflate", lambda z: z + b"x", id="deflate then a byte"),
    ],
)
def test_a_compressed_body_cut_short_or_followed_by_junk_is_unreadable(coding, cut):
    """A unit check: decoding used to return whatever came out of a stream that stopped short, a prefix of the
    venue's answer read as the whole of it."""
    import gzip
    import zlib

    from cancelctl import transport
    from cancelctl.errors import OutcomeUnknown

    body = json.dumps([{"order_id": str(i)} for i in range(50)]).encode()
    whole = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    assert transport._decoded(whole + (b"\0\0" if coding == "gzip" else b""), coding, "h") == body
    with pytest.raises(OutcomeUnknown, match=f"a broken {coding} body"):
        transport._decoded(cut(whole), coding, "h")


def test_through_a_proxy_bytes_no_request_asked_for_are_never_the_next_request_s_answer(env):
    from conftest import closed_port

    venue = f"http://127.0.0.1:{closed_port()}"  # only the proxy answers (absolute URLs on its request lines)

    def script(seen: Seen) -> bytes:
        if seen.path.endswith("/v1/order/cancel/all") and len(server.paths()) == 1:
            return answer(200, CANCEL_ALL_OK) + SMUGGLED_BOOK
        seen.path = seen.path[len(venue) :]
        return book_of_one(seen)

    with KeepAliveServer(script) as server:
        gemini_on(env, venue)
        proc = env.run(
            "cancel", "all", "-p", "g", "--verify", "--json", "--timeout", "5", extra_env={"HTTP_PROXY": server.url}
        )
    assert "Traceback" not in proc.stderr
    assert proc.returncode != 0, proc.stdout  # the book was never empty


PROXY_PASSWORD = "s3cr3t-proxy-pw"


def _nowhere_in(env, proc, text: str) -> None:
    from conftest import audit_lines

    assert text not in proc.stdout and text not in proc.stderr
    assert text not in json.dumps(audit_lines(env))


def test_a_proxy_that_refuses_connections_is_named_not_the_venue(env):
    """With a proxy variable set, a refused connection is the proxy's: "cannot reach venue.invalid:8443" sent the
    trader to check a venue cancelctl never tried to reach. The proxy is named by host and port only: its URL's
    user:password never reaches the output or the audit log."""
    from conftest import closed_port

    port = closed_port()
    gemini_on(env, "https://venue.invalid:8443")
    proxy = f"http://alice:{PROXY_PASSWORD}@127.0.0.1:{port}"
    proc = env.run("cancel", "all", "-p", "g", "--json", "--timeout", "3", extra_env={"HTTPS_PROXY": proxy})
    assert proc.returncode == 75, proc.stderr  # nothing was sent: safe to retry
    assert f"cannot reach the proxy 127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert "venue.invalid" not in proc.stderr.split("cannot reach", 1)[1].split(":", 1)[0]
    _nowhere_in(env, proc, PROXY_PASSWORD)
    _nowhere_in(env, proc, "alice")


def test_a_proxy_that_refuses_the_tunnel_is_nothing_sent(env):
    """An https venue through an http proxy that answers CONNECT with 403: no byte reached the venue, so the truth
    is "not sent" (75), with the proxy named; the CONNECT counted as the venue's request going out (5, "connection
    failed mid-request") and the line named the venue."""
    from loopback import Loopback, response

    with Loopback(lambda r: response(403, b"", reason="Forbidden"), lifetime=30) as lb:
        port = lb.url.rsplit(":", 1)[1]
        gemini_on(env, "https://venue.invalid")
        proxy = f"http://alice:{PROXY_PASSWORD}@127.0.0.1:{port}"
        proc = env.run("cancel", "all", "-p", "g", "--json", "--timeout", "3", extra_env={"HTTPS_PROXY": proxy})
        seen = [r.method for r in lb.requests]
    assert seen and set(seen) == {"CONNECT"}  # the proxy was asked for a tunnel, and refused it
    assert proc.returncode == 75, proc.stderr
    assert f"the proxy 127.0.0.1:{port} did not open a tunnel to venue.invalid" in proc.stderr, proc.stderr
    assert "403" in proc.stderr
    _nowhere_in(env, proc, PROXY_PASSWORD)
