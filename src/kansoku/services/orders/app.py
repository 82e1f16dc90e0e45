"""The orders service: `create_app` builds it, `kansoku serve orders` runs it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry import metrics

from kansoku.contracts.calls import ServiceCaller
from kansoku.contracts.clients import CartClient, CatalogClient, InventoryClient, PaymentsClient
from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import events
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.auth import ServiceCredentials
from kansoku.kit.connections import Connections
from kansoku.kit.events import OutboxRelay
from kansoku.kit.flags import FaultFlags
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient
from kansoku.kit.telemetry import Telemetry
from kansoku.services.orders import SERVICE, api, service, store
from kansoku.services.orders.models import SCHEMA
from kansoku.services.orders.service import Downstream
from kansoku.services.orders.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    breakers = CircuitBreakers(BreakerPolicy(), meter=metrics.get_meter(
        "kansoku.orders", meter_provider=telemetry.meter_provider))
    identity, catalog, inventory, cart, payments = (
        ServiceClient(name, url, breakers, telemetry=telemetry)
        for name, url in (("identity", settings.identity_url),
                          ("catalog", settings.catalog_url),
                          ("inventory", settings.inventory_url),
                          ("cart", settings.cart_url),
                          ("payments", settings.payments_url)))
    secret = settings.service_secret.get_secret_value() if settings.service_secret else None
    # Reserving stock and charging are orders' own requests, made with its service
    # token: inventory and payments take them from orders only, never from a customer.
    credentials = ServiceCredentials(SERVICE, identity, secret)
    downstream = Downstream(CatalogClient(catalog), InventoryClient(inventory),
                            CartClient(cart), PaymentsClient(payments),
                            orders=ServiceCaller(credentials))

    async def close_clients() -> None:
        for client in (identity, catalog, inventory, cart, payments):
            await client.aclose()

    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              nats_messaging=True)
    assert connections.db is not None
    relay = OutboxRelay(SERVICE, connections.db.transaction, store.unpublished,
                        store.mark_published, connections.jetstream)

    async def handle_payment(event: dict[str, Any], event_id: str) -> None:
        assert connections.db is not None
        await service.on_payment_succeeded(connections.db, downstream, event, event_id)

    async def consume_payments() -> None:
        """Every charge that went through, so none waits for an answer orders missed."""
        await events.subscribe_when_connected(
            connections.jetstream, "payment.succeeded", service.PAYMENTS_CONSUMER,
            handle_payment, max_deliveries=settings.max_deliveries,
            tracer_provider=telemetry.tracer_provider)

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="Checkout as a saga (reserve, charge, commit), orders, and the "
                    "transactional outbox of order events; settles an order whose "
                    "charge went through from `payment.succeeded`.",
        connections=connections,
        background=[relay.run, consume_payments],
        on_shutdown=[close_clients],
    )
    app.state.downstream = downstream
    #: Where orders' service token comes from (tests give a source of their own).
    app.state.service_credentials = credentials
    app.state.breakers = breakers
    app.include_router(api.router)
    return app
