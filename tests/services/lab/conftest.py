"""The lab on a real PostgreSQL whose shop schemas (catalog, orders) are migrated and
seeded the way `kansoku migrate` does, plus a category of its own whose products and
orders the tests know exactly (other test modules add orders of their own to the same
database)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from kansoku.kit.db import Database
from kansoku.kit.telemetry import Telemetry
from kansoku.services.catalog import demo as catalog_demo
from kansoku.services.lab.app import create_app
from kansoku.services.lab.settings import Settings
from tests.support import migrate, seed
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
#: Products in the tests' own category: one more than the N+1 test lists.
PRODUCTS = 21


@dataclass
class Shop:
    """What the tests put in the database, and so know the answers for."""

    database_url: str
    category: str
    #: The category's products, by id: (price, number of distinct orders containing it).
    products: dict[int, tuple[Decimal, int]] = field(default_factory=dict)
    #: A customer with orders: paid ones per currency (count, total), and cancelled ones.
    buyer: str = field(default_factory=lambda: str(uuid.uuid4()))
    paid: dict[str, tuple[int, Decimal]] = field(default_factory=dict)

    def settings(self, **overrides: object) -> Settings:
        return Settings.model_validate({"database_url": self.database_url, **overrides})


async def _add_category_with_orders(database: Database, shop: Shop) -> None:
    suffix = uuid.uuid4().hex[:8]
    async with database.transaction() as session:
        category_id = await session.scalar(text(
            "INSERT INTO catalog.categories (slug, name) VALUES (:slug, 'Lab test bench') "
            "RETURNING id"), {"slug": shop.category})
        for number in range(PRODUCTS):
            # Prices out of id order, so "cheapest first" and "by id" differ.
            price = Decimal(f"{(number * 7) % PRODUCTS + 1}.49")
            product_id = await session.scalar(text(
                "INSERT INTO catalog.products (sku, name, price, currency, category_id) "
                "VALUES (:sku, :name, :price, 'USD', :category_id) RETURNING id"),
                {"sku": f"LAB-{suffix}-{number:02d}", "name": f"Bench item {number}",
                 "price": price, "category_id": category_id})
            shop.products[int(product_id)] = (price, 0)
        product_ids = sorted(shop.products)
        # Product k (by position) is in k % 4 orders; every second order holds it on
        # two lines, which still counts as one order.
        orders: list[tuple[str, str, str, Decimal, list[int]]] = []
        for position, product_id in enumerate(product_ids):
            for copy in range(position % 4):
                lines = [product_id, product_id] if copy % 2 else [product_id]
                orders.append((shop.buyer if position < 6 else str(uuid.uuid4()),
                               "paid" if position % 3 else "cancelled",
                               "USD" if position % 5 else "EUR", Decimal("10.00"), lines))
                price, count = shop.products[product_id]
                shop.products[product_id] = (price, count + 1)
        for user_id, status, currency, total, lines in orders:
            order_id = uuid.uuid4()
            await session.execute(text(
                "INSERT INTO orders.orders (id, number, user_id, status, total, currency, "
                "shipping_address) VALUES (:id, :number, :user_id, :status, :total, "
                ":currency, :address)"),
                {"id": order_id, "number": f"LB-{uuid.uuid4().hex[:12]}", "user_id": user_id,
                 "status": status, "total": total, "currency": currency,
                 "address": json.dumps({"city": "Tokyo"})})
            for product_id in lines:
                await session.execute(text(
                    "INSERT INTO orders.order_items (order_id, product_id, name, unit_price, "
                    "quantity, line_total) VALUES (:order_id, :product_id, 'Bench item', "
                    "5, 1, 5)"), {"order_id": order_id, "product_id": product_id})
            if user_id == shop.buyer and status == "paid":
                count, spent = shop.paid.get(currency, (0, Decimal(0)))
                shop.paid[currency] = (count + 1, spent + total)


@pytest.fixture(scope="package")
async def shop(postgres_url: str) -> AsyncIterator[Shop]:
    for schema in ("catalog", "orders", "lab"):
        await migrate(postgres_url, schema)
    await seed(postgres_url, "catalog", catalog_demo.seed)
    shop = Shop(postgres_url, category=f"lab-bench-{uuid.uuid4().hex[:8]}")
    database = Database(postgres_url, schema="lab", application_name="test-lab-seed")
    try:
        await _add_category_with_orders(database, shop)
    finally:
        await database.dispose()
    yield shop


def lab_app(shop: Shop, telemetry: Telemetry | None = None, **settings: object) -> FastAPI:
    """The lab, checking tokens with the tests' own keys."""
    app = create_app(shop.settings(**settings), telemetry or Telemetry("lab"))
    app.state.tokens = TOKENS.verifier
    return app


@pytest.fixture(scope="package")
async def lab(shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the lab (telemetry off), its start-up and shutdown run."""
    app = lab_app(shop)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lab",
            timeout=30) as client:
        yield client
