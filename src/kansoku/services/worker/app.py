"""The worker: `create_app` builds it, `kansoku serve worker` runs it.

It subscribes its functions to the shop's events once NATS is reachable, makes the
inventory report on a schedule, and, with no external SMTP server configured, runs the
embedded mailbox its e-mails go to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from opentelemetry import metrics

from kansoku.contracts.calls import ServiceCaller
from kansoku.contracts.clients import CatalogClient, InventoryClient
from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import events
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.auth import ServiceCredentials
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient
from kansoku.kit.telemetry import Telemetry
from kansoku.services.worker import SERVICE, api, service
from kansoku.services.worker.mailbox import start_mailbox
from kansoku.services.worker.models import SCHEMA
from kansoku.services.worker.settings import Settings

logger = logging.getLogger(__name__)

#: A function run on an event: given the event's payload and its invocation.
EventFunction = Callable[[dict[str, Any], service.Invocation], Awaitable[None]]


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    meter = metrics.get_meter("kansoku.worker", meter_provider=telemetry.meter_provider)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              nats_messaging=True)
    db = connections.db
    assert db is not None

    breakers = CircuitBreakers(BreakerPolicy(), meter=meter)
    identity, catalog, inventory = (
        ServiceClient(name, url, breakers, telemetry=telemetry)
        for name, url in (("identity", settings.identity_url),
                          ("catalog", settings.catalog_url),
                          ("inventory", settings.inventory_url)))
    secret = settings.service_secret.get_secret_value() if settings.service_secret else None
    credentials = ServiceCredentials(SERVICE, identity, secret)
    worker = ServiceCaller(credentials)
    catalog_api, inventory_api = CatalogClient(catalog), InventoryClient(inventory)
    notifier = service.Notifier(
        service.Mailer(settings.smtp_url, settings.smtp_port, settings.mail_from), meter)
    reports = service.InventoryReports(catalog_api, inventory_api, worker, meter)

    # Subject -> (function name, which is also its durable consumer, and the function).
    functions: dict[str, tuple[str, EventFunction]] = {
        "order.paid": ("order-confirmation", functools.partial(
            service.order_confirmation, notifier=notifier)),
        "order.cancelled": ("order-cancellation", functools.partial(
            service.order_cancellation, notifier=notifier)),
        "inventory.low_stock": ("low-stock-alert", functools.partial(
            service.low_stock_alert, notifier=notifier, admin_email=settings.admin_email,
            oncall_phone=settings.oncall_phone, staff_language=settings.staff_language)),
        "product.image_uploaded": (service.ImageThumbnails.NAME,
                                   service.ImageThumbnails(catalog_api, worker)),
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

    consumer_lag = service.ConsumerLag(
        meter, {name: subject for subject, (name, _) in functions.items()})

    async def subscribe(js: Any) -> None:
        await events.ensure_streams(js)
        for subject, (name, function) in functions.items():
            async def handle(payload: dict[str, Any], event_id: str, name: str = name,
                             function: EventFunction = function, subject: str = subject
                             ) -> None:
                await faults.before_event(subject)
                await service.run_function(name, event_id, db,
                                           lambda run: function(payload, run))
            await events.subscribe(js, subject, name, handle,
                                   max_deliveries=settings.max_deliveries)
        logger.info("subscribed to %s", ", ".join(functions))

    async def watch_consumer_lag() -> None:
        await consumer_lag.run(connections.jetstream)

    async def reports_on_schedule() -> None:
        await reports.run_on_schedule(db, settings.report_interval_seconds,
                                      settings.report_first_run_seconds)

    async def start() -> None:
        if settings.smtp_url is None:
            # Private to the stack, whatever address the service itself listens on.
            servers.append(await start_mailbox(db, "127.0.0.1", settings.smtp_port))

    async def stop() -> None:
        for server in servers:
            server.close()
            await server.wait_closed()
        for client in (identity, catalog, inventory):
            await client.aclose()

    fault_flags = FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=fault_flags,
        description="Event functions: order e-mails and push notifications, low-stock "
                    "alerts by e-mail and SMS, product thumbnails, inventory reports; the "
                    "embedded mailbox; dead letters.",
        connections=connections,
        background=[subscribe_when_connected, reports_on_schedule, watch_consumer_lag],
        on_startup=[start],
        on_shutdown=[stop],
    )
    # The fault flags are read from start-up on (the app starts them).
    faults = service.FaultEffects(fault_flags)
    app.state.faults = faults
    app.state.consumer_lag = consumer_lag
    app.state.connections = connections
    app.state.breakers = breakers
    app.state.reports = reports
    #: Where the worker's service token comes from (tests give a source of their own).
    app.state.service_credentials = credentials
    app.include_router(api.router)
    return app
