"""The payments service: `create_app` builds it, `kansoku serve payments` runs it.

Besides its routes it consumes `order.cancelled` from NATS, to refund any charge of an
order that was cancelled (see `service.on_order_cancelled`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import events
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.payments import SERVICE, api, service
from kansoku.services.payments.models import SCHEMA
from kansoku.services.payments.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              nats_messaging=True)
    db = connections.db
    assert db is not None
    # Charges need no NATS: only refunds of cancelled orders wait for it (their events
    # stay in the durable consumer). So NATS is left out of readiness, and payments keeps
    # taking charges while NATS is away.
    connections.checks.pop("nats", None)

    async def handle_cancellation(event: dict[str, Any], event_id: str) -> None:
        await service.on_order_cancelled(db, event, event_id)

    async def consume_cancellations() -> None:
        """Subscribe (durably: events that arrive while payments is down wait for it)
        once NATS is reachable; NATS connects in the background (kit.connections)."""
        while True:
            js = connections.jetstream()
            if js is None:
                await asyncio.sleep(0.5)
                continue
            try:
                await events.ensure_streams(js)
                await events.subscribe(js, "order.cancelled", service.CANCELLATIONS_CONSUMER,
                                       handle_cancellation,
                                       max_deliveries=settings.max_deliveries,
                                       tracer_provider=telemetry.tracer_provider)
            except Exception as exc:
                logger.warning("could not subscribe to order.cancelled yet (%s); retrying",
                               exc or type(exc).__name__)
                await asyncio.sleep(2)
                continue
            logger.info("subscribed to order.cancelled as %s", service.CANCELLATIONS_CONSUMER)
            return

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="A simulated card processor: Luhn and expiry checks, test cards that "
                    "decline, tokens; never stores a card number. Refunds any charge of "
                    "an order that was cancelled, and refuses charges after it.",
        connections=connections,
        background=[consume_cancellations],
    )
    app.include_router(api.router)
    return app
