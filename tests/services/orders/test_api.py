"""The orders service's HTTP API without the whole stack: orders over real HTTP with the
real catalog, inventory, cart and payments beside it (each in a thread, on the session's
PostgreSQL, NATS and Valkey), called with tokens the test signs. Every route: placing an
order from items or from the cart, idempotency, refusals (out of stock, invalid input),
paying (success, decline, a second payment), listing and reading orders, the sales
summary's access, and the problem+json every error is answered with."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from tests.services.shop import Infrastructure, ServedShop, serve_shop, tracing
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
ADMIN = TOKENS.headers("admin")
ADDRESS = {"street": "1 Observatory Road", "city": "Flagstaff", "state": "AZ",
           "zip": "86001", "country": "US"}
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
#: A card payments declines for insufficient funds.
DECLINED_CARD = {**CARD, "card_number": "4000000000007775"}
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["catalog", "inventory", "cart", "payments", "orders"],
                          tokens=TOKENS, telemetry=tracing("orders")) as served:
        yield served


@pytest.fixture
async def orders(shop: ServedShop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shop.urls["orders"], timeout=30) as client:
        yield client


def customer() -> dict[str, str]:
    """The headers of a customer of their own (other tests' orders are not theirs)."""
    return TOKENS.headers(user_id=f"buyer-{uuid.uuid4().hex[:12]}")


async def new_product(shop: ServedShop, units: int, *, price: str = "12.50",
                      currency: str = "USD") -> int:
    """A product of this test's own in the catalog, with `units` in stock."""
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{shop.urls['catalog']}/products", headers=ADMIN, json={
            "name": f"Meteor Camera {uuid.uuid4().hex[:6]}", "price": price,
            "currency": currency, "category": "cameras"})
        assert created.status_code == 201, created.text
        product_id = int(created.json()["id"])
        stocked = await client.post(f"{shop.urls['inventory']}/inventory/{product_id}/adjust",
                                    headers=ADMIN, json={"delta": units, "reason": "test"})
        assert stocked.status_code == 200, stocked.text
    return product_id


async def stock(shop: ServedShop, product_id: int) -> dict[str, Any]:
    """The product's stock as inventory holds it."""
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(f"{shop.urls['inventory']}/stock/{product_id}")
    assert answer.status_code == 200, answer.text
    level: dict[str, Any] = answer.json()
    return level


async def place(orders: httpx.AsyncClient, who: dict[str, str],
                items: list[tuple[int, int]] | None, key: str | None = None
                ) -> httpx.Response:
    """POST /orders with these (product, quantity) lines, or from the cart (None)."""
    body: dict[str, Any] = {"shipping_address": ADDRESS}
    if items is not None:
        body["items"] = [{"product_id": p, "quantity": q} for p, q in items]
    headers = {**who, **({"Idempotency-Key": key} if key else {})}
    return await orders.post("/orders", headers=headers, json=body)


async def pay(orders: httpx.AsyncClient, who: dict[str, str], order_id: str,
              card: dict[str, Any] = CARD) -> httpx.Response:
    return await orders.post(f"/orders/{order_id}/payment", headers=who, json={
        "payment_method": "credit_card", "payment_details": card})


async def placed_order(shop: ServedShop, orders: httpx.AsyncClient, who: dict[str, str],
                       units: int = 5, quantity: int = 2) -> tuple[int, dict[str, Any]]:
    """A product of its own with `units` in stock, and an order of `quantity` of it."""
    product = await new_product(shop, units)
    answer = await place(orders, who, [(product, quantity)])
    assert answer.status_code == 201, answer.text
    return product, answer.json()


# --- placing orders ---------------------------------------------------------------------

async def test_an_order_of_items_is_priced_by_the_catalog_and_holds_its_stock(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    scope, camera = await new_product(shop, 10, price="249.00"), await new_product(shop, 4)
    answer = await place(orders, customer(), [(camera, 1), (scope, 1), (camera, 2)])

    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert order["status"] == "pending_payment" and order["number"].startswith("KS-")
    lines = {item["product_id"]: (item["quantity"], item["unit_price"], item["line_total"])
             for item in order["items"]}
    assert lines == {scope: (1, "249.00", "249.00"), camera: (3, "12.50", "37.50")}, (
        "one line per product, at the catalog's price")
    assert [item["product_id"] for item in order["items"]] == sorted(lines)
    assert Decimal(order["total"]) == Decimal("286.50") and order["currency"] == "USD"
    assert order["shipping_address"] == ADDRESS
    assert order["payment_id"] is None and order["cancel_reason"] is None
    held = await stock(shop, camera)
    assert (held["on_hand"], held["reserved"], held["available"]) == (4, 3, 1)


async def test_an_order_from_the_cart_empties_the_cart(shop: ServedShop,
                                                       orders: httpx.AsyncClient) -> None:
    who = customer()
    first, second = await new_product(shop, 5), await new_product(shop, 5, price="3.00")
    async with httpx.AsyncClient(base_url=shop.urls["cart"], timeout=30) as cart:
        for product, quantity in ((first, 2), (second, 1)):
            added = await cart.post("/cart/items", headers=who,
                                    json={"product_id": product, "quantity": quantity})
            assert added.status_code == 200, added.text

        answer = await place(orders, who, None)

        assert answer.status_code == 201, answer.text
        assert [(item["product_id"], item["quantity"]) for item in answer.json()["items"]
                ] == [(first, 2), (second, 1)]
        assert answer.json()["total"] == "28.00"
        assert (await cart.get("/cart", headers=who)).json()["items"] == []
    empty = await place(orders, who, None)
    assert empty.status_code == 409
    assert empty.json()["type"].endswith("/cart-empty") and empty.json()["field"] == "items"


async def test_an_order_keeps_the_trace_it_was_placed_in(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    """The trace of the request that placed an order is kept with it, so its pages can
    link to it; placed without a trace context, it is orders' own trace."""
    who, product = customer(), await new_product(shop, 5)
    trace_id = uuid.uuid4().hex
    body = {"items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS}
    traced = await orders.post("/orders", json=body, headers={
        **who, "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"})
    assert traced.status_code == 201, traced.text
    assert traced.json()["trace_id"] == trace_id
    read = (await orders.get(f"/orders/{traced.json()['id']}", headers=who)).json()
    listed = (await orders.get("/orders", headers=who)).json()["items"]
    assert read["trace_id"] == trace_id and listed[0]["trace_id"] == trace_id

    untraced = (await place(orders, who, [(product, 1)])).json()
    assert re.fullmatch(r"[0-9a-f]{32}", untraced["trace_id"])
    assert untraced["trace_id"] != trace_id


async def test_the_same_idempotency_key_is_the_same_order(shop: ServedShop,
                                                          orders: httpx.AsyncClient) -> None:
    who, product, key = customer(), await new_product(shop, 10), uuid.uuid4().hex
    first = await place(orders, who, [(product, 2)], key)
    again = await place(orders, who, [(product, 2)], key)

    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]
    assert (await stock(shop, product))["reserved"] == 2, "the stock is held once"
    other = await place(orders, customer(), [(product, 1)], key)
    assert other.json()["id"] != first.json()["id"], "a key is one customer's"


async def test_concurrent_requests_with_one_key_make_one_order(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    # Each request reserves before the key decides which one wins: stock for all five.
    who, product, key = customer(), await new_product(shop, 15), uuid.uuid4().hex
    answers = await asyncio.gather(*(place(orders, who, [(product, 3)], key)
                                     for _ in range(5)))

    assert [answer.status_code for answer in answers] == [201] * 5, [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1, "one key, one order"
    listed = (await orders.get("/orders", headers=who)).json()
    assert listed["total"] == 1
    # The requests that lost the race released what they had reserved.
    assert (await stock(shop, product))["reserved"] == 3


async def test_out_of_stock_is_409_and_holds_nothing(shop: ServedShop,
                                                     orders: httpx.AsyncClient) -> None:
    who = customer()
    plenty, scarce = await new_product(shop, 50), await new_product(shop, 2)
    answer = await place(orders, who, [(plenty, 1), (scarce, 3)])

    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/out-of-stock")
    assert (problem["product_id"], problem["available"]) == (scarce, 2)
    assert (await stock(shop, plenty))["reserved"] == 0
    assert (await orders.get("/orders", headers=who)).json()["total"] == 0


@pytest.mark.parametrize(("items", "field"), [
    ([{"product_id": 1, "quantity": 0}], "items.0.quantity"),
    ([{"product_id": 0, "quantity": 1}], "items.0.product_id"),
    ([], "items"),
])
async def test_an_invalid_line_is_422_naming_its_field(orders: httpx.AsyncClient,
                                                       items: list[dict[str, int]],
                                                       field: str) -> None:
    answer = await orders.post("/orders", headers=customer(),
                               json={"items": items, "shipping_address": ADDRESS})
    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == [field]


async def test_an_invalid_address_is_422_and_unknown_or_mixed_products_refused(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    product = await new_product(shop, 5)
    no_country = {key: value for key, value in ADDRESS.items() if key != "country"}
    answer = await orders.post("/orders", headers=customer(), json={
        "items": [{"product_id": product, "quantity": 1}], "shipping_address": no_country})
    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == ["shipping_address.country"]

    # Well-formed, but naming what is not there (404) or what cannot go together (409).
    unknown = await place(orders, customer(), [(product, 1), (987_654_321, 1)])
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "items"
    assert unknown.json()["product_ids"] == [987_654_321]

    dearest = await new_product(shop, 5, price="9999999999.99")
    too_large = await place(orders, customer(), [(dearest, 2)])
    assert too_large.status_code == 409, "a total past numeric(12, 2) is no 500"
    assert too_large.json()["type"].endswith("/order-too-large")

    euros = await new_product(shop, 5, currency="EUR")
    mixed = await place(orders, customer(), [(product, 1), (euros, 1)])
    assert mixed.status_code == 409
    assert mixed.json()["type"].endswith("/mixed-currencies")
    assert mixed.json()["field"] == "items"


# --- paying -------------------------------------------------------------------------------

async def test_paying_charges_once_and_sells_the_stock(shop: ServedShop,
                                                       orders: httpx.AsyncClient) -> None:
    who = customer()
    product, order = await placed_order(shop, orders, who, units=5, quantity=2)

    paid = await pay(orders, who, order["id"])

    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert (payment["status"], payment["order_status"]) == ("succeeded", "paid")
    assert (payment["order_id"], payment["order_number"]) == (order["id"], order["number"])
    assert (payment["amount"], payment["currency"]) == ("25.00", "USD")
    assert (payment["method"], payment["brand"], payment["last4"]) == (
        "credit_card", "visa", "1111")
    fetched = (await orders.get(f"/orders/{order['id']}", headers=who)).json()
    assert (fetched["status"], fetched["payment_id"]) == ("paid", payment["id"])
    sold = await stock(shop, product)
    assert (sold["on_hand"], sold["reserved"], sold["available"]) == (3, 0, 3)

    # A second payment (a retry, a double click) is the first one again.
    again = await pay(orders, who, order["id"])
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["order_status"]) == (payment["id"], "paid")
    assert (await stock(shop, product))["on_hand"] == 3, "the stock is sold once"


async def test_an_order_placed_in_japanese_keeps_its_language_for_the_emails(
        shop: ServedShop, orders: httpx.AsyncClient, postgres_url: str) -> None:
    """A customer reading Japanese (the gateway passes `Accept-Language: ja` on): the
    catalog names the product in Japanese, the order keeps that name, and `order.paid`
    says "ja", so the worker writes the confirmation in Japanese. Without the header:
    English, as before."""
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{shop.urls['catalog']}/products", headers=ADMIN, json={
            "name": "Comet Filter", "name_ja": "彗星フィルター", "price": "9.00",
            "category": "filters"})
        assert created.status_code == 201, created.text
        product = int(created.json()["id"])
        stocked = await client.post(f"{shop.urls['inventory']}/inventory/{product}/adjust",
                                    headers=ADMIN, json={"delta": 5, "reason": "test"})
        assert stocked.status_code == 200, stocked.text
    for language, name in (("ja", "彗星フィルター"), (None, "Comet Filter")):
        who = customer()
        sent = {**who, **({"Accept-Language": language} if language else {})}
        answer = await orders.post("/orders", headers=sent, json={
            "items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS})
        assert answer.status_code == 201, answer.text
        order = answer.json()
        assert order["items"][0]["name"] == name
        assert (await pay(orders, who, order["id"])).status_code == 201
        connection = await asyncpg.connect(postgres_url)
        try:
            said = await connection.fetchval(
                "SELECT payload->>'language' FROM orders.outbox WHERE subject = 'order.paid' "
                "AND payload->>'order_id' = $1", order["id"])
        finally:
            await connection.close()
        assert said == (language or "en")


async def test_a_declined_card_cancels_the_order_and_frees_its_stock(
        shop: ServedShop, orders: httpx.AsyncClient, postgres_url: str) -> None:
    who = customer()
    product, order = await placed_order(shop, orders, who, units=3, quantity=3)
    assert (await stock(shop, product))["available"] == 0

    declined = await pay(orders, who, order["id"], DECLINED_CARD)

    assert declined.status_code == 402, declined.text
    assert declined.json()["type"].endswith("/payment-declined")
    assert declined.json()["reason"] == "insufficient_funds"
    assert declined.json()["order_status"] == "cancelled"
    cancelled = (await orders.get(f"/orders/{order['id']}", headers=who)).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "payment declined: insufficient_funds"
    # Kept on the order as codes too, which the shop's pages word in their reader's
    # language.
    assert (cancelled["cancel_reason_code"], cancelled["decline_reason"]) == (
        "payment-declined", "insufficient_funds")
    freed = await stock(shop, product)
    assert (freed["on_hand"], freed["reserved"], freed["available"]) == (3, 0, 3)
    late = await orders.post(f"/orders/{order['id']}/payment",
                             headers={**who, "Accept-Language": "ja"},
                             json={"payment_method": "credit_card", "payment_details": CARD})
    assert late.status_code == 409 and late.json()["type"].endswith("/order-cancelled")
    assert late.json()["detail"] == (f"ご注文 {order['number']} はキャンセルされました"
                                     "（お支払いが承認されませんでした：残高不足）。")  # noqa: RUF001
    # The event says why as codes too, for the worker to word in the customer's language.
    connection = await asyncpg.connect(postgres_url)
    try:
        why = await connection.fetchrow(
            "SELECT payload->>'reason' AS reason, payload->>'reason_code' AS code, "
            "payload->>'decline_reason' AS decline FROM orders.outbox "
            "WHERE subject = 'order.cancelled' AND payload->>'order_id' = $1", order["id"])
    finally:
        await connection.close()
    assert dict(why) == {"reason": "payment declined: insufficient_funds",
                         "code": "payment-declined", "decline": "insufficient_funds"}


async def test_a_card_that_fails_its_checks_leaves_the_order_waiting(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    who = customer()
    _, order = await placed_order(shop, orders, who)
    bad = await pay(orders, who, order["id"], {**CARD, "card_number": "4111111111111112"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["field"] == "payment_details.card_number"
    assert (await orders.get(f"/orders/{order['id']}", headers=who)
            ).json()["status"] == "pending_payment"
    assert (await pay(orders, who, order["id"])).status_code == 201


# --- reading orders -----------------------------------------------------------------------

async def test_a_customer_lists_and_reads_only_their_own_orders(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    who = customer()
    placed = [(await placed_order(shop, orders, who, quantity=1))[1] for _ in range(3)]

    listed = await orders.get("/orders", headers=who)
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 3 and (page["limit"], page["offset"]) == (20, 0)
    assert [order["id"] for order in page["items"]] == [o["id"] for o in reversed(placed)], (
        "newest first")
    second = (await orders.get("/orders", headers=who, params={"limit": 1, "offset": 1})
              ).json()
    assert [order["id"] for order in second["items"]] == [placed[1]["id"]]
    assert second["total"] == 3
    mine = await orders.get(f"/orders/{placed[0]['id']}", headers=who)
    assert mine.status_code == 200 and mine.json() == placed[0]

    stranger = customer()
    assert (await orders.get("/orders", headers=stranger)).json()["total"] == 0
    theirs = await orders.get(f"/orders/{placed[0]['id']}", headers=stranger)
    assert theirs.status_code == 404 and theirs.json()["type"].endswith("/order-not-found")
    paying = await pay(orders, stranger, placed[0]["id"])
    assert paying.status_code == 404, "nor pay it"
    assert (await orders.get("/orders")).status_code == 401


async def test_only_admins_see_the_sales_summary(orders: httpx.AsyncClient) -> None:
    """No service reads the sales figures: a service token, whosever, is refused too."""
    assert (await orders.get("/sales/summary")).status_code == 401
    assert (await orders.get("/sales/summary", headers=customer())).status_code == 403
    assert (await orders.get("/sales/summary", headers=ADMIN)).status_code == 200
    service = TOKENS.service_headers("worker")
    assert (await orders.get("/sales/summary", headers=service)).status_code == 403


async def test_errors_are_problem_json_with_the_request_id(
        shop: ServedShop, orders: httpx.AsyncClient) -> None:
    """Orders' own refusals, validation errors and the refusals it hands on from
    inventory all carry orders' request id, in the body and in the header."""
    scarce = await new_product(shop, 1)
    answers = [
        await orders.get(f"/orders/{uuid.uuid4()}", headers=customer()),  # 404
        await orders.get("/orders"),  # 401
        await orders.get("/orders", headers=customer(), params={"limit": 0}),  # 422
        await place(orders, customer(), [(scarce, 2)]),  # 409 from inventory
    ]
    assert [answer.status_code for answer in answers] == [404, 401, 422, 409]
    for answer in answers:
        assert answer.headers["content-type"] == PROBLEM_JSON, answer.text
        assert answer.json()["request_id"] == answer.headers["x-request-id"], answer.text
    chosen = await orders.get(f"/orders/{uuid.uuid4()}",
                              headers={**customer(), "X-Request-ID": "orders-test-1"})
    assert chosen.json()["request_id"] == "orders-test-1"
