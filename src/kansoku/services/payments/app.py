"""The payments service: `create_app` builds it, `kansoku serve payments` runs it.

Besides its routes it consumes `order.cancelled` from NATS, to refund any charge of an
order that was cancelled (see `service.on_order_cancelled`), and relays its outbox's
`payment.succeeded`, which orders consumes to settle an order whose answer it missed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import events
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.events import OutboxRelay
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.payments import SERVICE, api, service, store
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

    # `payment.succeeded`, relayed from the outbox once NATS is there: a charge never
    # waits for NATS, and its event waits in the table.
    relay = OutboxRelay(SERVICE, db.transaction, store.unpublished, store.mark_published,
                        connections.jetstream)

    async def handle_cancellation(event: dict[str, Any], event_id: str) -> None:
        await service.on_order_cancelled(db, event, event_id)

    async def consume_cancellations() -> None:
        await events.subscribe_when_connected(
            connections.jetstream, "order.cancelled", service.CANCELLATIONS_CONSUMER,
            handle_cancellation, max_deliveries=settings.max_deliveries,
            tracer_provider=telemetry.tracer_provider)

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="A simulated card processor: Luhn and expiry checks, test cards that "
                    "decline, tokens; never stores a card number. Refunds any charge of "
                    "an order that was cancelled, and refuses charges after it.",
        connections=connections,
        background=[consume_cancellations, relay.run],
    )
    app.include_router(api.router)
    return app
