"""The explorer's socket intakes beside OTLP/HTTP: the X-Ray daemon's UDP port, the
CloudWatch agent's EMF port (TCP and UDP) and the New Relic collector's HTTPS port,
started in the explorer's lifespan.

Each listener decodes on the event loop (a datagram is one small document) and hands
the rows to the store's writer without waiting for the commit: a UDP sender never waits
for an answer, and neither does the daemon. What cannot be decoded is counted by kind
(`Intake.bad`), each kind logged once; rows the store refuses while it catches up are
counted as dropped. A port that cannot be bound (taken, or not allowed) is one log line
and the intake stays off; the explorer goes on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from kansoku.explorer.ingest import emf, newrelic, xray
from kansoku.explorer.ingest.documents import BadDocument
from kansoku.explorer.store import Rows, StoreBusy, TelemetryStore

logger = logging.getLogger(__name__)

#: How often subsegments waiting for their service are looked at.
EXPIRE_SECONDS = 5.0
#: A TCP line longer than this is not an EMF document (the agent's own limit is 1 MB).
MAX_LINE_BYTES = 1024 * 1024


@dataclass
class Intake:
    """One kind of input's counters, read by tests and the explorer's stats."""

    name: str
    received: int = 0
    stored: int = 0
    dropped: int = 0
    bad: Counter[str] = field(default_factory=Counter)

    def reject(self, kind: str) -> None:
        if not self.bad[kind]:
            logger.warning("%s: ignoring bad input (%s); counted, logged once per kind",
                           self.name, kind)
        self.bad[kind] += 1

    def submit(self, store: TelemetryStore, rows: Rows) -> None:
        if not len(rows):
            return
        try:
            store.submit(rows)
        except StoreBusy:
            self.dropped += len(rows)
            return
        self.stored += len(rows)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.handle(data)


class XRayIntake(Intake):
    """The X-Ray daemon's UDP protocol, into the spans table."""

    def __init__(self, store: TelemetryStore) -> None:
        super().__init__("X-Ray intake")
        self.store = store
        self.decoder = xray.XRayDecoder()

    def handle(self, datagram: bytes) -> None:
        self.received += 1
        try:
            rows = self.decoder.decode(xray.split_datagram(datagram))
        except BadDocument as exc:
            self.reject(str(exc))
            return
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self.reject(f"unreadable document ({type(exc).__name__})")
            return
        self.submit(self.store, rows)

    def expire(self) -> None:
        self.submit(self.store, self.decoder.expire())


class EmfIntake(Intake):
    """CloudWatch embedded metric format (one JSON document a line), into the metric
    points and logs tables."""

    def __init__(self, store: TelemetryStore) -> None:
        super().__init__("EMF intake")
        self.store = store

    def handle(self, data: bytes) -> None:
        for line in data.splitlines():
            if line.strip():
                self.line(line)

    def line(self, line: bytes) -> None:
        self.received += 1
        try:
            metric_rows, log_rows = emf.decode(line)
        except BadDocument as exc:
            self.reject(str(exc))
            return
        self.submit(self.store, metric_rows)
        self.submit(self.store, log_rows)

    async def serve_stream(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES:
                    self.reject("line too long")
                    break
                if line.strip():
                    self.line(line)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            self.reject("line too long or connection broken")
        finally:
            writer.close()


class NewRelicIntake(Intake):
    """The New Relic collector's calls, into the spans, metric points and logs tables.

    Served by a uvicorn server of its own, over TLS, in a thread with its own event
    loop: the agent's calls are few (one per kind per harvest) and the explorer's own
    server and its signal handling stay as they are."""

    def __init__(self, store: TelemetryStore) -> None:
        super().__init__("New Relic intake")
        self.store = store
        self.collector = newrelic.Collector(self.take)
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.directory: tempfile.TemporaryDirectory[str] | None = None

    def take(self, rows: Rows) -> None:
        self.received += len(rows)
        self.submit(self.store, rows)

    def serve(self, sock: socket.socket, host: str) -> None:
        self.directory = tempfile.TemporaryDirectory(prefix="kansoku-newrelic-")
        certificate, key = newrelic.self_signed_certificate(Path(self.directory.name), host)
        # log_config=None and no log_level: uvicorn would otherwise reconfigure its
        # loggers for the whole process (its own handler, no propagation), and the
        # explorer's uvicorn lines would leave kansoku's logging.
        config = uvicorn.Config(newrelic.collector_app(self.collector), lifespan="off",
                                log_config=None, access_log=False, loop="asyncio",
                                http="h11", ssl_certfile=str(certificate),
                                ssl_keyfile=str(key))
        self.server = uvicorn.Server(config)
        server = self.server
        self.thread = threading.Thread(target=lambda: server.run(sockets=[sock]),
                                       name="New Relic intake", daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        if self.directory is not None:
            self.directory.cleanup()


@dataclass
class Listeners:
    """What `start` opened; `close` closes it all."""

    xray: XRayIntake
    emf: EmfIntake
    newrelic: NewRelicIntake
    closers: list[Callable[[], None]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for close in self.closers:
            close()


def _bound(what: str, kind: socket.SocketKind, host: str, port: int) -> socket.socket | None:
    """A socket bound to `host:port`, or None after one log line saying why not. (Bound
    here, not by the event loop: uvloop leaks the transport of a failed bind.)"""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logger.error("%s not listening: cannot bind %s:%d (%s); set its port or free it",
                     what, host, port, exc.strerror or exc)
        return None
    sock.setblocking(False)
    return sock


async def start(store: TelemetryStore, host: str, xray_port: int | None,
                emf_port: int | None, newrelic_port: int | None = None) -> Listeners:
    """Open the intakes whose port is given (None: that intake is off)."""
    loop = asyncio.get_running_loop()
    listeners = Listeners(XRayIntake(store), EmfIntake(store), NewRelicIntake(store))
    if newrelic_port is not None and (
            sock := _bound("New Relic intake (HTTPS)", socket.SOCK_STREAM, host,
                           newrelic_port)):
        sock.setblocking(True)
        listeners.newrelic.serve(sock, host)
        listeners.closers.append(listeners.newrelic.close)
        logger.info("New Relic collector intake listening on https %s:%d", host,
                    newrelic_port)
    if xray_port is not None and (
            sock := _bound("X-Ray intake (UDP)", socket.SOCK_DGRAM, host, xray_port)):
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(listeners.xray.handle), sock=sock)
        listeners.closers.append(transport.close)
        listeners.tasks.append(asyncio.create_task(_expire_forever(listeners.xray),
                                                   name="X-Ray intake expiry"))
        logger.info("X-Ray daemon intake listening on udp %s:%d", host, xray_port)
    if emf_port is not None:
        if sock := _bound("EMF intake (UDP)", socket.SOCK_DGRAM, host, emf_port):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(listeners.emf.handle), sock=sock)
            listeners.closers.append(transport.close)
            logger.info("EMF intake listening on udp %s:%d", host, emf_port)
        if sock := _bound("EMF intake (TCP)", socket.SOCK_STREAM, host, emf_port):
            server = await asyncio.start_server(listeners.emf.serve_stream, sock=sock,
                                                limit=MAX_LINE_BYTES)
            listeners.closers.append(server.close)
            logger.info("EMF intake listening on tcp %s:%d", host, emf_port)
    return listeners


async def _expire_forever(intake: XRayIntake) -> None:
    while True:
        await asyncio.sleep(EXPIRE_SECONDS)
        intake.expire()
