"""The gateway: `create_app` builds it, `kansoku serve gateway` runs it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from opentelemetry import metrics
from starlette.middleware import Middleware

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import semconv
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient, Timeouts
from kansoku.kit.middleware import drop_incoming_baggage
from kansoku.kit.ratelimit import RateLimiter
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway import (
    SERVICE,
    admin_pages,
    api,
    faults,
    lab_pages,
    pages,
    rum,
    service,
    sessions,
    storefront,
)
from kansoku.services.gateway.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    breakers = CircuitBreakers(
        BreakerPolicy(),
        meter=metrics.get_meter("kansoku.gateway", meter_provider=telemetry.meter_provider),
    )
    timeouts = Timeouts(connect=settings.connect_timeout, read=settings.read_timeout)
    catalog = ServiceClient("catalog", settings.catalog_url, breakers, timeouts=timeouts,
                            telemetry=telemetry)
    identity = ServiceClient("identity", settings.identity_url, breakers, timeouts=timeouts,
                             telemetry=telemetry)
    inventory = ServiceClient("inventory", settings.inventory_url, breakers, timeouts=timeouts,
                              telemetry=telemetry)
    cart = ServiceClient("cart", settings.cart_url, breakers, timeouts=timeouts,
                         telemetry=telemetry)
    worker = ServiceClient("worker", settings.worker_url, breakers, timeouts=timeouts,
                           telemetry=telemetry)
    # Checkout calls several services in turn, each with its own read timeout, and
    # queues behind other buyers in a rush: the gateway waits longer than any one of
    # those, so it never answers 503 for an order that is still being placed.
    orders = ServiceClient("orders", settings.orders_url, breakers, telemetry=telemetry,
                           timeouts=Timeouts(connect=settings.connect_timeout,
                                             read=settings.checkout_timeout))
    connections = Connections(SERVICE, settings, telemetry, valkey=True)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="The public API of the kansoku shop. Errors are RFC 9457 problem "
                    "details (`application/problem+json`) with a `request_id`; log in at "
                    "`/api/v1/auth/login` and send `Authorization: Bearer <access_token>`.",
        # Ready when it can serve: a missing catalog shows as a 503 page for that request,
        # not as the gateway taken out of rotation. Valkey holds the rate limits.
        connections=connections,
        on_shutdown=[client.aclose for client in (catalog, identity, inventory, cart, orders,
                                                        worker)],
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        # Browser telemetry arrives with every page view: its own spans say what it holds.
        quiet_paths=("/rum",),
    )
    # Inside the request's span (user_middleware's first entry is the outermost layer).
    app.user_middleware.append(Middleware(faults.CpuHog, faults=app.state.flags))
    if not settings.trust_incoming_user:
        drop_incoming_baggage(app, frozenset({semconv.BAGGAGE_USER_ID}))
    app.state.catalog = catalog
    app.state.identity = identity
    app.state.inventory = inventory
    app.state.cart = cart
    app.state.orders = orders
    app.state.worker = worker
    app.state.limits = RateLimiter(connections.valkey)
    # Web sessions live in Valkey too (sessions.py).
    app.state.valkey = connections.valkey
    app.state.categories = storefront.CategoryList(catalog)
    app.state.breakers = breakers
    rum.install(app)
    # The pages' session cookie, the redirect to a login page, and HTML problem pages
    # for browsers (the API keeps problem+json).
    sessions.install(app)
    # A service's refusal no page put next to a field: its problem page, not a 500.
    app.add_exception_handler(service.Refused, pages.refused_as_problem)
    app.include_router(pages.router)
    app.include_router(admin_pages.router)
    app.include_router(lab_pages.router)
    app.include_router(rum.router)
    app.include_router(api.public)
    # The pages' own CSS and JavaScript, written here (no build step).
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app
