"""The connections a service keeps to shared infrastructure, with their readiness checks.

A service names what it needs (its PostgreSQL schema, Valkey, NATS); this opens those
connections at start-up, instruments them, checks them for `/health/ready` and closes
them on shutdown. Where each server is comes from the settings, so the same code runs
against the embedded servers and external ones.
"""

from __future__ import annotations

import logging
from typing import Any

import nats
import redis.asyncio as redis
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

from kansoku.kit.db import Database
from kansoku.kit.health import Check
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
        pool_size: int = 5,
    ) -> None:
        self.service = service
        self.db: Database | None = None
        self.valkey: redis.Redis | None = None
        self.nats: Any = None
        self._nats_url: str | None = None
        self.checks: dict[str, Check] = {}

        if postgresql_schema is not None:
            url = require(settings.database_url, "KANSOKU_DATABASE_URL",
                          f"{service} keeps its data in PostgreSQL")
            self.db = Database(url, schema=postgresql_schema, application_name=service,
                               pool_size=pool_size)
            if telemetry.enabled:
                # Database spans carry the statement with placeholders, never the values.
                SQLAlchemyInstrumentor().instrument(
                    engine=self.db.engine.sync_engine,
                    tracer_provider=telemetry.tracer_provider,
                    meter_provider=telemetry.meter_provider,
                    enable_commenter=False,
                )
            self.checks["postgresql"] = self.db.check
        if valkey:
            url = require(settings.redis_url, "KANSOKU_REDIS_URL", f"{service} uses Valkey")
            self.valkey = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            self.checks["valkey"] = self._check_valkey
        if nats_messaging:
            self._nats_url = require(settings.nats_url, "KANSOKU_NATS_URL",
                                     f"{service} sends and receives events over NATS")
            self.checks["nats"] = self._check_nats

    async def open(self) -> None:
        """Connect what needs an explicit connection (NATS); pools connect lazily."""
        if self._nats_url is not None:
            self.nats = await nats.connect(
                self._nats_url, name=self.service, connect_timeout=2,
                max_reconnect_attempts=-1, reconnect_time_wait=1,
            )

    async def close(self) -> None:
        if self.nats is not None:
            await self.nats.drain()
        if self.valkey is not None:
            await self.valkey.aclose()
        if self.db is not None:
            await self.db.dispose()

    async def _check_valkey(self) -> None:
        assert self.valkey is not None
        await self.valkey.ping()

    async def _check_nats(self) -> None:
        if self.nats is None or not self.nats.is_connected:
            raise ConnectionError("not connected to NATS")
        await self.nats.flush(timeout=2)
