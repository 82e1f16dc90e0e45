"""The gateway's public API (`/api/v1`) with the real services behind it — identity,
catalog, inventory, cart, payments and orders, each over real HTTP in a thread on real
PostgreSQL, Valkey and NATS — but without a whole stack: what the gateway adds (a
product with its stock, the cart priced, a product created with its stock or not at
all) and how it hands on what the services say (their problems unchanged, a service
away as a 503 naming it, only the documented fields)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.services.shop import Infrastructure, ServedShop, serve_shop

ADMIN = ("admin@example.com", "admin-pass-1234")
ADDRESS = {"street": "1 Test Way", "city": "Testville", "state": "CA", "zip": "94105",
           "country": "US"}
GOOD_CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
             "cvv": "123"}
DECLINED_CARD = {**GOOD_CARD, "card_number": "4000000000007775"}


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    """The services the public API calls; the worker and the lab are away."""
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "inventory", "cart", "payments", "orders"]
                          ) as served:
        yield served


@asynccontextmanager
async def api_client(shop: ServedShop, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway in front of `shop` (with `changes` to its settings), its
    start-up and shutdown run in this test's event loop."""
    app = shop.gateway(**changes)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://shop.test/api/v1") as client:
        yield client


@pytest.fixture(scope="module")
async def api(shop: ServedShop) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(shop) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_in(api: httpx.AsyncClient, email: str, password: str) -> str:
    answer = await api.post("/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def new_customer(api: httpx.AsyncClient) -> dict[str, str]:
    email = f"api-{uuid.uuid4().hex[:10]}@example.com"
    created = await api.post("/users", json={"name": "Ada API", "email": email,
                                              "password": "api-pass-1234"})
    assert created.status_code == 201, created.text
    return bearer(await log_in(api, email, "api-pass-1234"))


async def admin(api: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await log_in(api, *ADMIN))


async def new_product(api: httpx.AsyncClient, units: int, **changes: Any) -> dict[str, Any]:
    created = await api.post("/products", headers=await admin(api), json={
        "name": f"API Scope {uuid.uuid4().hex[:6]}", "price": "49.99", "currency": "USD",
        "inventory": units, "category": "telescopes", **changes})
    assert created.status_code == 201, created.text
    product: dict[str, Any] = created.json()
    return product


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`answer` is problem+json with `status` and `code`, carrying the request's id."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = answer.json()
    assert problem["type"].rsplit("/", 1)[-1] == code, problem
    assert problem["request_id"] == answer.headers["x-request-id"]
    return problem


# --- accounts -------------------------------------------------------------------------

async def test_accounts_register_log_in_refresh_and_change_the_profile(
        api: httpx.AsyncClient) -> None:
    email = f"api-{uuid.uuid4().hex[:10]}@example.com"
    created = await api.post("/users", json={"name": "Ada API", "email": email,
                                              "password": "api-pass-1234"})
    assert created.status_code == 201
    assert set(created.json()) == {"id", "name", "email", "role", "created_at"}
    again = await api.post("/users", json={"name": "Ada Again", "email": email,
                                            "password": "api-pass-1234"})
    assert_problem(again, 409, "email-taken")

    wrong = await api.post("/auth/login", json={"email": email, "password": "not-it-at-all"})
    assert_problem(wrong, 401, "bad-credentials")
    tokens = (await api.post("/auth/login", json={"email": email,
                                                  "password": "api-pass-1234"})).json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    refreshed = await api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    reused = await api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401, "a refresh token works once"

    me = bearer(refreshed.json()["access_token"])
    assert (await api.get("/users/me", headers=me)).json()["email"] == email
    renamed = await api.patch("/users/me", headers=me, json={"name": "Ada Renamed"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Ada Renamed"
    assert_problem(await api.get("/users/me"), 401, "unauthorized")


# --- the catalog ----------------------------------------------------------------------

async def test_a_product_comes_with_its_stock_and_only_the_documented_fields(
        api: httpx.AsyncClient) -> None:
    product = await new_product(api, 7)
    assert (product["stock"], product["stock_status"]) == (7, "in_stock")
    detail = await api.get(f"/products/{product['id']}")
    assert detail.status_code == 200
    body = detail.json()
    assert (body["stock"], body["stock_status"], body["price"]) == (7, "in_stock", "49.99")
    # The read model knows the low-stock threshold (the pages show it); the public
    # contract does not have it, so it is not sent.
    assert "low_stock_threshold" not in body
    assert set(body) == {"id", "sku", "name", "description", "price", "currency",
                         "category", "image_version", "image_url", "thumbnail_url",
                         "stock", "stock_status"}


async def test_a_missing_product_is_the_catalogs_own_problem(api: httpx.AsyncClient) -> None:
    missing = await api.get("/products/999999")
    problem = assert_problem(missing, 404, "product-not-found")
    assert problem["instance"] == "/products/999999", "the catalog's problem, unchanged"


async def test_without_inventory_a_product_shows_with_its_stock_unknown(
        shop: ServedShop) -> None:
    async with api_client(shop, inventory_url=shop.away) as without:
        answer = await without.get("/products/1")
        listed = await without.get("/products", params={"limit": 3})
    assert answer.status_code == 200
    assert (answer.json()["stock"], answer.json()["stock_status"]) == (None, "unknown")
    assert listed.status_code == 200 and len(listed.json()["items"]) == 3


async def test_the_catalog_filters_sorts_and_lists_its_categories(
        api: httpx.AsyncClient) -> None:
    categories = (await api.get("/categories")).json()
    slugs = [category["slug"] for category in categories]
    assert "telescopes" in slugs
    page = (await api.get("/products", params={"category": "telescopes", "sort": "price",
                                                "limit": 50})).json()
    prices = [float(product["price"]) for product in page["items"]]
    assert prices == sorted(prices) and page["total"] >= len(prices) > 0
    assert {product["category"]["slug"] for product in page["items"]} == {"telescopes"}
    too_many = await api.get("/products", params={"limit": 101})
    assert_problem(too_many, 422, "validation-error")


async def test_pictures_pass_through_with_their_caching_headers(
        api: httpx.AsyncClient) -> None:
    picture = await api.get("/products/1/image")
    assert picture.status_code == 200
    assert picture.headers["content-type"].startswith("image/svg+xml")
    assert picture.headers["etag"] and picture.headers["cache-control"]
    unchanged = await api.get("/products/1/image",
                              headers={"If-None-Match": picture.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""


# --- the admin's product changes -----------------------------------------------------

async def test_an_admin_creates_replaces_and_deletes_a_product(api: httpx.AsyncClient
                                                              ) -> None:
    customer = await new_customer(api)
    refused = await api.post("/products", headers=customer, json={
        "name": "Not Mine", "price": "1.00"})
    assert_problem(refused, 403, "forbidden")
    product = await new_product(api, 3)
    changed = await api.put(f"/products/{product['id']}", headers=await admin(api), json={
        "name": "Renamed Scope", "price": "59.99", "currency": "USD",
        "category": "telescopes"})
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed Scope"
    deleted = await api.delete(f"/products/{product['id']}", headers=await admin(api))
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await api.get(f"/products/{product['id']}"), 404, "product-not-found")


async def test_a_product_is_never_half_created_when_inventory_is_away(
        shop: ServedShop, api: httpx.AsyncClient) -> None:
    name = f"Half Made {uuid.uuid4().hex[:8]}"
    async with api_client(shop, inventory_url=shop.away) as without:
        token = await admin(without)
        answer = await without.post("/products", headers=token, json={
            "name": name, "price": "10.00", "inventory": 5})
    problem = assert_problem(answer, 503, "dependency-unavailable")
    assert problem["dependency"] == "inventory"
    found = (await api.get("/products", params={"q": name})).json()
    assert found["total"] == 0, "the product was removed again"


async def test_an_image_larger_than_allowed_is_413(shop: ServedShop
                                                   ) -> None:
    async with api_client(shop, max_image_bytes=100) as small:
        answer = await small.post("/products/1/image", headers=await admin(small),
                                  files={"image": ("big.png", b"\x89PNG" + b"0" * 200,
                                                   "image/png")})
    assert_problem(answer, 413, "image-too-large")


# --- the cart, orders and payments ----------------------------------------------------

async def test_the_cart_is_priced_at_todays_prices(api: httpx.AsyncClient) -> None:
    customer = await new_customer(api)
    scope, lens = await new_product(api, 10), await new_product(api, 10, price="2.50")
    unknown = await api.post("/cart/items", headers=customer,
                             json={"product_id": 999999, "quantity": 1})
    assert_problem(unknown, 404, "product-not-found")
    await api.post("/cart/items", headers=customer,
                   json={"product_id": scope["id"], "quantity": 2})
    cart = (await api.post("/cart/items", headers=customer,
                           json={"product_id": lens["id"], "quantity": 3})).json()
    assert cart["total"] == "107.48" and cart["currency"] == "USD"
    assert [(line["name"], line["quantity"], line["line_total"]) for line in cart["items"]] \
        == [(scope["name"], 2, "99.98"), (lens["name"], 3, "7.50")]
    assert set(cart["items"][0]) == {"product_id", "name", "unit_price", "quantity",
                                     "line_total"}
    changed = await api.patch(f"/cart/items/{scope['id']}", headers=customer,
                              json={"quantity": 1})
    assert changed.json()["total"] == "57.49"
    removed = await api.delete(f"/cart/items/{lens['id']}", headers=customer)
    assert removed.json()["total"] == "49.99"
    emptied = await api.patch(f"/cart/items/{scope['id']}", headers=customer,
                              json={"quantity": 0})
    assert emptied.json() == {"items": [], "total": "0", "currency": None}


async def test_orders_are_placed_once_per_key_paid_and_private(api: httpx.AsyncClient
                                                              ) -> None:
    customer = await new_customer(api)
    product = await new_product(api, 5)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    order = {"items": [{"product_id": product["id"], "quantity": 2}],
             "shipping_address": ADDRESS}
    placed = await api.post("/orders", headers={**customer, **key}, json=order)
    again = await api.post("/orders", headers={**customer, **key}, json=order)
    assert placed.status_code == 201 and again.status_code == 201
    assert again.json()["id"] == placed.json()["id"], "the same key, the same order"
    assert placed.json()["status"] == "pending_payment"

    paid = await api.post("/payments", headers=customer, json={
        "order_id": placed.json()["id"], "payment_method": "credit_card",
        "payment_details": GOOD_CARD})
    assert paid.status_code == 201, paid.text
    assert (paid.json()["status"], paid.json()["last4"]) == ("succeeded", "1111")
    shown = (await api.get(f"/orders/{placed.json()['id']}", headers=customer)).json()
    assert shown["status"] == "paid"
    listed = (await api.get("/orders", headers=customer)).json()
    assert [item["id"] for item in listed["items"]] == [placed.json()["id"]]
    stranger = await new_customer(api)
    assert_problem(await api.get(f"/orders/{placed.json()['id']}", headers=stranger),
                   404, "order-not-found")


async def test_a_declined_card_is_402_and_frees_the_stock(api: httpx.AsyncClient) -> None:
    customer = await new_customer(api)
    product = await new_product(api, 1)
    placed = (await api.post("/orders", headers=customer, json={
        "items": [{"product_id": product["id"], "quantity": 1}],
        "shipping_address": ADDRESS})).json()
    assert (await api.get(f"/products/{product['id']}")).json()["stock"] == 0
    declined = await api.post("/payments", headers=customer, json={
        "order_id": placed["id"], "payment_method": "credit_card",
        "payment_details": DECLINED_CARD})
    problem = assert_problem(declined, 402, "payment-declined")
    assert "insufficient" in problem["detail"].lower()
    assert (await api.get(f"/products/{product['id']}")).json()["stock"] == 1
    assert (await api.get(f"/orders/{placed['id']}", headers=customer)).json()[
        "status"] == "cancelled"


async def test_a_service_away_is_a_503_that_names_it(shop: ServedShop
                                                     ) -> None:
    async with api_client(shop, cart_url=shop.away) as without:
        customer = await new_customer(without)
        answer = await without.get("/cart", headers=customer)
    problem = assert_problem(answer, 503, "dependency-unavailable")
    assert problem["dependency"] == "cart" and answer.headers["retry-after"] == "5"


# --- the admin's operations -----------------------------------------------------------

async def test_an_admin_adjusts_stock_and_reads_the_days_sales(api: httpx.AsyncClient
                                                               ) -> None:
    token = await admin(api)
    product = await new_product(api, 2)
    adjusted = await api.post(f"/inventory/{product['id']}/adjust", headers=token,
                              json={"delta": 8, "reason": "restock from supplier"})
    assert adjusted.status_code == 200 and adjusted.json()["available"] == 10
    too_many = await api.post(f"/inventory/{product['id']}/adjust", headers=token,
                              json={"delta": -11, "reason": "broken in transit"})
    assert too_many.status_code == 409
    low = (await api.get("/inventory", headers=token, params={"low_only": "true"})).json()
    assert all(row["low_stock"] for row in low["items"])
    sales = await api.get("/admin/sales", headers=token)
    assert sales.status_code == 200 and {"orders", "paid", "revenue"} <= set(sales.json())
    customer = await new_customer(api)
    assert_problem(await api.get("/admin/sales", headers=customer), 403, "forbidden")
    away = await api.get("/admin/mailbox", headers=token)
    assert assert_problem(away, 503, "dependency-unavailable")["dependency"] == "worker"
    no_flags = await api.get("/admin/flags", headers=token)
    assert_problem(no_flags, 503, "flags-unavailable")


# --- bad input is the caller's mistake: a 4xx from the gateway, never a 5xx -----------

@pytest.mark.parametrize(("method", "path", "body", "who"), [
    ("GET", "/products/2147483648", None, "anyone"),
    ("GET", "/products?offset=9223372036854775808", None, "anyone"),
    ("GET", "/products?q=a%00b", None, "anyone"),
    ("POST", "/users", {"name": "Ada\u0000", "email": "nul@example.com",
                        "password": "api-pass-1234"}, "anyone"),
    ("POST", "/cart/items", {"product_id": 2**31, "quantity": 1}, "customer"),
    ("POST", "/orders", {"items": [{"product_id": 2**31, "quantity": 1}],
                         "shipping_address": ADDRESS}, "customer"),
    ("GET", "/orders?offset=9223372036854775808", None, "customer"),
    ("GET", "/inventory?offset=9223372036854775808", None, "admin"),
    ("POST", "/inventory/2147483648/adjust", {"delta": 1, "reason": "restock"}, "admin"),
    ("POST", "/products", {"name": "Nul\u0000Scope", "price": "1.00"}, "admin"),
], ids=["product-id", "products-offset", "nul-in-search", "nul-in-name", "cart-id",
        "order-id", "orders-offset", "inventory-offset", "adjust-id", "nul-in-product"])
async def test_input_past_what_the_database_holds_is_a_422_and_opens_no_breaker(
        shop: ServedShop, method: str, path: str, body: dict[str, Any] | None,
        who: str) -> None:
    app = shop.gateway(rate_limit_per_ip=0, rate_limit_per_user=0)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://shop.test/api/v1") as client:
        headers = ({} if who == "anyone" else
                   await admin(client) if who == "admin" else await new_customer(client))
        # Past the breakers' threshold of failures, were they counted.
        for _ in range(6):
            answer = await client.request(method, path, json=body, headers=headers)
            problem = assert_problem(answer, 422, "validation-error")
            assert problem["errors"], problem
        breakers = app.state.gateway.clients.breakers
        assert {breakers.state(name) for name in ("identity", "catalog", "inventory",
                                                  "cart", "orders")} == {"closed"}
        assert (await client.get("/products/1")).status_code == 200
