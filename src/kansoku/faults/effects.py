"""Fault effects that need more than a check on a request: cutting a service off from its
database or cache, the way a network failure would.

`refusing_address()` is a loopback address where every connection is refused (cart's
cartCacheOutage points a Valkey client there); `lose_database_while_on()` hooks a
SQLAlchemy engine so that it loses its database while a flag is on (catalog's
dbConnectionLoss). The client libraries then fail exactly as they would against a server
that is down.
"""

from __future__ import annotations

import atexit
import socket
import threading
from typing import Any

import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from kansoku.kit.flags import FaultFlags

_refusing: socket.socket | None = None
_refusing_lock = threading.Lock()


def refusing_address() -> tuple[str, int]:
    """A loopback address where every connection is refused: a port this process holds
    bound but never listens on (so nothing else can take it). The faults that cut a
    service off from its database or cache send it here, and the client libraries fail
    exactly as they would against a server that is down."""
    global _refusing
    with _refusing_lock:
        if _refusing is None:
            _refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            _refusing.bind(("127.0.0.1", 0))
            atexit.register(_refusing.close)
        host, port = _refusing.getsockname()
        return str(host), int(port)


def lose_database_while_on(engine: AsyncEngine, flags: FaultFlags,
                           name: str = "dbConnectionLoss") -> None:
    """While flag `name` is on, `engine` loses its database: each pooled connection is
    dropped as it is taken (as after a network cut), and new ones go to an address that
    refuses them, so callers get the driver's own connection error. Once the flag is
    off, the pool connects again on demand."""

    @event.listens_for(engine.sync_engine, "checkout")
    def drop_when_taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        fault = flags.active(name)
        if fault:
            fault.mark()
            raise sqlalchemy.exc.DisconnectionError(f"connection lost (fault flag {name})")

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect_nowhere(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]
                        ) -> None:
        fault = flags.active(name)
        if fault:
            fault.mark()
            cparams["host"], cparams["port"] = refusing_address()
