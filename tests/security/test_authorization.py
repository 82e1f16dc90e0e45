"""Every service checks who may call each of its routes, whatever is in front of it.

Once, payments and inventory took any customer's token for anything: a customer paid
a 1,730.97 order for 0.01, refunded another customer's payment, held a product's whole
stock for a day and released someone else's reservation. In compose and Kubernetes
every pod reaches every service's port, so "only the gateway calls it" protected
nothing.

The walk below goes over every route of every service that takes a token, as its
OpenAPI document lists them, and tries each with no token, a customer's token and the
token of a service the route does not name. Which routes customers may call is written
out here (`CUSTOMER_ROUTES`), not read from the code under test: a new internal route
that forgets to say who may call it fails this test, as does one that lets customers
in without being on the list.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from kansoku.kit.auth import Access, route_access
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart.app import create_app as create_cart
from kansoku.services.cart.settings import Settings as CartSettings
from kansoku.services.catalog.app import create_app as create_catalog
from kansoku.services.catalog.settings import Settings as CatalogSettings
from kansoku.services.identity.app import create_app as create_identity
from kansoku.services.identity.settings import Settings as IdentitySettings
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
from kansoku.topology import SERVICES_BY_NAME
from tests.support import free_ports
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()

#: The routes a customer may call, per service (method and path template). Anything
#: else that takes a token is for admins or named services only.
CUSTOMER_ROUTES: dict[str, set[str]] = {
    "identity": {"GET /users/me", "PATCH /users/me"},
    "cart": {"GET /cart", "POST /cart/items", "PATCH /cart/items/{product_id}",
             "DELETE /cart/items/{product_id}", "DELETE /cart"},
    "orders": {"POST /orders", "GET /orders", "GET /orders/{order_id}",
               "POST /orders/{order_id}/payment"},
    # Their own payment only: someone else's is "not found" (test below).
    "payments": {"GET /charges/{payment_id}"},
    "catalog": set(),
    "inventory": set(),
    "worker": set(),
    # Every lab operation, run as the customer (the lab's scenarios are theirs to try).
    "lab": {"POST *"},
}

#: The steps only one service may take, whoever else asks: what the findings were about.
ONLY_ORDERS = {
    "payments": {"POST /charges"},
    "inventory": {"POST /reservations", "POST /reservations/{order_id}/commit"},
}

_APPS: dict[str, tuple[Callable[..., FastAPI], Any]] = {
    "identity": (create_identity, IdentitySettings),
    "catalog": (create_catalog, CatalogSettings),
    "inventory": (create_inventory, InventorySettings),
    "cart": (create_cart, CartSettings),
    "orders": (create_orders, OrdersSettings),
    "payments": (create_payments, PaymentsSettings),
    "worker": (create_worker, WorkerSettings),
    "lab": (create_lab, LabSettings),
}


def _app(service: str) -> FastAPI:
    """The service's app, checking tokens with the test's keys. Nothing here reaches
    its database: every request of the walk is refused before a route body runs (an
    unreachable address makes sure of it — a request let through would fail loudly)."""
    nowhere = f"127.0.0.1:{free_ports(1)[0]}"
    create_app, settings = _APPS[service]
    app = create_app(settings.model_validate({
        "database_url": f"postgresql://nobody@{nowhere}/none", "nats_url": f"nats://{nowhere}",
        "redis_url": f"redis://{nowhere}/0", "service_secret": "walk-secret",
        "smtp_port": free_ports(1)[0]}), Telemetry(service))
    app.state.tokens = TOKENS.verifier
    return app


def _key(method: str, path: str) -> str:
    return f"{method} {path}"


def _token_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every route whose OpenAPI operation needs a token."""
    document = app.openapi()
    found = []
    for included in iter_route_contexts(app.routes):
        route, path = included.original_route, included.path_format
        if not isinstance(route, APIRoute) or not route.include_in_schema or path is None:
            continue
        for method in sorted(route.methods or ()):
            operation = document["paths"].get(path, {}).get(method.lower(), {})
            if operation.get("security"):
                found.append((method, path, route))
    return found


def _for_customers(service: str, method: str, path: str) -> bool:
    allowed = CUSTOMER_ROUTES[service]
    return _key(method, path) in allowed or f"{method} *" in allowed


def _concrete(path: str) -> str:
    """A path template with made-up values: the request never gets that far."""
    values = {"order_id": uuid.uuid4(), "payment_id": uuid.uuid4(), "product_id": 1,
              "report_id": uuid.uuid4(), "sequence": 1}
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", str(value))
    return path.replace("{", "").replace("}", "")


def _stranger(access: Access | None) -> str:
    """A service of the shop that `access` does not name."""
    named = access.services if access else frozenset()
    return next(name for name in ("lab", "cart", "synthetics", "explorer")
                if name not in named and name in SERVICES_BY_NAME)


@pytest.fixture(params=sorted(_APPS))
async def service_app(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, FastAPI]]:
    yield request.param, _app(request.param)


async def test_every_route_that_takes_a_token_says_who_may_call_it(
        service_app: tuple[str, FastAPI]) -> None:
    service, app = service_app
    routes = _token_routes(app)
    assert routes, f"{service} has no routes that take a token?"
    undeclared = [_key(method, path) for method, path, route in routes
                  if route_access(route.dependant) is None
                  and not _for_customers(service, method, path)]
    assert not undeclared, (f"{service}: routes for any token holder that are not "
                            f"customers' routes; declare who may call them "
                            f"(kit.auth.allow): {undeclared}")
    opened = [_key(method, path) for method, path, route in routes
              if (access := route_access(route.dependant)) is not None and access.customers
              and not _for_customers(service, method, path)]
    assert not opened, f"{service}: routes opened to customers unexpectedly: {opened}"


async def test_internal_routes_refuse_customers_other_services_and_no_token(
        service_app: tuple[str, FastAPI]) -> None:
    service, app = service_app
    customer = TOKENS.headers()
    checked: list[str] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://{service}") as client:
        for method, path, route in _token_routes(app):
            url = _concrete(path)
            anonymous = await client.request(method, url)
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            if _for_customers(service, method, path):
                continue
            access = route_access(route.dependant)
            as_customer = await client.request(method, url, headers=customer)
            assert as_customer.status_code == 403, (method, path, as_customer.text)
            assert as_customer.json()["type"].endswith("/forbidden")
            stranger = _stranger(access)
            as_stranger = await client.request(method, url,
                                               headers=TOKENS.service_headers(stranger))
            assert as_stranger.status_code == 403, (method, path, stranger,
                                                    as_stranger.text)
            checked.append(_key(method, path))
    expected_internal = {_key(m, p) for m, p, _ in _token_routes(app)
                         if not _for_customers(service, m, p)}
    assert set(checked) == expected_internal


@pytest.mark.parametrize("service", sorted(ONLY_ORDERS))
async def test_only_orders_reserves_stock_and_charges(service: str) -> None:
    """Not a customer, not an admin, not the worker: orders, whose record holds the
    amount and the items."""
    app = _app(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://{service}") as client:
        for key in ONLY_ORDERS[service]:
            method, path = key.split(" ", 1)
            for headers in (TOKENS.headers(), TOKENS.headers("admin"),
                            TOKENS.service_headers("worker"),
                            TOKENS.service_headers("payments")):
                refused = await client.request(method, _concrete(path), headers=headers)
                assert refused.status_code == 403, (key, refused.text)
            route = next(r for m, p, r in _token_routes(app) if _key(m, p) == key)
            access = route_access(route.dependant)
            assert access is not None and access.services == {"orders"}
            assert not (access.admin or access.customers), key
