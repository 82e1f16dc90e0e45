"""The worker: `create_app` builds it, `kansoku serve worker` runs it.

It subscribes its functions to the shop's events once NATS is reachable, and, with no
external SMTP server configured, runs the embedded mailbox those functions send to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from fastapi import FastAPI

from kansoku.kit import events
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.telemetry import Telemetry
from kansoku.services.worker import SERVICE, api, service
from kansoku.services.worker.mailbox import start_mailbox
from kansoku.services.worker.models import SCHEMA
from kansoku.services.worker.settings import Settings

logger = logging.getLogger(__name__)


async def _to_admin(function: Any, admin_email: str, payload: dict[str, Any],
                    mailer: service.Mailer) -> None:
    await function(payload, mailer, admin_email)


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              nats_messaging=True)
    db = connections.db
    assert db is not None
    mailer = service.Mailer(settings.smtp_url, settings.smtp_port, settings.mail_from)
    functions: dict[str, tuple[str, Any]] = {
        "order.paid": ("order-confirmation", service.order_confirmation),
        "order.cancelled": ("order-cancellation", service.order_cancellation),
        "inventory.low_stock": ("low-stock-alert", functools.partial(
            _to_admin, service.low_stock_alert, settings.admin_email)),
    }
    servers: list[asyncio.Server] = []

    async def subscribe_when_connected() -> None:
        while True:
            try:
                await subscribe(await jetstream_when_connected())
                return
            except Exception as exc:
                logger.warning("could not subscribe yet (%s); retrying", exc)
                await asyncio.sleep(2)

    async def jetstream_when_connected() -> Any:
        # NATS connects in the background (kit.connections); poll for it.
        while (js := connections.jetstream()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        return js

    async def subscribe(js: Any) -> None:
        await events.ensure_streams(js)
        for subject, (name, function) in functions.items():
            async def handle(payload: dict[str, Any], event_id: str, name: str = name,
                             function: Any = function) -> None:
                await service.run_function(name, event_id, db,
                                           lambda: function(payload, mailer))
            await events.subscribe(js, subject, name, handle,
                                   max_deliveries=settings.max_deliveries)
        logger.info("subscribed to %s", ", ".join(functions))

    async def start() -> None:
        if settings.smtp_url is None:
            # Private to the stack, whatever address the service itself listens on.
            servers.append(await start_mailbox(db, "127.0.0.1", settings.smtp_port))

    async def stop() -> None:
        for server in servers:
            server.close()
            await server.wait_closed()

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        description="Event functions: order e-mails, low-stock alerts; the embedded "
                    "mailbox; dead letters.",
        connections=connections,
        background=[subscribe_when_connected],
        on_startup=[start],
        on_shutdown=[stop],
    )
    app.state.connections = connections
    app.include_router(api.router)
    return app
