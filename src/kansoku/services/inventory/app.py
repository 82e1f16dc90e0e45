"""The inventory service: `create_app` builds it, `kansoku serve inventory` runs it."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from opentelemetry.instrumentation.utils import suppress_instrumentation

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.clock import UtcClock, utc_now
from kansoku.kit.connections import Connections
from kansoku.kit.db import Database
from kansoku.kit.events import OutboxRelay
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.inventory import SERVICE, api, service, store
from kansoku.services.inventory.models import SCHEMA
from kansoku.services.inventory.settings import Settings

logger = logging.getLogger(__name__)


async def sweep_expired_reservations(db: Database, interval: float, clock: UtcClock) -> None:
    """Release unpaid reservations past their TTL by `clock`, every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            # A sweep every second would be a trace every second: instrumentation is off
            # here, and what expired is counted and logged instead.
            with suppress_instrumentation():
                async with db.transaction() as session:
                    expired = await service.expire_due(session, clock())
            if expired:
                logger.info("released %d expired reservations", expired,
                            extra={"expired": expired})
        except Exception:
            logger.exception("the reservation expiry sweep failed; retrying")


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None, *,
               clock: UtcClock = utc_now) -> FastAPI:
    """The inventory app. `clock` decides when reservations expire (the TTL counts from
    it, and the sweep releases what is past it); tests pass one they move."""
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              nats_messaging=True)
    assert connections.db is not None
    relay = OutboxRelay(SERVICE, connections.db.transaction, store.unpublished,
                        store.mark_published, connections.jetstream)
    db = connections.db

    async def sweep() -> None:
        await sweep_expired_reservations(db, settings.expiry_sweep_seconds, clock)

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="Stock levels, reservations with expiry, restocking, low-stock events.",
        connections=connections,
        background=[sweep, relay.run],
    )
    app.state.clock = clock
    app.include_router(api.router)
    return app
