"""The whole worker app: its functions subscribed on a real NATS, its admin API, and its
settings pointing at a stand-in for identity, catalog and inventory served over real
HTTP (`world.World`)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from kansoku.kit import events
from kansoku.kit.telemetry import Telemetry
from kansoku.services.worker.app import create_app
from kansoku.services.worker.models import Notification
from kansoku.services.worker.settings import Settings
from tests.services.worker.world import World, png, product, stock_level
from tests.support import eventually, free_ports, migrate, serve_in_thread
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
ADMIN = TOKENS.headers("admin")
CUSTOMER = TOKENS.headers()


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[World, str]]:
    world = World(TOKENS)
    for product_id in range(1, 31):
        world.stock.append(stock_level(product_id, product_id))
        world.products[product_id] = product(product_id)
    with serve_in_thread(world.app) as url:
        yield world, url


@pytest.fixture(scope="module")
async def worker_app(postgres_url: str, nats_url: str, world: tuple[World, str]
                     ) -> AsyncIterator[FastAPI]:
    the_world, url = world
    await migrate(postgres_url, "worker")
    (smtp_port,) = free_ports(1)
    settings = Settings(database_url=postgres_url, nats_url=nats_url, smtp_port=smtp_port,
                        identity_url=url, catalog_url=url, inventory_url=url,
                        service_secret=the_world.secret, oncall_phone="+15550123",
                        # Reports on request only in these tests.
                        report_first_run_seconds=3600)
    app = create_app(settings, Telemetry("worker"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def worker(worker_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=worker_app),
                                 base_url="http://worker") as client:
        yield client


@pytest.fixture(scope="module")
async def jetstream(nats_url: str) -> AsyncIterator[Any]:
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    await events.ensure_streams(js)
    yield js
    await connection.close()


async def publish(js: Any, subject: str, payload: dict[str, Any]) -> str:
    """Publish an event as a service's outbox relay does; returns its event id."""
    event_id = str(uuid.uuid4())
    await events.publish(js, subject, payload, message_id=event_id, trace_headers={})
    return event_id


async def notifications_of(app: FastAPI, event_id: str) -> list[Notification]:
    async with app.state.db.transaction() as session:
        return list((await session.scalars(
            select(Notification).where(Notification.event_id == event_id))).all())


async def test_events_reach_their_functions(worker_app: FastAPI, worker: httpx.AsyncClient,
                                            jetstream: Any, world: tuple[World, str]
                                            ) -> None:
    the_world, _ = world
    user_id = str(uuid.uuid4())
    paid = await publish(jetstream, "order.paid", {
        "order_id": str(uuid.uuid4()), "number": "KS-APP-1", "status": "paid",
        "user_id": user_id, "email": "bob@example.com", "name": "Bob", "total": "10.00",
        "currency": "USD", "items": [{"product_id": 1, "name": "Lens cap", "quantity": 1,
                                      "unit_price": "10.00"}]})
    low = await publish(jetstream, "inventory.low_stock",
                        {"product_id": 77, "available": 2, "low_stock_threshold": 5})
    the_world.add_image(5, 2, png(500, 250))
    await publish(jetstream, "product.image_uploaded",
                  {"product_id": 5, "version": 2, "content_type": "image/png"})

    async def handled() -> bool:
        return (len(await notifications_of(worker_app, paid)) == 1
                and len(await notifications_of(worker_app, low)) == 1
                and any(t.product_id == 5 for t in the_world.thumbnails))
    await eventually(handled, 20, "the worker handling all three events")

    [push] = await notifications_of(worker_app, paid)
    assert (push.channel, push.recipient) == ("push", f"user:{user_id}")
    [sms] = await notifications_of(worker_app, low)
    assert (sms.channel, sms.recipient) == ("sms", "+15550123")
    [thumbnail] = [t for t in the_world.thumbnails if t.product_id == 5]
    assert thumbnail.content_type == "image/webp" and thumbnail.caller.is_service

    listed = await worker.get("/notifications", params={"channel": "sms"}, headers=ADMIN)
    assert listed.status_code == 200
    assert {item["channel"] for item in listed.json()} == {"sms"}
    assert listed.json()[0]["event_id"] == low  # newest first
    assert {"id", "recipient", "text", "created_at"} <= set(listed.json()[0])
    # Other modules' orders may reach this worker through the shared stream too, so the
    # push is looked for among the recent ones rather than expected to be the newest.
    pushes = (await worker.get("/notifications", params={"channel": "push", "limit": 50},
                               headers=ADMIN)).json()
    assert paid in [item["event_id"] for item in pushes]
    assert {item["channel"] for item in pushes} == {"push"}
    newest = (await worker.get("/notifications", params={"channel": "push", "limit": 1},
                               headers=ADMIN)).json()
    assert newest == pushes[:1]
    mail = (await worker.get("/mailbox", headers=ADMIN)).json()
    assert any("KS-APP-1" in item["subject"] for item in mail)


async def test_notifications_are_for_admins_with_a_known_channel(
        worker: httpx.AsyncClient) -> None:
    assert (await worker.get("/notifications", headers=CUSTOMER)).status_code == 403
    assert (await worker.get("/notifications")).status_code == 401
    wrong = await worker.get("/notifications", params={"channel": "fax"}, headers=ADMIN)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "channel"


async def test_an_admin_makes_lists_and_downloads_reports(worker: httpx.AsyncClient) -> None:
    first = await worker.post("/reports/inventory", headers=ADMIN)
    assert first.status_code == 201, first.text
    second = (await worker.post("/reports/inventory", headers=ADMIN)).json()
    summary = first.json()
    assert set(summary) == {"id", "kind", "created_at", "row_count", "low_stock_count"}
    assert (summary["kind"], summary["row_count"], summary["low_stock_count"]) == (
        "inventory", 30, 5)

    listed = (await worker.get("/reports", headers=ADMIN)).json()
    assert [item["id"] for item in listed[:2]] == [second["id"], summary["id"]]

    as_csv = await worker.get(f"/reports/{summary['id']}.csv", headers=ADMIN)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].startswith(
        'attachment; filename="kansoku-inventory-report-')
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 30 and rows[0]["sku"] == "SKU-1"

    as_json = await worker.get(f"/reports/{summary['id']}.json", headers=ADMIN)
    assert as_json.headers["content-type"].startswith("application/json")
    document = as_json.json()
    assert document["id"] == summary["id"] and len(document["items"]) == 30
    assert json.loads(as_json.text)["low_stock_count"] == 5


async def test_reports_are_for_admins_and_a_missing_one_is_a_problem(
        worker: httpx.AsyncClient) -> None:
    assert (await worker.post("/reports/inventory", headers=CUSTOMER)).status_code == 403
    assert (await worker.get("/reports", headers=CUSTOMER)).status_code == 403
    missing = await worker.get(f"/reports/{uuid.uuid4()}.csv", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["type"].endswith("/report-not-found")
    assert (await worker.get(f"/reports/{uuid.uuid4()}.json", headers=ADMIN)
            ).status_code == 404
    assert (await worker.get("/reports/not-an-id.csv", headers=ADMIN)).status_code == 422


async def test_a_report_while_inventory_is_down_is_a_503_problem(
        worker: httpx.AsyncClient, world: tuple[World, str]) -> None:
    the_world, _ = world
    listing = {"limit": 500}
    before = len((await worker.get("/reports", params=listing, headers=ADMIN)).json())
    the_world.down.add("inventory")
    try:
        answer = await worker.post("/reports/inventory", headers=ADMIN)
    finally:
        the_world.down.clear()
    assert answer.status_code == 503
    assert answer.json()["dependency"] == "inventory"
    assert len((await worker.get("/reports", params=listing, headers=ADMIN)).json()) == before


@pytest.mark.parametrize(("sequence", "status"), [
    ("0", 422), ("-1", 422), (str(2**63), 422), (str(2**63 - 1), 404), ("999999", 404)])
async def test_replaying_a_dead_letter_that_never_was_is_a_4xx(
        worker: httpx.AsyncClient, sequence: str, status: int) -> None:
    answer = await worker.post(f"/dead-letters/{sequence}/replay", headers=ADMIN)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
