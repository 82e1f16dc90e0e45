"""Inventory on a real PostgreSQL: restocking, all-or-nothing reservations that never
oversell under concurrency, commit, release and expiry."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from kansoku.kit.telemetry import Telemetry
from kansoku.services.inventory import service
from kansoku.services.inventory.app import create_app
from kansoku.services.inventory.settings import Settings
from tests.support import ManualClock, migrate
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
ADMIN = TOKENS.headers("admin")
CUSTOMER = TOKENS.headers()
#: Reservations are checkout's steps: orders makes them, with its service token.
ORDERS = TOKENS.service_headers("orders")


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    """Inventory's clock in this module: reservations expire when a test moves it."""
    return ManualClock()


@pytest.fixture(scope="module")
async def inventory_app(postgres_url: str, nats_url: str, clock: ManualClock
                        ) -> AsyncIterator[FastAPI]:
    await migrate(postgres_url, "inventory")
    app = create_app(Settings(database_url=postgres_url, nats_url=nats_url,
                              expiry_sweep_seconds=3600), Telemetry("inventory"),
                     clock=clock.utc_now)
    app.state.tokens = TOKENS.verifier
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def inventory(inventory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=inventory_app),
                                 base_url="http://inventory") as client:
        yield client


_next_product = iter(range(10_000, 20_000))


async def stocked(client: httpx.AsyncClient, units: int) -> int:
    product_id = next(_next_product)
    response = await client.post(f"/inventory/{product_id}/adjust", headers=ADMIN,
                                 json={"delta": units, "reason": "test stock"})
    assert response.status_code == 200, response.text
    return product_id


async def reserve(client: httpx.AsyncClient, items: list[tuple[int, int]],
                  order_id: uuid.UUID | None = None, ttl: int = 900) -> httpx.Response:
    return await client.post("/reservations", headers=ORDERS, json={
        "order_id": str(order_id or uuid.uuid4()), "ttl_seconds": ttl,
        "items": [{"product_id": p, "quantity": q} for p, q in items]})


async def level(client: httpx.AsyncClient, product_id: int) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/stock/{product_id}")).json()
    return body


async def test_restock_needs_an_admin_and_cannot_go_below_reserved(
    inventory: httpx.AsyncClient,
) -> None:
    product = await stocked(inventory, 10)
    refused = await inventory.post(f"/inventory/{product}/adjust", headers=CUSTOMER,
                                   json={"delta": 5, "reason": "sneaky"})
    assert refused.status_code == 403
    assert (await reserve(inventory, [(product, 4)])).status_code == 201
    too_much = await inventory.post(f"/inventory/{product}/adjust", headers=ADMIN,
                                    json={"delta": -7, "reason": "damaged"})
    assert too_much.status_code == 409 and too_much.json()["field"] == "delta"
    fine = await inventory.post(f"/inventory/{product}/adjust", headers=ADMIN,
                                json={"delta": -6, "reason": "damaged"})
    assert fine.json()["on_hand"] == 4
    assert fine.json()["available"] == 0 and fine.json()["status"] == "out"


async def test_reservation_is_all_or_nothing(inventory: httpx.AsyncClient) -> None:
    plenty, scarce = await stocked(inventory, 50), await stocked(inventory, 1)
    refused = await reserve(inventory, [(plenty, 5), (scarce, 2)])
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["product_id"] == scarce and problem["available"] == 1
    assert (await level(inventory, plenty))["reserved"] == 0, "nothing held on refusal"


async def test_concurrent_buyers_never_oversell(inventory: httpx.AsyncClient) -> None:
    product = await stocked(inventory, 20)
    answers = await asyncio.gather(*(reserve(inventory, [(product, 1)]) for _ in range(60)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(201) == 20
    assert statuses.count(409) == 40
    final = await level(inventory, product)
    assert final["reserved"] == 20 and final["available"] == 0 and final["on_hand"] == 20


async def test_a_big_order_is_reserved_in_a_fixed_number_of_statements(
        inventory_app: FastAPI, inventory: httpx.AsyncClient) -> None:
    """Not one statement per line (an N+1 the explorer would rightly name): the checks
    and the holds each take one statement whatever the number of products."""
    products = [await stocked(inventory, 3) for _ in range(12)]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = inventory_app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = await reserve(inventory, [(product, 2) for product in products])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 201, answer.text
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE")]) == 1
    assert len(statements) < 12, statements
    levels = (await inventory.get("/stock", params={
        "product_ids": ",".join(map(str, products))})).json()
    assert len(levels) == 12 and all(level["available"] == 1 for level in levels), levels


async def test_same_order_reserves_once(inventory: httpx.AsyncClient) -> None:
    product, order = await stocked(inventory, 10), uuid.uuid4()
    first = await reserve(inventory, [(product, 3)], order)
    again = await reserve(inventory, [(product, 3)], order)
    assert first.status_code == again.status_code == 201
    assert (await level(inventory, product))["reserved"] == 3


async def test_commit_sells_and_release_frees_both_idempotent(
    inventory: httpx.AsyncClient,
) -> None:
    product = await stocked(inventory, 10)
    paid, abandoned = uuid.uuid4(), uuid.uuid4()
    await reserve(inventory, [(product, 2)], paid)
    await reserve(inventory, [(product, 3)], abandoned)
    for _ in range(2):
        committed = await inventory.post(f"/reservations/{paid}/commit", headers=ORDERS)
        released = await inventory.post(f"/reservations/{abandoned}/release", headers=ORDERS)
        assert committed.json()["status"] == "committed"
        assert released.json()["status"] == "released"
    final = await level(inventory, product)
    assert (final["on_hand"], final["reserved"], final["available"]) == (8, 0, 8)
    late = await inventory.post(f"/reservations/{abandoned}/commit", headers=ORDERS)
    assert late.status_code == 409 and late.json()["reservation_status"] == "released"


async def test_unpaid_reservations_expire(inventory: httpx.AsyncClient,
                                          inventory_app: FastAPI, clock: ManualClock) -> None:
    product, order = await stocked(inventory, 5), uuid.uuid4()
    await reserve(inventory, [(product, 5)], order, ttl=1)
    assert (await level(inventory, product))["available"] == 0
    clock.advance(0.9)
    async with inventory_app.state.db.transaction() as session:
        await service.expire_due(session, clock.utc_now())
    assert (await level(inventory, product))["available"] == 0, "held until its TTL is up"
    clock.advance(0.2)
    async with inventory_app.state.db.transaction() as session:
        assert await service.expire_due(session, clock.utc_now()) >= 1
    assert (await level(inventory, product))["available"] == 5
    gone = await inventory.post(f"/reservations/{order}/commit", headers=ORDERS)
    assert gone.status_code == 409 and gone.json()["reservation_status"] == "expired"


async def test_levels_in_bulk_and_admin_overview(inventory: httpx.AsyncClient) -> None:
    low, never = await stocked(inventory, 2), next(_next_product)
    bulk = (await inventory.get("/stock", params={"product_ids": f"{low},{never}"})).json()
    assert [(item["product_id"], item["status"]) for item in bulk] == [(low, "low"),
                                                                      (never, "out")]
    bad = await inventory.get("/stock", params={"product_ids": "1,two"})
    assert bad.status_code == 422
    assert [error["field"] for error in bad.json()["errors"]] == ["product_ids"]
    too_large = await inventory.get("/stock", params={"product_ids": f"{low},{2**31}"})
    assert too_large.status_code == 422, "an id past a database integer is no id"
    overview = (await inventory.get("/inventory", params={"low_only": True, "limit": 200},
                                    headers=ADMIN)).json()
    assert low in {item["product_id"] for item in overview["items"]}
    assert all(item["low_stock"] for item in overview["items"])
    assert (await inventory.get("/inventory", headers=CUSTOMER)).status_code == 403


async def test_low_stock_is_announced_once_per_crossing(inventory: httpx.AsyncClient,
                                                        postgres_url: str) -> None:
    product = await stocked(inventory, 8)  # threshold 5
    await reserve(inventory, [(product, 2)])  # 6 left: not low
    await reserve(inventory, [(product, 2)])  # 4 left: crosses
    await reserve(inventory, [(product, 1)])  # 3 left: already low
    connection = await asyncpg.connect(postgres_url)
    try:
        events = await connection.fetch(
            "SELECT payload::text FROM inventory.outbox WHERE subject = 'inventory.low_stock'")
    finally:
        await connection.close()
    mine = [json.loads(e["payload"]) for e in events
            if json.loads(e["payload"])["product_id"] == product]
    assert mine == [{"product_id": product, "available": 4, "low_stock_threshold": 5}]


async def test_overview_accepts_a_service_token_but_not_a_customer(
    inventory: httpx.AsyncClient,
) -> None:
    """The worker's inventory report reads the overview with its own service token."""
    product = await stocked(inventory, 3)  # below the threshold of 5: low
    worker = TOKENS.headers("service", user_id="service:worker")
    page = await inventory.get("/inventory", params={"low_only": True, "limit": 200},
                               headers=worker)
    assert page.status_code == 200, page.text
    assert product in {item["product_id"] for item in page.json()["items"]}
    assert (await inventory.get("/inventory", headers=CUSTOMER)).status_code == 403
    assert (await inventory.get("/inventory")).status_code == 401
    # Reading is all it may do: changing stock still needs an admin.
    restock = await inventory.post(f"/inventory/{product}/adjust", headers=worker,
                                   json={"delta": 5, "reason": "not the worker's job"})
    assert restock.status_code == 403
