"""The orders service's sales summary (the admin dashboard's "today") on a real
PostgreSQL: counts by status, revenue of paid orders per currency, the newest
cancellations, and only for an admin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from kansoku.kit.telemetry import Telemetry
from kansoku.services.orders.app import create_app
from kansoku.services.orders.settings import Settings
from tests.support import migrate
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
ADMIN = TOKENS.headers("admin")
SERVICE = TOKENS.headers("service", user_id="service:worker")
CUSTOMER = TOKENS.headers()

#: Orders in these tests are placed far in the future, so no other test's orders (placed
#: now) fall into the periods asked about.
FUTURE = datetime(2090, 3, 1, 0, 0)


@pytest.fixture(scope="module")
async def orders(postgres_url: str, nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(postgres_url, "orders")
    app = create_app(Settings(database_url=postgres_url, nats_url=nats_url),
                     Telemetry("orders"))
    app.state.tokens = TOKENS.verifier
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://orders") as client):
        yield client


async def place(postgres_url: str, *orders: tuple[datetime, str, str, str, str | None]
                ) -> list[str]:
    """Write orders as the checkout would have left them: (placed at, status, total,
    currency, cancel reason). Returns their numbers."""
    numbers = []
    connection = await asyncpg.connect(postgres_url)
    try:
        for created_at, status, total, currency, reason in orders:
            number = f"T-{uuid.uuid4().hex[:12]}"
            await connection.execute(
                "INSERT INTO orders.orders (id, number, user_id, status, total, currency, "
                "shipping_address, cancel_reason, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $8, $8)",
                uuid.uuid4(), number, str(uuid.uuid4()), status, Decimal(total), currency,
                reason, created_at)
            numbers.append(number)
    finally:
        await connection.close()
    return numbers


async def test_counts_revenue_per_currency_and_cancellations(
    orders: httpx.AsyncClient, postgres_url: str,
) -> None:
    day = FUTURE
    _, _, _, _, declined, away = await place(
        postgres_url,
        (day - timedelta(minutes=1), "paid", "999.00", "USD", None),  # the day before
        (day + timedelta(hours=1), "paid", "10.50", "USD", None),
        (day + timedelta(hours=2), "paid", "4.50", "USD", None),
        (day + timedelta(hours=3), "paid", "7.00", "EUR", None),
        (day + timedelta(hours=4), "cancelled", "20.00", "USD",
         "payment declined: insufficient_funds"),
        (day + timedelta(hours=5), "cancelled", "30.00", "USD", "payments unavailable"),
    )
    await place(postgres_url, (day + timedelta(hours=6), "pending_payment", "5.00", "USD",
                               None))

    answer = await orders.get("/sales/summary", headers=ADMIN,
                              params={"since": day.replace(tzinfo=UTC).isoformat()})

    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["orders"], summary["paid"], summary["pending_payment"],
            summary["cancelled"]) == (6, 3, 1, 2)
    assert summary["revenue"] == [
        {"currency": "EUR", "paid_orders": 1, "revenue": "7.00"},
        {"currency": "USD", "paid_orders": 2, "revenue": "15.00"},
    ], "paid orders only, never adding up different currencies"
    cancellations = summary["recent_cancellations"]
    assert [c["number"] for c in cancellations] == [away, declined], "newest first"
    assert cancellations[1]["cancel_reason"] == "payment declined: insufficient_funds"


async def test_a_time_zone_in_since_is_honoured(orders: httpx.AsyncClient,
                                                postgres_url: str) -> None:
    day = FUTURE + timedelta(days=10)
    await place(postgres_url, (day + timedelta(hours=1), "paid", "1.00", "USD", None))
    # 09:00 in Tokyo is midnight UTC: the order at 01:00 UTC is inside; from 11:00 in
    # Tokyo (02:00 UTC) it is not.
    tokyo_nine = datetime(day.year, day.month, day.day, 9, tzinfo=ZoneInfo("Asia/Tokyo"))
    inside = await orders.get("/sales/summary", params={"since": tokyo_nine.isoformat()},
                              headers=ADMIN)
    outside = await orders.get("/sales/summary", headers=ADMIN, params={
        "since": (tokyo_nine + timedelta(hours=2)).isoformat()})
    assert inside.json()["paid"] >= 1
    assert inside.json()["since"].startswith(f"{day.date().isoformat()}T00:00")
    assert outside.json()["paid"] == inside.json()["paid"] - 1


async def test_today_is_the_default(orders: httpx.AsyncClient, postgres_url: str) -> None:
    before = (await orders.get("/sales/summary", headers=ADMIN)).json()
    now = datetime.now(UTC).replace(tzinfo=None)
    await place(postgres_url, (now, "paid", "3.00", "JPY", None),
                (now - timedelta(days=1, minutes=1), "paid", "3.00", "JPY", None))
    after = (await orders.get("/sales/summary", headers=ADMIN)).json()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert after["since"] == midnight.isoformat() + "Z", "a time is sent with its zone"
    assert after["paid"] == before["paid"] + 1, "yesterday's order is not today's"
    assert {"currency": "JPY", "paid_orders": 1, "revenue": "3.00"} in after["revenue"]


async def test_only_admins_see_it(orders: httpx.AsyncClient) -> None:
    assert (await orders.get("/sales/summary")).status_code == 401
    refused = await orders.get("/sales/summary", headers=CUSTOMER)
    assert refused.status_code == 403
    assert (await orders.get("/sales/summary", headers=SERVICE)).status_code == 403
    for wrong in ("yesterday", "0.5", "2026-01-31", "2026-01-31T00:00:00"):
        bad = await orders.get("/sales/summary", params={"since": wrong}, headers=ADMIN)
        assert bad.status_code == 422, f"{wrong}: only RFC 3339 with a zone is a moment"
        assert bad.headers["content-type"] == "application/problem+json"
