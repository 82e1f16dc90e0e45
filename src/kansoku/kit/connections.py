"""The connections a service keeps to shared infrastructure, with their readiness checks.

A service names what it needs (its PostgreSQL schema, Valkey, NATS); this opens those
connections at start-up, instruments them, checks them for `/health/ready` and closes
them on shutdown. Where each server is comes from the settings, so the same code runs
against the embedded servers and external ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import nats
import redis.asyncio as redis

from kansoku.kit.db import Database
from kansoku.kit.db_telemetry import DatabaseTelemetry
from kansoku.kit.health import Check
from kansoku.kit.redis_telemetry import trace_client
from kansoku.kit.settings import ServiceSettings, require
from kansoku.kit.telemetry import Telemetry

logger = logging.getLogger(__name__)


class Connections:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        telemetry: Telemetry,
        *,
        postgresql_schema: str | None = None,
        valkey: bool = False,
        nats_messaging: bool = False,
        pool_size: int = 10,
    ) -> None:
        self.service = service
        self.db: Database | None = None
        self._db_telemetry: DatabaseTelemetry | None = None
        self.valkey: redis.Redis | None = None
        self.nats: Any = None
        self._nats_url: str | None = None
        self._nats_connecting: asyncio.Task[None] | None = None
        self._closing = False
        self.checks: dict[str, Check] = {}

        if postgresql_schema is not None:
            url = require(settings.database_url, "KANSOKU_DATABASE_URL",
                          f"{service} keeps its data in PostgreSQL")
            self.db = Database(url, schema=postgresql_schema, application_name=service,
                               pool_size=pool_size)
            if telemetry.enabled:
                # Database spans carry the statement with placeholders, never the values.
                self._db_telemetry = DatabaseTelemetry(self.db.engine,
                                                       telemetry.tracer_provider,
                                                       telemetry.meter_provider)
            self.checks["postgresql"] = self.db.check
        if valkey:
            url = require(settings.redis_url, "KANSOKU_REDIS_URL", f"{service} uses Valkey")
            self.valkey = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            if telemetry.enabled:
                # One span per command, its arguments replaced by "?": cache hits, rate
                # limits and carts show up in traces and on the service map.
                trace_client(self.valkey, telemetry.tracer_provider)
            self.checks["valkey"] = self._check_valkey
        if nats_messaging:
            self._nats_url = require(settings.nats_url, "KANSOKU_NATS_URL",
                                     f"{service} sends and receives events over NATS")
            self.checks["nats"] = self._check_nats

    async def open(self) -> None:
        """Start connecting what needs an explicit connection (NATS); pools connect lazily.

        NATS is connected in the background: a service starts (and is live) while NATS is
        away, reports it in readiness, and connects as soon as NATS answers.
        """
        if self._nats_url is not None:
            self._nats_connecting = asyncio.create_task(self._connect_nats(self._nats_url))

    async def _connect_nats(self, url: str) -> None:
        """Connect once NATS answers. nats-py retries a first connect forever when told to
        reconnect forever, so this waits for the server to accept TCP first and bounds
        the connect itself; once connected, nats-py reconnects by itself."""
        parts = urlsplit(url)
        # asyncio.timeout rather than wait_for: in Python 3.11 wait_for can swallow a
        # cancellation that arrives as the awaited call fails, and close() would hang.
        while not self._closing:
            try:
                async with asyncio.timeout(2):
                    _, writer = await asyncio.open_connection(parts.hostname,
                                                              parts.port or 4222)
                writer.close()
                async with asyncio.timeout(10):
                    self.nats = await nats.connect(
                        url, name=self.service, connect_timeout=2, allow_reconnect=True,
                        max_reconnect_attempts=-1, reconnect_time_wait=1,
                        error_cb=self._on_nats_error,
                    )
                logger.info("connected to NATS")
                return
            except Exception as exc:
                logger.warning("NATS is not reachable yet (%s); retrying", exc or type(exc))
                await asyncio.sleep(1)

    def jetstream(self) -> Any:
        """JetStream on the NATS connection, or None while NATS is not connected."""
        if self.nats is None or not self.nats.is_connected:
            return None
        return self.nats.jetstream(timeout=3)

    async def _on_nats_error(self, exc: Exception) -> None:
        # One line, not nats-py's default traceback for every reconnect attempt.
        logger.warning("NATS connection problem: %s", exc or type(exc).__name__)

    async def close(self) -> None:
        self._closing = True
        if self._nats_connecting is not None and not self._nats_connecting.done():
            self._nats_connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._nats_connecting
        if self.nats is not None and self.nats.is_connected:
            await self.nats.drain()
        if self.valkey is not None:
            await self.valkey.aclose()
        if self.db is not None:
            if self._db_telemetry is not None:
                self._db_telemetry.close()
            await self.db.dispose()

    async def _check_valkey(self) -> None:
        assert self.valkey is not None
        await self.valkey.ping()

    async def _check_nats(self) -> None:
        if self.nats is None or not self.nats.is_connected:
            raise ConnectionError("not connected to NATS")
        await self.nats.flush(timeout=2)
