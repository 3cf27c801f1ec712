"""The server under `tilesearch serve` times out half-sent requests (issue 18): a raw socket
on 127.0.0.1 that sends part of a request and then waits is disconnected within the bound."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
import uvicorn

from tilesearch.web import create_app
from tilesearch.web.server import UVICORN_OPTIONS, GuardedH11Protocol

BOUND = 0.6
"""The header, body and keep-alive timeouts these tests give the server, in seconds."""
SEARCH = b'{"tile": 3, "k": 3}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(fake_store, monkeypatch) -> Iterator[int]:
    """The app served by uvicorn as `serve` runs it, with short timeouts; yields the port."""
    monkeypatch.setattr(GuardedH11Protocol, "header_timeout", BOUND)
    fake_store.close()
    app = create_app(fake_store.path, warm=False, body_timeout=BOUND, body_deadline=3 * BOUND)
    port = free_port()
    options = {**UVICORN_OPTIONS, "timeout_keep_alive": BOUND}
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        http=GuardedH11Protocol, **options))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield port
    srv.should_exit = True
    thread.join(10)


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes the connection or `seconds` pass: (closed, bytes read)."""
    sock.settimeout(0.1)
    data, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_connection_that_sends_nothing_is_closed(server):
    with connect(server) as s:
        assert closed_within(s, 5 * BOUND)[0]


def test_half_sent_headers_are_timed_out(server):
    with connect(server) as s:
        s.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0 = time.monotonic()
        closed, data = closed_within(s, 5 * BOUND)
        assert closed and not data and time.monotonic() - t0 < 4 * BOUND


def test_headers_trickled_a_byte_at_a_time_are_timed_out(server):
    request = b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    with connect(server) as s:
        t0 = time.monotonic()
        for byte in request:
            try:
                s.send(bytes([byte]))
            except OSError:
                break
            time.sleep(BOUND / 6)
            if time.monotonic() - t0 > 6 * BOUND:
                break
        assert closed_within(s, 2 * BOUND)[0]
        assert time.monotonic() - t0 < 6 * BOUND


def test_a_half_sent_body_answers_408_and_closes(server):
    head = (b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    with connect(server) as s:
        s.sendall(head + SEARCH[:10])
        t0 = time.monotonic()
        closed, data = closed_within(s, 5 * BOUND)
        assert closed and data.startswith(b"HTTP/1.1 408"), data[:200]
        assert b"request timeout" in data and time.monotonic() - t0 < 4 * BOUND


def test_a_body_trickled_past_its_deadline_answers_408(server):
    head = (b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    with connect(server) as s:
        s.sendall(head)
        t0 = time.monotonic()
        with pytest.raises(OSError):  # until the server hangs up
            while time.monotonic() - t0 < 10 * BOUND:
                s.send(b" ")
                time.sleep(BOUND / 4)  # never idle long enough for the idle timeout
        assert time.monotonic() - t0 < 6 * BOUND


def test_an_idle_keep_alive_connection_is_closed(server):
    with connect(server) as s:
        s.sendall(b"GET /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        closed, data = closed_within(s, 5 * BOUND)
        assert data.startswith(b"HTTP/1.1 200") and closed


def test_a_body_left_unread_closes_the_connection(server):
    """Answered before its body came (a GET with a slow body): the rest is not waited for."""
    with connect(server) as s:
        s.sendall(b"GET /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n")
        t0 = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - t0 < 10 * BOUND:
                s.send(b"x")
                time.sleep(BOUND / 4)
        assert time.monotonic() - t0 < 6 * BOUND


def test_whole_requests_are_answered(server):
    with connect(server) as s:
        s.sendall(b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(SEARCH), SEARCH))
        _, data = closed_within(s, 5 * BOUND)
        assert data.startswith(b"HTTP/1.1 200") and b'"results"' in data
