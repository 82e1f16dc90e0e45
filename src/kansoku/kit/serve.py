"""Run one service's app with uvicorn: the body of `kansoku serve NAME`."""

from __future__ import annotations

import errno
import gc
import socket

import uvicorn
from fastapi import FastAPI

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


def serve(app: FastAPI, *, host: str, ports: list[int], graceful_shutdown_seconds: float) -> None:
    """Serve `app` on every port in `ports` until SIGTERM or SIGINT.

    On a signal uvicorn stops accepting, lets in-flight requests finish (up to
    `graceful_shutdown_seconds`), then runs the lifespan shutdown, which flushes telemetry.
    """
    sockets = [bind(host, port) for port in ports]
    tune_garbage_collection()
    skip_unused_record_fields()
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=int(graceful_shutdown_seconds),
        # Longer than the kit client's keep-alive (kit.http's KEEPALIVE_SECONDS): the caller, not
        # the server, closes an idle connection. Otherwise both close it after the same
        # 5 s and a request sent in that instant meets a closed connection (ReadError).
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
    )
    uvicorn.Server(config).run(sockets=sockets)
