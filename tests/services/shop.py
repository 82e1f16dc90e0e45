"""The shop's services over real HTTP, for testing one of them with the real ones around
it: each served by uvicorn in a thread (its start-up and shutdown run, as under `kansoku
serve`) on the test session's PostgreSQL, NATS and Valkey, its schema migrated, the demo
data seeded, and every service pointed at the others.

    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["catalog", "inventory", "cart", "payments", "orders"],
                          tokens=TOKENS.verifier) as shop:
        orders_url = shop.urls["orders"]

A service left out is away: the others are given an address where nothing listens (never
the default ports, where a developer's own stack may run). With `tokens`, every service
checks access tokens with that verifier, so tests sign their own (`tests.tokens`);
without it they fetch identity's keys, and identity must be among the services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit.auth import TokenVerifier
from kansoku.kit.settings import ServiceSettings
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart.app import create_app as create_cart
from kansoku.services.cart.settings import Settings as CartSettings
from kansoku.services.catalog import demo as catalog_demo
from kansoku.services.catalog.app import create_app as create_catalog
from kansoku.services.catalog.settings import Settings as CatalogSettings
from kansoku.services.identity import demo as identity_demo
from kansoku.services.identity.app import create_app as create_identity
from kansoku.services.identity.settings import Settings as IdentitySettings
from kansoku.services.inventory import demo as inventory_demo
from kansoku.services.inventory.app import create_app as create_inventory
from kansoku.services.inventory.settings import Settings as InventorySettings
from kansoku.services.orders.app import create_app as create_orders
from kansoku.services.orders.settings import Settings as OrdersSettings
from kansoku.services.payments.app import create_app as create_payments
from kansoku.services.payments.settings import Settings as PaymentsSettings
from tests.support import free_ports, migrate, seed, serve_in_thread


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


#: The shop's services, in the order they start: each after those it calls.
SERVICES: dict[str, _Service] = {
    "identity": _Service(create_identity, IdentitySettings, demo=identity_demo.seed),
    "catalog": _Service(create_catalog, CatalogSettings, demo=catalog_demo.seed),
    "inventory": _Service(create_inventory, InventorySettings, demo=inventory_demo.seed),
    "cart": _Service(create_cart, CartSettings, migrated=False),
    "payments": _Service(create_payments, PaymentsSettings),
    "orders": _Service(create_orders, OrdersSettings,
                       calls=("catalog", "inventory", "cart", "payments")),
}


@dataclass(frozen=True)
class ServedShop:
    """The services being served: their base URLs and their apps, by name."""

    urls: dict[str, str]
    apps: dict[str, FastAPI]
    #: Where the services left out were said to be (nothing listens there).
    away: str


@asynccontextmanager
async def serve_shop(
    infra: Infrastructure,
    services: Collection[str] = tuple(SERVICES),
    *,
    tokens: TokenVerifier | None = None,
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
                **(settings or {}).get(name, {}),
            }
            app = service.create_app(service.settings.model_validate(values), telemetry(name))
            if tokens is not None:
                app.state.tokens = tokens
            urls[name] = running.enter_context(serve_in_thread(app, lifespan="on"))
            apps[name] = app
        yield ServedShop(urls, apps, away)
