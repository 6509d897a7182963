"""transport.Client: cancelctl's own HTTP/1.1 client (h11 over a socket), in process against loopback servers.

What httpx did for cancelctl and the tests elsewhere do not reach: the request's headers, an answer's
content coding (gzip, deflate; anything else is unreadable), the decoded-size cap, chunked answers,
keep-alive on one connection, a connection the venue closed while idle, and the httpx client used
when a proxy variable is set.
"""

from __future__ import annotations

import gzip
import socket
import threading
import zlib

import pytest

from cancelctl import transport
from cancelctl.errors import NotSent, OutcomeUnknown
from cancelctl.signing import PreparedRequest

from loopback import Loopback, response


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in transport.PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def send(url: str, method: str = "GET", client=None, seconds: float = 5.0) -> transport.Answer:
    client = client or transport.Client(None)
    return transport.send(client, PreparedRequest(method, url, {"X-Test": "1"}), transport.Deadline(seconds))


def test_the_request_carries_the_headers_httpx_sent():
    with Loopback(lambda r: response(200, b"[]")) as lb:
        answer = send(lb.url + "/v1/order/cancel/all?x=1", "POST")
        (req,) = lb.requests
    assert answer.status == 200 and answer.body == b"[]"
    assert req.method == "POST" and req.path == "/v1/order/cancel/all?x=1"
    assert req.headers["host"] == lb.url.split("//")[1]
    assert req.headers["user-agent"] == transport.USER_AGENT
    assert req.headers["accept-encoding"] == "gzip, deflate" and req.headers["accept"] == "*/*"
    assert req.headers["content-length"] == "0" and req.headers["x-test"] == "1"


@pytest.mark.parametrize(
    "coding,encode",
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send it
    ],
)
def test_a_compressed_answer_is_decoded(coding, encode):
    body = b'{"result": "ok", "details": {"cancelledOrders": [1, 2, 3]}}'
    with Loopback(lambda r: response(200, encode(body), {"Content-Encoding": coding})) as lb:
        assert send(lb.url + "/").body == body


@pytest.mark.parametrize("coding,payload", [("br", b"\x8b\x02\x80[]\x03"), ("gzip", b"not gzip at all")])
def test_an_answer_that_cannot_be_decoded_is_unreadable(coding, payload):
    with Loopback(lambda r: response(200, payload, {"Content-Encoding": coding})) as lb:
        with pytest.raises(OutcomeUnknown, match="unreadable answer"):
            send(lb.url + "/")


def test_a_compressed_answer_larger_than_the_cap_decoded_is_unreadable(monkeypatch):
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 1000)
    bomb = gzip.compress(b"0" * 5000)  # about 40 bytes on the wire
    with Loopback(lambda r: response(200, bomb, {"Content-Encoding": "gzip"})) as lb:
        with pytest.raises(OutcomeUnknown, match="more than the 1000 bytes"):
            send(lb.url + "/")


def test_a_chunked_answer_is_read_whole():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    with Loopback(lambda r: [head, b"3\r\n[1,\r\n", b"2\r\n2]\r\n", b"0\r\n\r\n"]) as lb:
        assert send(lb.url + "/").body == b"[1,2]"


class KeepAlive:
    """A loopback server that answers every request on a connection with ``[n]`` (n: the request's number on that
    connection) and counts connections; ``close_after``: it closes each connection after that many answers."""

    def __init__(self, close_after: int | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self.close_after = close_after
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buf, n = b"", 0
        with conn:
            while self.close_after is None or n < self.close_after:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                _, _, buf = buf.partition(b"\r\n\r\n")
                n += 1
                body = f"[{n}]".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def stop(self) -> None:
        self.sock.close()


def test_requests_of_one_client_share_its_kept_alive_connection():
    server = KeepAlive()
    client = transport.Client(None)
    try:
        assert [send(server.url + "/", client=client).body for _ in range(3)] == [b"[1]", b"[2]", b"[3]"]
        assert server.connections == 1
        client.close()
        assert send(server.url + "/", client=transport.Client(None)).body == b"[1]"  # a new client, a new connection
        assert server.connections == 2
        with pytest.raises(NotSent):  # nothing goes out on a client whose run has ended
            send(server.url + "/", client=client)
    finally:
        server.stop()


def test_a_connection_the_venue_closed_while_idle_is_not_reused():
    server = KeepAlive(close_after=1)
    client = transport.Client(None)
    try:
        assert send(server.url + "/", client=client).body == b"[1]"
        for _ in range(100):  # the server has closed it once the poll sees it readable (end of file)
            if client._idle and not client._idle[0].reusable(float("-inf"), 1e9):
                break
            threading.Event().wait(0.01)
        assert send(server.url + "/", client=client).body == b"[1]"  # on a new connection, not an unknown outcome
        assert server.connections == 2
    finally:
        server.stop()


def test_a_warm_client_keeps_its_connection_until_shut_down():
    server = KeepAlive()
    client = transport.Client(None, warm=True)
    try:
        send(server.url + "/", client=client)
        client.close()  # a run's end in the guard
        assert send(server.url + "/", client=client).body == b"[2]"
        client.shutdown()
        with pytest.raises(NotSent):
            send(server.url + "/", client=client)
        assert server.connections == 1
    finally:
        server.stop()


def test_with_a_proxy_variable_set_requests_go_through_httpx_and_the_proxy(monkeypatch):
    """An HTTP proxy for http:// URLs gets the absolute URL on its request line (what httpx sends a proxy)."""
    with Loopback(lambda r: response(200, b'["via proxy"]')) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = transport.client(None)  # type: ignore[arg-type]
        assert not isinstance(client, transport.Client)
        try:
            answer = send("http://venue.invalid:8080/v1/orders", client=client)
        finally:
            client.close()
        (req,) = proxy.requests
    assert answer.body == b'["via proxy"]'
    assert req.path == "http://venue.invalid:8080/v1/orders"


def test_a_read_waits_no_longer_than_the_time_left_when_it_begins():
    """The answer's first byte comes 0.6 s into a 1 s deadline, then nothing: the next read waits until the
    deadline, not for the 1 s that was left when the request began (the profile's thread, the API key's lock and in
    the guard its connection outlived the run by up to one ``--timeout``)."""
    import time

    def answer(r):
        time.sleep(0.6)
        yield b"H"
        time.sleep(3)

    with Loopback(answer, lifetime=10) as lb:
        began = time.monotonic()
        with pytest.raises(OutcomeUnknown, match="before the deadline"):
            send(lb.url + "/", seconds=1.0)
        took = time.monotonic() - began
    assert 0.6 <= took < 1.4, took  # before: 1.6 s (0.6 s, then a read bounded by the whole 1 s)


@pytest.fixture
def hung_resolver(monkeypatch):
    """``socket.getaddrinfo`` hangs for names ending in ``.hang`` (until the test ends) and counts those calls;
    IP addresses and other names resolve as usual. (In process: tests/test_network_faults.py hangs the real C
    resolver, in a network namespace.)"""
    import time

    release = threading.Event()
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host.endswith(".hang"):
            if flags & socket.AI_NUMERICHOST:  # a name, not an address: the C resolver says so without a lookup
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            calls.append(host)
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield calls
    release.set()
    time.sleep(0.05)  # the abandoned lookups end before the real getaddrinfo is put back


def test_a_hung_name_lookup_is_not_sent_at_the_deadline_and_looked_up_once(hung_resolver):
    """A lookup that never answers: NotSent (nothing went out) when the deadline comes, and a second request to the
    host meanwhile waits for the lookup under way instead of starting another (a hung resolver costs one thread)."""
    import time

    client = transport.Client(None)
    for _ in range(2):
        began = time.monotonic()
        with pytest.raises(NotSent, match=r"cannot reach venue\.hang:8443: the name lookup of venue\.hang did not"):
            send("https://venue.hang:8443/v1/orders", client=client, seconds=0.5)
        assert time.monotonic() - began < 0.9
    assert hung_resolver == ["venue.hang"]


def test_through_a_proxy_a_hung_name_lookup_of_the_proxy_is_not_sent_at_the_deadline(hung_resolver, monkeypatch):
    """httpx's connection (httpcore's ``socket.create_connection``) looked the proxy's name up with no timeout: the
    request waited as long as the resolver did. It is bounded by the deadline, and names the proxy."""
    import time

    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw-not-shown@proxy.hang:3128")
    client = transport.client(None)  # type: ignore[arg-type]
    assert not isinstance(client, transport.Client)
    try:
        began = time.monotonic()
        with pytest.raises(NotSent) as caught:
            send("https://venue.invalid/v1/orders", client=client, seconds=0.5)
        took = time.monotonic() - began
    finally:
        client.close()
    assert took < 0.9, took
    assert "cannot reach the proxy proxy.hang:3128: the name lookup of proxy.hang did not" in caught.value.message
    assert "pw-not-shown" not in caught.value.message and hung_resolver == ["proxy.hang"]


def test_the_guard_s_keep_warm_get_is_not_a_caller_s_request_on_the_wire(monkeypatch):
    """``transport.on_any_written`` tells the guard that the running caller's first cancel is on the wire (it then
    listens for the caller's Ctrl-C). The keep-warm GET may now run beside a caller's command: its being written
    must not say so."""
    written: list[int] = []
    monkeypatch.setattr(transport, "on_any_written", lambda: written.append(1))
    server = KeepAlive()
    client = transport.Client(None, warm=True)
    try:
        assert client.get(server.url + "/v1/symbols", timeout=5.0) == 200
        assert written == []
        send(server.url + "/v1/order/cancel/all", "POST", client=client)  # a run's request does say so
        assert written == [1]
    finally:
        client.shutdown()
        server.stop()


def test_through_a_proxy_a_read_waits_no_longer_than_the_time_left_when_it_begins(monkeypatch):
    """As test_a_read_waits_no_longer_than_the_time_left_when_it_begins, with a proxy variable set (httpx carries the
    request): httpx gave each read the timeout the request began with."""
    import time

    def answer(r):
        time.sleep(0.6)
        yield b"H"
        time.sleep(3)

    with Loopback(answer, lifetime=10) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = transport.client(None)  # type: ignore[arg-type]
        assert not isinstance(client, transport.Client)
        try:
            began = time.monotonic()
            with pytest.raises(OutcomeUnknown, match="before the deadline"):
                send("http://venue.invalid:8080/v1/orders", client=client, seconds=1.0)
            took = time.monotonic() - began
        finally:
            client.close()
    assert 0.6 <= took < 1.4, took  # before: 1.6 s
