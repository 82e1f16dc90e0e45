"""The shop's services over real HTTP, for testing one of them with the real ones around
it: each served by uvicorn in a thread (its start-up and shutdown run, as under `kansoku
serve`) on the test session's PostgreSQL, NATS and Valkey, its schema migrated, the demo
data seeded, and every service pointed at the others.

    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["catalog", "inventory", "cart", "payments", "orders"],
                          tokens=TOKENS) as shop:
        orders_url = shop.urls["orders"]

A service left out is away: the others are given an address where nothing listens (never
the default ports, where a developer's own stack may run). With `tokens` (a
`tests.tokens.TokenIssuer`), every service checks access tokens with its verifier, so
tests sign their own, and a service that calls others on its own (orders, the worker)
gets its service token signed there too; without it they fetch identity's keys and ask
identity for service tokens, and identity must be among the services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.explorer.app import create_app as create_explorer
from kansoku.explorer.settings import Settings as ExplorerSettings
from kansoku.kit.auth import ServiceCredentials
from kansoku.kit.settings import ServiceSettings
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart.app import create_app as create_cart
from kansoku.services.cart.settings import Settings as CartSettings
from kansoku.services.catalog import demo as catalog_demo
from kansoku.services.catalog.app import create_app as create_catalog
from kansoku.services.catalog.settings import Settings as CatalogSettings
from kansoku.services.gateway.app import create_app as create_gateway
from kansoku.services.gateway.settings import Settings as GatewaySettings
from kansoku.services.identity import demo as identity_demo
from kansoku.services.identity.app import create_app as create_identity
from kansoku.services.identity.settings import Settings as IdentitySettings
from kansoku.services.inventory import demo as inventory_demo
from kansoku.services.inventory.app import create_app as create_inventory
from kansoku.services.inventory.settings import Settings as InventorySettings
from kansoku.services.lab.app import create_app as create_lab
from kansoku.services.lab.settings import Settings as LabSettings
from kansoku.services.orders.app import create_app as create_orders
from kansoku.services.orders.settings import Settings as OrdersSettings
from kansoku.services.payments.app import create_app as create_payments
from kansoku.services.payments.settings import Settings as PaymentsSettings
from kansoku.services.worker.app import create_app as create_worker
from kansoku.services.worker.settings import Settings as WorkerSettings
from tests.support import free_ports, migrate, seed, serve_in_thread
from tests.tokens import TokenIssuer


@dataclass(frozen=True)
class Infrastructure:
    """Where the test session's servers listen (the `postgres_url`, `valkey_url` and
    `nats_url` fixtures)."""

    postgres_url: str
    valkey_url: str
    nats_url: str


@dataclass(frozen=True)
class _Service:
    create_app: Callable[[Any, Telemetry], FastAPI]
    settings: type[ServiceSettings]
    #: Has a PostgreSQL schema to migrate.
    migrated: bool = True
    #: Adds the demo data (only to empty tables).
    demo: Callable[[AsyncSession], Awaitable[int]] | None = None
    #: The services it calls, each by the setting `<name>_url`.
    calls: tuple[str, ...] = ()
    #: Settings a test needs unless it says otherwise (made per serve: free ports).
    defaults: Callable[[], Mapping[str, Any]] = dict


def _explorer(settings: ExplorerSettings, telemetry: Telemetry) -> FastAPI:
    # The explorer does not trace itself: it is its own telemetry's backend.
    return create_explorer(settings)


#: The service secret of a served shop unless a test gives its own.
TEST_SERVICE_SECRET = "served-shop-service-secret"
#: Identity's login throttle, out of reach for tests about something else: they all log
#: in from 127.0.0.1 to one database, where their wrong passwords (and schemathesis's)
#: would add up to a lock of the address, and of the demo accounts, for the tests after
#: them. tests/security/test_login_throttle.py tests the throttle as configured.
NO_LOGIN_LOCKS: dict[str, Any] = {"login_account_failures": 1_000_000,
                                  "login_address_failures": 1_000_000}

#: The shop's services, in the order they start: each after those it calls.
SERVICES: dict[str, _Service] = {
    # Kept in memory; send it telemetry at its URL (`/v1/traces` …).
    "explorer": _Service(_explorer, ExplorerSettings, migrated=False,
                         defaults=lambda: {"db_path": ":memory:"}),
    # It seals its signing key with the service secret (others get it where they need
    # service tokens). Its login locks are out of reach (`NO_LOGIN_LOCKS`).
    "identity": _Service(create_identity, IdentitySettings, demo=identity_demo.seed,
                         defaults=lambda: {"service_secret": TEST_SERVICE_SECRET,
                                           **NO_LOGIN_LOCKS}),
    "catalog": _Service(create_catalog, CatalogSettings, demo=catalog_demo.seed),
    "inventory": _Service(create_inventory, InventorySettings, demo=inventory_demo.seed),
    "cart": _Service(create_cart, CartSettings, migrated=False),
    "payments": _Service(create_payments, PaymentsSettings),
    # It reserves stock and charges with its own service token.
    "orders": _Service(create_orders, OrdersSettings,
                       calls=("catalog", "inventory", "cart", "payments"),
                       defaults=lambda: {"service_secret": TEST_SERVICE_SECRET}),
    # Its mailbox's SMTP server on a free port; no scheduled report during a test.
    "worker": _Service(create_worker, WorkerSettings, calls=("catalog", "inventory"),
                       defaults=lambda: {"smtp_port": free_ports(1)[0],
                                         "report_first_run_seconds": 3600,
                                         "service_secret": TEST_SERVICE_SECRET}),
    # The lab reads catalog's and orders' tables: serve it with them.
    "lab": _Service(create_lab, LabSettings),
}


#: What a gateway in front of the shop calls, each by the setting `<name>_url`.
_GATEWAY_CALLS = ("identity", "catalog", "inventory", "cart", "orders", "worker", "lab",
                  "explorer")


@dataclass(frozen=True)
class ServedShop:
    """The services being served: their base URLs and their apps, by name."""

    infra: Infrastructure
    urls: dict[str, str]
    apps: dict[str, FastAPI]
    #: Where the services left out were said to be (nothing listens there).
    away: str

    def gateway_settings(self, **changes: Any) -> GatewaySettings:
        """Settings of a gateway in front of these services (the ones left out: away;
        without the explorer, an address that is never asked), with `changes`."""
        values: dict[str, Any] = {
            "redis_url": self.infra.valkey_url, "explorer_url": "http://explorer.test",
            **{f"{name}_url": self.urls[name] for name in _GATEWAY_CALLS
               if name in self.urls},
            **changes}
        for name in _GATEWAY_CALLS:
            values.setdefault(f"{name}_url", self.away)
        return GatewaySettings.model_validate(values)

    def gateway(self, **changes: Any) -> FastAPI:
        """A gateway app in front of these services (see `gateway_settings`); the test
        runs it, in its own event loop or served."""
        return create_gateway(self.gateway_settings(**changes), Telemetry("gateway"))


def tracing(*traced: str) -> Callable[[str], Telemetry]:
    """`serve_shop`'s `telemetry` for `traced` services traced (into nothing: their
    requests get trace ids, which is what some tests look for), the others not."""
    def telemetry(service: str) -> Telemetry:
        return Telemetry(service, tracer_provider=TracerProvider() if service in traced
                         else None)
    return telemetry


@asynccontextmanager
async def serve_shop(
    infra: Infrastructure,
    services: Collection[str] = tuple(SERVICES),
    *,
    tokens: TokenIssuer | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    telemetry: Callable[[str], Telemetry] = Telemetry,
    demo_data: bool = True,
) -> AsyncIterator[ServedShop]:
    """Serve `services` (names from `SERVICES`) until the block ends.

    `settings` adds or overrides settings per service (`{"payments": {"flags_file": …}}`);
    `telemetry(name)` makes each service's telemetry (default: none exported);
    `demo_data=False` leaves the tables as they are.
    """
    unknown = set(services) - set(SERVICES)
    assert not unknown, f"not a shop service: {sorted(unknown)}"
    assert tokens is not None or "identity" in services, (
        "without test tokens, the services need identity for its keys")
    for name in services:
        if SERVICES[name].migrated:
            await migrate(infra.postgres_url, name)
        demo = SERVICES[name].demo
        if demo_data and demo is not None:
            await seed(infra.postgres_url, name, demo)
    away = f"http://127.0.0.1:{free_ports(1)[0]}"
    urls: dict[str, str] = {}
    apps: dict[str, FastAPI] = {}
    with ExitStack() as running:
        for name, service in SERVICES.items():
            if name not in services:
                continue
            values: dict[str, Any] = {
                "database_url": infra.postgres_url, "redis_url": infra.valkey_url,
                "nats_url": infra.nats_url, "identity_url": urls.get("identity", away),
                **{f"{callee}_url": urls.get(callee, away) for callee in service.calls},
                **service.defaults(),
                **(settings or {}).get(name, {}),
            }
            app = service.create_app(service.settings.model_validate(values), telemetry(name))
            if tokens is not None:
                app.state.tokens = tokens.verifier
                credentials = getattr(app.state, "service_credentials", None)
                if isinstance(credentials, ServiceCredentials):
                    credentials.source = tokens.service_source(name)
            urls[name] = running.enter_context(serve_in_thread(app, lifespan="on"))
            apps[name] = app
            # FastAPI prepares its routes on the first request, inside
            # warnings.catch_warnings(), which is not thread-safe: done while a test
            # enters or leaves pytest's own catch_warnings, a warning it meant to silence
            # escapes (and fails the request). So let that first request happen now, while
            # this thread only waits (a path no route has: every route gets prepared).
            await asyncio.to_thread(httpx.get, f"{urls[name]}/no-such-page-warms-up",
                                    timeout=10)
        yield ServedShop(infra, urls, apps, away)
