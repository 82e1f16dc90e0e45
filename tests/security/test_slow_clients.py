"""Slow clients cannot hold a service's connections: headers must arrive in time, and so
must a body (`kit.serve.SlowClientTimeouts`).

uvicorn by itself kept 50 half-sent requests open for as long as their clients liked,
and read a body trickled a byte every 2 seconds to the end. Here real sockets talk to a
service served as `kansoku serve` serves it, with deadlines of a second or two; every
test is bounded by its sockets' timeouts.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request

from tests.support import serve_in_thread

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
#: How long past a deadline a test waits for the server to act on it.
MARGIN = 3.0


def slow_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/slow-answer")
    async def slow_answer() -> dict[str, str]:
        await asyncio.sleep(HEADER_TIMEOUT + BODY_TIMEOUT + 0.5)
        return {"done": "yes"}

    return app


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    with serve_in_thread(slow_app(), header_timeout=HEADER_TIMEOUT,
                         body_timeout=BODY_TIMEOUT) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=HEADER_TIMEOUT + BODY_TIMEOUT + MARGIN)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a socket timeout fails the test)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_half_sent_requests_are_closed_with_a_408(address: tuple[str, int]) -> None:
    sockets = [connect(address) for _ in range(50)]
    started = time.monotonic()
    try:
        for sock in sockets:
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
        answers = [read_until_closed(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT + MARGIN
    assert {answer.split(b"\r\n")[0] for answer in answers} == {b"HTTP/1.1 408 Request Timeout"}


def test_a_silent_connection_is_closed(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def test_a_trickled_body_is_cut_off(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: shop\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        sock.settimeout(0.5)  # a byte every half second: the body would take 8 minutes
        started, sent, closed = time.monotonic(), 0, False
        while not closed and time.monotonic() - started < BODY_TIMEOUT + MARGIN:
            try:
                sock.sendall(b"x")
                sent += 1
                closed = sock.recv(4096) == b""
            except TimeoutError:
                continue  # nothing from the server yet: the next byte
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    assert closed, f"still open after {sent} bytes"
    assert sent < 1000


def test_deadlines_cover_receiving_not_answering(address: tuple[str, int]) -> None:
    """A prompt request whose answer is slow, then a second one on the same
    connection: both answered."""
    with connect(address) as sock:
        for _ in range(2):
            sock.sendall(b"GET /slow-answer HTTP/1.1\r\nHost: shop\r\n\r\n")
            answer = b""
            while b"yes" not in answer:
                chunk = sock.recv(4096)
                assert chunk, "closed before answering"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 OK")
        body = b'{"a": 1}'
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert b'{"bytes":8}' in sock.recv(4096)
