"""Run one service's app with uvicorn: the body of `kansoku serve NAME`.

Two things uvicorn does not do by itself are set here (`server_config`):

- Client addresses: `X-Forwarded-For` is believed only from the proxies named in
  `trusted_proxies` (KANSOKU_TRUSTED_PROXIES; none by default), not from uvicorn's
  default 127.0.0.1, where every local program could claim to be anyone.
- Slow clients: a request's headers must arrive within `header_timeout` seconds of its
  first byte (or of the connection), and its body within `body_timeout` of its headers;
  else the connection is closed (a 408 first, when nothing was answered yet). uvicorn has
  no such timeouts (its keep-alive timer is reset by every byte; issue encode/uvicorn#157
  proposes them), so 50 half-sent requests, or a body trickled a byte at a time, held
  connections open for as long as the client liked. `SlowClientTimeouts` adds both to
  uvicorn's httptools protocol with two timers, and nothing else.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import socket
from typing import Any, Final

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kansoku.kit.logging import skip_unused_record_fields


class PortUnavailable(Exception):
    """A port this service must listen on is taken or cannot be bound."""


#: How long a service keeps an idle client connection open.
SERVER_KEEPALIVE_SECONDS = 30

#: Collector thresholds for a long-running server (CPython's default is 700, 10, 10).
#: Each request allocates thousands of short-lived objects, and with telemetry on some
#: live on for seconds (spans and log records waiting in the export queue), so the
#: default collects the young generation hundreds of times a second and keeps promoting
#: those survivors into older generations that are expensive to scan. Measured with
#: benchmarks/telemetry_tax.py: about 9 % less CPU per request with telemetry on, 5 %
#: with it off.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_garbage_collection() -> None:
    """Set up the collector for serving: everything made so far (modules, the app, its
    routes and models, which live as long as the process) is moved out of the
    collector's sight with `gc.freeze()`, so no later collection scans it again, and
    young collections run less often (`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


logger = logging.getLogger(__name__)

#: What a client is told when it took too long to send its request's headers.
_REQUEST_TIMEOUT: Final = (b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n"
                           b"content-length: 0\r\n\r\n")


class SlowClientTimeouts(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), with deadlines for receiving a request:
    its headers within `header_timeout` seconds (counted from the connection, or from
    the first byte of the next request on a kept-alive connection), its body within
    `body_timeout` of the headers. The deadlines cover receiving only: a slow answer
    (a long report, a 5-second lab query) is never cut."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receive_deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._receive_deadline = self.loop.call_later(seconds, self._too_slow, phase)

    def _disarm(self) -> None:
        if self._receive_deadline is not None:
            self._receive_deadline.cancel()
            self._receive_deadline = None

    def _too_slow(self, phase: str) -> None:
        self._receive_deadline = None
        if self.transport.is_closing():
            return
        logger.info("closed a connection from %s: its request's %s took too long",
                    self.client[0] if self.client else "an unknown address", phase)
        if phase == "headers":
            self.transport.write(_REQUEST_TIMEOUT)
        # A body's request is already in the app, which sees the client disconnect.
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._receive_deadline is None:  # a kept-alive connection's next request
            self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(app: FastAPI, *, trusted_proxies: str = "", header_timeout: float = 10.0,
                  body_timeout: float = 60.0, graceful_shutdown_seconds: float = 10.0
                  ) -> uvicorn.Config:
    """uvicorn's settings for a service: see the module's docstring. `trusted_proxies`
    is a comma-separated list of addresses or networks (`10.0.0.0/8`), or `*`."""
    protocol = type("ServiceHttpProtocol", (SlowClientTimeouts,),
                    {"header_timeout": header_timeout, "body_timeout": body_timeout})
    proxies = trusted_proxies.strip()
    return uvicorn.Config(
        app,
        http=protocol,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        timeout_graceful_shutdown=int(graceful_shutdown_seconds),
        # Longer than the kit client's keep-alive (kit.http's KEEPALIVE_SECONDS): the caller, not
        # the server, closes an idle connection. Otherwise both close it after the same
        # 5 s and a request sent in that instant meets a closed connection (ReadError).
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise PortUnavailable(f"cannot listen on {host}:{port}: {reason}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI, *, host: str, ports: list[int], graceful_shutdown_seconds: float,
          trusted_proxies: str = "", header_timeout: float = 10.0, body_timeout: float = 60.0
          ) -> None:
    """Serve `app` on every port in `ports` until SIGTERM or SIGINT.

    On a signal uvicorn stops accepting, lets in-flight requests finish (up to
    `graceful_shutdown_seconds`), then runs the lifespan shutdown, which flushes telemetry.
    `trusted_proxies`, `header_timeout` and `body_timeout`: see `server_config`.
    """
    sockets = [bind(host, port) for port in ports]
    tune_garbage_collection()
    skip_unused_record_fields()
    config = server_config(app, trusted_proxies=trusted_proxies,
                           header_timeout=header_timeout, body_timeout=body_timeout,
                           graceful_shutdown_seconds=graceful_shutdown_seconds)
    uvicorn.Server(config).run(sockets=sockets)
