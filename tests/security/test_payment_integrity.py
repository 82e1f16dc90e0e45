"""The money matches the order, and a payment is its payer's business.

The findings: a customer charged an order of 1,730.97 for 0.01 straight at payments,
and orders then accepted that payment for the order without comparing amounts; a
customer read and refunded another customer's payment. Now payments takes charges from
orders only (`test_authorization`), orders charges the order's own total and checks the
payment it gets back, payments refuses a second charge of another amount, and a
customer reading a payment sees only their own.

Over real HTTP: orders with the real catalog, inventory, cart and payments beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

# The orders tests' helpers (`customer()`, …) sign with their `TOKENS`: served with the
# same keys here.
from tests.services.orders.test_api import CARD, TOKENS, customer, pay, placed_order
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import database_of_its_own

ORDERS = TOKENS.service_headers("orders")


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    """In a database of its own: the products these tests add must not change what the
    catalog's tests count in the shared one."""
    database = await database_of_its_own(postgres_url, "payment_integrity")
    async with serve_shop(Infrastructure(database, valkey_url, nats_url),
                          ["catalog", "inventory", "cart", "payments", "orders"],
                          tokens=TOKENS) as served:
        yield served


@pytest.fixture
async def orders(shop: ServedShop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shop.urls["orders"], timeout=30) as client:
        yield client


@pytest.fixture
async def payments(shop: ServedShop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shop.urls["payments"], timeout=30) as client:
        yield client


async def test_an_order_is_charged_its_own_total(shop: ServedShop,
                                                 orders: httpx.AsyncClient,
                                                 payments: httpx.AsyncClient) -> None:
    buyer = customer()
    _, order = await placed_order(shop, orders, buyer, quantity=3)
    paid = await pay(orders, buyer, order["id"])
    assert paid.status_code == 201, paid.text
    record = await payments.get(f"/charges/{paid.json()['id']}", headers=ORDERS)
    assert Decimal(record.json()["amount"]) == Decimal(order["total"])
    assert record.json()["currency"] == order["currency"]


async def test_a_payment_of_another_amount_never_pays_an_order(
        shop: ServedShop, orders: httpx.AsyncClient, payments: httpx.AsyncClient) -> None:
    """What the old attack left behind: a payment of 0.01 for an order of 25.00. The
    customer then pays the order through orders: payments refuses to pass the old
    payment off as the order's (409), nothing more is charged, the order stays unpaid."""
    buyer = customer()
    _, order = await placed_order(shop, orders, buyer, quantity=2)
    assert Decimal(order["total"]) == Decimal("25.00")
    cheap = await payments.post("/charges", headers=ORDERS, json={
        "order_id": order["id"], "user_id": "someone", "amount": "0.01",
        "currency": order["currency"], "payment_method": "credit_card",
        "payment_details": CARD})
    assert cheap.status_code == 201, cheap.text

    paying = await pay(orders, buyer, order["id"])
    assert paying.status_code == 409, paying.text
    assert paying.json()["type"].endswith("/charge-mismatch")
    assert "nothing more was charged" in paying.json()["detail"]
    again = await orders.get(f"/orders/{order['id']}", headers=buyer)
    assert again.json()["status"] == "pending_payment"
    assert again.json()["payment_id"] is None


async def test_a_customer_sees_their_own_payment_and_nobody_else_s(
        shop: ServedShop, orders: httpx.AsyncClient, payments: httpx.AsyncClient) -> None:
    buyer, stranger = customer(), customer()
    _, order = await placed_order(shop, orders, buyer)
    paid = await pay(orders, buyer, order["id"])
    assert paid.status_code == 201, paid.text
    payment_id = paid.json()["id"]

    own = await payments.get(f"/charges/{payment_id}", headers=buyer)
    assert own.status_code == 200, own.text
    theirs = await payments.get(f"/charges/{payment_id}", headers=stranger)
    missing = await payments.get(f"/charges/{uuid.uuid4()}", headers=stranger)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["type"] == missing.json()["type"], (
        "someone else's payment reads as one that does not exist")

    refund = await payments.post(f"/charges/{payment_id}/refund", headers=stranger)
    assert refund.status_code == 403
    assert (await payments.get(f"/charges/{payment_id}", headers=ORDERS)
            ).json()["status"] == "succeeded"


async def test_a_customer_cannot_hold_or_free_stock_directly(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    """Reserving a product's whole stock, or releasing someone else's order, straight at
    inventory: refused, and the other customer's order still holds its units."""
    buyer, attacker = customer(), customer()
    product, order = await placed_order(shop, orders, buyer, units=5, quantity=2)
    async with httpx.AsyncClient(base_url=shop.urls["inventory"], timeout=30) as inventory:
        hoard = await inventory.post("/reservations", headers=attacker, json={
            "order_id": str(uuid.uuid4()), "ttl_seconds": 86_400,
            "items": [{"product_id": product, "quantity": 3}]})
        release = await inventory.post(f"/reservations/{order['id']}/release",
                                       headers=attacker)
        level = (await inventory.get(f"/stock/{product}")).json()
    assert (hoard.status_code, release.status_code) == (403, 403)
    assert (level["reserved"], level["available"]) == (2, 3)
    assert (await pay(orders, buyer, order["id"])).status_code == 201
