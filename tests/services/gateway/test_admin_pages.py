"""The admin pages on real services: identity, catalog, inventory, cart, payments,
orders, the worker and the explorer each serve over real HTTP in a thread, on the real
PostgreSQL, Valkey and NATS; the gateway runs in the test, reached like a browser would
(HTML, cookies, forms with their CSRF token).

Who may open them (admins; customers get the 403 page, anonymous visitors the admin
login), forged form posts, every screen, the mistakes a form can come back with, and
which traces the dashboard counts as failures (real synthetic journeys, traced)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from PIL import Image
from playwright.async_api import ViewportSize

from kansoku.kit import events
from kansoku.kit.telemetry import Telemetry
from kansoku.loadgen.outcomes import FAILURE, SUCCESS
from kansoku.loadgen.synthetics import Monitor, RunResult
from kansoku.services.gateway.app import create_app as create_gateway
from kansoku.services.gateway.clients import ExplorerClient
from kansoku.services.gateway.settings import Settings as GatewaySettings
from tests.browser import BrowserPage, served
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import eventually, free_ports, serve_in_thread

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin-pass-1234"
SERVICE_SECRET = "admin-pages-test-secret"
#: Every admin screen a browser can open.
ADMIN_PAGES = ("/admin", "/admin/products", "/admin/products/new", "/admin/inventory",
               "/admin/inventory/1", "/admin/products/1", "/admin/products/1/delete",
               "/admin/mailbox", "/admin/dead-letters")


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    """What the admin pages call, with the explorer, and the cart and payments a
    synthetic checkout needs. The worker and orders show identity the service secret
    for their own tokens."""
    secret = {"service_secret": SERVICE_SECRET}
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["explorer", "identity", "catalog", "inventory", "cart",
                           "payments", "orders", "worker"],
                          settings={"identity": secret, "worker": secret,
                                    "orders": secret}) as served:
        yield served


class Browser:
    """Visits the gateway like a browser: asks for HTML, keeps the session cookie, and
    sends forms with the CSRF token of the page they were on."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, data: dict[str, Any] | None = None,
                   **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, data=data or {}, **kwargs)

    async def submit(self, page: str, action: str, data: dict[str, Any],
                     **kwargs: Any) -> httpx.Response:
        """Open `page`, then post its form to `action` with the page's CSRF token."""
        shown = await self.get(page)
        assert shown.status_code == 200, (page, shown.status_code, shown.text[:500])
        return await self.post(action, {**data, "csrf_token": csrf_token(shown.text)},
                               **kwargs)

    async def log_in(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD,
                     next_page: str = "/admin") -> httpx.Response:
        return await self.submit(f"/admin/login?next={next_page}", "/admin/login",
                                 {"email": email, "password": password, "next": next_page})


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


@contextlib.asynccontextmanager
async def browsing(app: FastAPI) -> AsyncIterator[Browser]:
    # https: the session cookie is Secure, and a browser sends it only over https (or to
    # localhost); ASGITransport does not care about the scheme.
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="https://shop.test", timeout=30,
                                  headers={"Accept": "text/html"}) as client):
        yield Browser(client)


@pytest.fixture(scope="module")
async def gateway(shop: ServedShop) -> AsyncIterator[FastAPI]:
    app = shop.gateway()
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def visitor(gateway: FastAPI) -> AsyncIterator[Browser]:
    """A new browser, nobody logged in."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                 base_url="https://shop.test", timeout=30,
                                 headers={"Accept": "text/html"}) as client:
        yield Browser(client)


@pytest.fixture
async def admin(visitor: Browser) -> Browser:
    """A browser with the demo admin logged in."""
    answer = await visitor.log_in()
    assert answer.status_code == 303, answer.text[:500]
    return visitor


async def new_customer(browser: Browser) -> tuple[str, str]:
    email, password = f"shopper-{uuid.uuid4().hex[:10]}@example.com", "shopper-pass-1234"
    created = await browser.client.post("/api/v1/users", headers={"Accept": "application/json"},
                                        json={"name": "Shopper", "email": email,
                                              "password": password})
    assert created.status_code == 201, created.text
    return email, password


def png(colour: str = "teal", size: tuple[int, int] = (640, 480)) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", size, colour).save(output, format="PNG")
    return output.getvalue()


def product_form(**changes: str) -> dict[str, str]:
    return {"name": f"Star chart {uuid.uuid4().hex[:8]}", "description": "Glows in the dark.",
            "price": "24.50", "currency": "USD", "category": "", "sku": "",
            "inventory": "5", **changes}


async def create_product(admin: Browser, picture: bytes | None = None, **changes: str
                         ) -> tuple[int, httpx.Response]:
    files = {"image": ("chart.png", picture, "image/png")} if picture else None
    created = await admin.submit("/admin/products/new", "/admin/products/new",
                                 product_form(**changes), files=files)
    assert created.status_code == 303, created.text[:2000]
    found = re.fullmatch(r"/admin/products/(\d+)", created.headers["location"])
    assert found, created.headers["location"]
    return int(found.group(1)), created


def field_error(html: str, field: str) -> str:
    """The error shown next to a form field (empty if none)."""
    found = re.search(rf'<p class="error" id="f-{field}-error">([^<]*)</p>', html)
    return unescape(found.group(1)) if found else ""


# --- who may open the admin pages -----------------------------------------------------

async def test_anonymous_visitors_are_sent_to_the_admin_login_and_back(visitor: Browser
                                                                       ) -> None:
    for path in ADMIN_PAGES:
        answer = await visitor.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/admin/login?next={path}"
    login = await visitor.get("/admin/login?next=/admin/inventory")
    assert login.status_code == 200
    assert "<h1>Admin login</h1>" in login.text
    assert re.search(r'<label for="f-email">E-mail address</label>', login.text)
    assert re.search(r'<label for="f-password">Password</label>', login.text)
    assert 'value="/admin/inventory"' in login.text

    logged_in = await visitor.log_in(next_page="/admin/inventory")
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/admin/inventory"
    cookie = logged_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert "access_token" not in cookie and "eyJ" not in cookie, "tokens stay on the server"
    inventory = await visitor.get("/admin/inventory")
    assert inventory.status_code == 200 and "<h1>Inventory</h1>" in inventory.text
    assert "Logged in as admin@example.com." in inventory.text
    assert 'aria-current="page">Inventory</a>' in inventory.text


async def test_the_login_form_says_what_is_wrong(visitor: Browser) -> None:
    empty = await visitor.submit("/admin/login", "/admin/login", {"email": "", "password": ""})
    assert empty.status_code == 422
    assert field_error(empty.text, "email") == "Enter your e-mail address."
    assert field_error(empty.text, "password") == "Enter your password."
    wrong = await visitor.submit("/admin/login", "/admin/login",
                                 {"email": ADMIN_EMAIL, "password": "not-the-password"})
    assert wrong.status_code == 401
    assert "The e-mail address or password is wrong." in wrong.text
    assert "not-the-password" not in wrong.text, "a password is never shown back"
    assert f'value="{ADMIN_EMAIL}"' in wrong.text, "the address is kept"


async def test_login_never_sends_the_admin_to_another_site(visitor: Browser) -> None:
    answer = await visitor.log_in(next_page="https://evil.example/admin")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin"


async def test_a_customer_gets_the_403_page(visitor: Browser, shop: ServedShop) -> None:
    email, password = await new_customer(visitor)
    refused = await visitor.log_in(email, password)
    assert refused.status_code == 403
    assert "is a customer account: it cannot open the admin pages" in refused.text
    for path in ADMIN_PAGES:
        answer = await visitor.get(path)
        assert answer.status_code == 403, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "This page is for the shop's administrators" in unescape(answer.text)
        assert "Traceback" not in answer.text
    # Nor can a customer's form post do what an admin's would, CSRF token or not.
    async with httpx.AsyncClient() as plain:
        before = (await plain.get(f"{shop.urls['inventory']}/stock/1")).json()
        shown = await visitor.get("/admin/login")
        posted = await visitor.post("/admin/inventory/1", {
            "delta": "100", "reason": "free stock", "csrf_token": csrf_token(shown.text)})
        after = (await plain.get(f"{shop.urls['inventory']}/stock/1")).json()
    assert posted.status_code == 403
    assert after["on_hand"] == before["on_hand"], "the stock did not change"


async def test_a_forged_form_post_is_refused(admin: Browser) -> None:
    name = f"Forged {uuid.uuid4().hex[:8]}"
    without = await admin.post("/admin/products/new", product_form(name=name))
    wrong = await admin.post("/admin/products/new", {**product_form(name=name),
                                                     "csrf_token": "not-the-token"})
    for answer in (without, wrong):
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert "This form has expired or was not sent by this site" in answer.text
    products = await admin.get("/admin/products", params={"q": name})
    assert f"No products match “{name}”." in products.text, "nothing was created"
    replay = await admin.post("/admin/dead-letters/1/replay")
    assert replay.status_code == 403


# --- products -------------------------------------------------------------------------

async def test_a_new_product_with_a_picture_gets_its_thumbnail_and_stock(
    admin: Browser, shop: ServedShop,
) -> None:
    product_id, _ = await create_product(admin, png(), name="Planisphere deluxe",
                                         category="books", inventory="4")
    page = await admin.get(f"/admin/products/{product_id}")
    assert page.status_code == 200
    assert "“Planisphere deluxe” was created with 4 in stock. Its thumbnail is being made." \
        in page.text
    assert '<img src="/api/v1/products/' in page.text and 'alt="Planisphere deluxe"' in page.text

    async def thumbnail_made() -> bool:
        shown = await admin.get(f"/admin/products/{product_id}")
        return 'data-testid="thumbnail"' in shown.text

    await eventually(thumbnail_made, 30, "the worker's thumbnail on the product page")
    shown = await admin.get(f"/admin/products/{product_id}")
    thumbnail = re.search(r'<img src="([^"]+)" alt="Thumbnail of Planisphere deluxe"',
                          shown.text)
    assert thumbnail, shown.text
    picture = await admin.get(thumbnail.group(1).replace("&amp;", "&"))
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/webp"
    assert '<span data-testid="available">4</span>' in shown.text

    restocked = await admin.submit(f"/admin/inventory/{product_id}",
                                   f"/admin/inventory/{product_id}",
                                   {"delta": "+20", "reason": "restock from supplier"})
    assert restocked.status_code == 303
    assert restocked.headers["location"] == f"/admin/inventory/{product_id}"
    level = await admin.get(f"/admin/inventory/{product_id}")
    assert "Added 20 (“restock from supplier”): 24 available now." in level.text
    assert '<dd data-testid="available">24</dd>' in level.text
    history = re.findall(r"<td class=\"num\">([+-]\d+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>",
                         level.text)
    assert history[:2] == [("+20", "restock from supplier", "you"),
                           ("+4", "initial stock", "you")], "the history, newest first"
    public = await admin.client.get(f"/api/v1/products/{product_id}",
                                    headers={"Accept": "application/json"})
    assert public.json()["stock"] == 24 and public.json()["category"]["slug"] == "books"


async def test_new_product_mistakes_are_shown_next_to_their_fields(admin: Browser) -> None:
    answer = await admin.submit(
        "/admin/products/new", "/admin/products/new",
        product_form(name="", price="cheap", currency="dollars", inventory="-1",
                     description="Kept as typed"),
        files={"image": ("notes.txt", b"not a picture at all", "text/plain")})
    assert answer.status_code == 422
    html = answer.text
    assert field_error(html, "name") == "Enter the product's name (at most 200 characters)."
    assert field_error(html, "price").startswith("Enter a price above 0")
    assert field_error(html, "currency").startswith("Enter a currency as three capital")
    assert field_error(html, "inventory").startswith("Enter the units in stock")
    assert field_error(html, "image") == "This file is not a PNG, JPEG, WebP or GIF picture."
    assert 'aria-invalid="true"' in html and 'role="alert"' in html
    assert "Kept as typed" in html and 'value="cheap"' in html
    assert "Traceback" not in html and "validation" not in html.lower()

    taken = await admin.submit("/admin/products/new", "/admin/products/new",
                               product_form(sku="TEL-101"))  # a demo product's SKU
    assert taken.status_code == 409
    assert field_error(taken.text, "sku") == "Another product has the SKU TEL-101."


async def test_products_are_searched_edited_and_deleted(admin: Browser) -> None:
    word = uuid.uuid4().hex[:10]
    product_id, _ = await create_product(admin, name=f"Moon globe {word}")
    found = await admin.get("/admin/products", params={"q": word})
    assert f"Moon globe {word}" in found.text and "of 1, newest first" in found.text
    everything = await admin.get("/admin/products")
    assert "of " in everything.text and 'rel="next"' in everything.text, "pages of 25"

    saved = await admin.submit(f"/admin/products/{product_id}", f"/admin/products/{product_id}",
                               product_form(name=f"Moon globe {word}", price="31.00",
                                            category="accessories"))
    assert saved.status_code == 303
    page = await admin.get(f"/admin/products/{product_id}")
    assert "Your changes were saved." in page.text and 'value="31.00"' in page.text
    bad = await admin.submit(f"/admin/products/{product_id}", f"/admin/products/{product_id}",
                             product_form(name=f"Moon globe {word}", price="0"))
    assert bad.status_code == 422 and field_error(bad.text, "price")

    confirm = await admin.get(f"/admin/products/{product_id}/delete")
    assert f"Delete “Moon globe {word}”?" in confirm.text and "cannot be undone" in confirm.text
    deleted = await admin.submit(f"/admin/products/{product_id}/delete",
                                 f"/admin/products/{product_id}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/admin/products"
    assert f"“Moon globe {word}” was deleted." in (await admin.get("/admin/products")).text
    gone = await admin.get(f"/admin/products/{product_id}")
    assert gone.status_code == 404 and "Page not found" in gone.text
    assert f"There is no product {product_id}" in gone.text


async def test_a_picture_is_replaced_and_checked(admin: Browser) -> None:
    product_id, _ = await create_product(admin)
    none_chosen = await admin.submit(f"/admin/products/{product_id}",
                                     f"/admin/products/{product_id}/image", {})
    assert none_chosen.status_code == 422
    assert field_error(none_chosen.text, "image") == "Choose a picture to upload."
    uploaded = await admin.submit(f"/admin/products/{product_id}",
                                  f"/admin/products/{product_id}/image", {},
                                  files={"image": ("red.png", png("red"), "image/png")})
    assert uploaded.status_code == 303
    page = await admin.get(f"/admin/products/{product_id}")
    assert "The new picture was uploaded." in page.text and "Uploaded image" in page.text


# --- inventory ------------------------------------------------------------------------

async def test_inventory_highlights_low_stock_and_adjusts_with_a_reason(admin: Browser
                                                                        ) -> None:
    low = await admin.get("/admin/inventory", params={"low": "1"})
    assert low.status_code == 200
    rows = re.findall(r'<tr data-product-id="(\d+)" class="(low|out)">', low.text)
    assert rows, "the demo stock has low and sold-out products"
    assert {kind for _, kind in rows} == {"low", "out"}
    assert '<span class="badge out">sold out</span>' in low.text
    everything = await admin.get("/admin/inventory")
    assert re.search(r'<tr data-product-id="1">', everything.text), "in stock: no highlight"

    product_id, _ = await create_product(admin, inventory="3")
    mistakes = await admin.submit(f"/admin/inventory/{product_id}",
                                  f"/admin/inventory/{product_id}",
                                  {"delta": "0", "reason": ""})
    assert mistakes.status_code == 422
    assert field_error(mistakes.text, "delta").startswith("Enter a whole number of units")
    assert field_error(mistakes.text, "reason").startswith("Say why")
    too_many = await admin.submit(f"/admin/inventory/{product_id}",
                                  f"/admin/inventory/{product_id}",
                                  {"delta": "-5", "reason": "damaged"})
    assert too_many.status_code == 409
    assert "stock cannot go below zero" in field_error(too_many.text, "delta")
    removed = await admin.submit(f"/admin/inventory/{product_id}",
                                 f"/admin/inventory/{product_id}",
                                 {"delta": "-3", "reason": "damaged"})
    assert removed.status_code == 303
    page = await admin.get(f"/admin/inventory/{product_id}")
    assert "Removed 3 (“damaged”): 0 available now." in page.text
    assert 'class="levels out"' in page.text


# --- dashboard ------------------------------------------------------------------------

async def _write_orders(postgres_url: str, *orders: tuple[str, str, str, str | None]
                        | tuple[str, str, str, str | None, str, str | None]) -> None:
    """Orders placed just now, as the checkout leaves them: (status, total, currency,
    cancel reason[, its code, payments' decline code]); without codes, as orders
    cancelled before codes were kept."""
    connection = await asyncpg.connect(postgres_url)
    try:
        for status, total, currency, reason, *codes in orders:
            code, decline = codes or (None, None)
            await connection.execute(
                "INSERT INTO orders.orders (id, number, user_id, status, total, currency, "
                "shipping_address, cancel_reason, cancel_reason_code, decline_reason) "
                "VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $8, $9)",
                uuid.uuid4(), f"T-{uuid.uuid4().hex[:12]}", "someone", status,
                Decimal(total), currency, reason, code, decline)
    finally:
        await connection.close()


def _export_failed_trace(explorer_url: str) -> str:
    """A checkout that failed in payments, as the gateway and payments export it."""
    def provider(service_name: str) -> TracerProvider:
        made = TracerProvider(resource=Resource.create({"service.name": service_name}))
        made.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{explorer_url}/v1/traces")))
        return made

    gateway, payments = provider("gateway"), provider("payments")
    with gateway.get_tracer("test").start_as_current_span(
            "POST /api/v1/payments", kind=SpanKind.SERVER) as root:
        with payments.get_tracer("test").start_as_current_span(
                "POST /charges", kind=SpanKind.SERVER) as charge:
            charge.set_status(Status(StatusCode.ERROR, "card processor timed out"))
        root.set_status(Status(StatusCode.ERROR, "HTTP 503"))
    gateway.shutdown()
    payments.shutdown()
    return format(root.get_span_context().trace_id, "032x")


async def test_the_dashboard_shows_today_low_stock_and_failures(
    admin: Browser, shop: ServedShop, postgres_url: str,
) -> None:
    currency = "CHF"  # no other test sells in francs
    await _write_orders(postgres_url, ("paid", "12.30", currency, None),
                        ("paid", "7.70", currency, None),
                        ("cancelled", "99.00", currency, "payment declined: stolen_card"),
                        ("cancelled", "5.00", currency, "payments were unavailable",
                         "payments-unavailable", None))
    trace_id = await asyncio.to_thread(_export_failed_trace, shop.urls["explorer"])

    page = await admin.get("/admin")

    assert page.status_code == 200
    html = page.text
    assert "<h1>Dashboard</h1>" in html
    assert f'<span class="number" data-testid="revenue-{currency}">20.00</span>' in html
    orders = int(re.search(r'data-testid="orders-today">(\d+)<', html).group(1))  # type: ignore[union-attr]
    assert orders >= 3
    # An order cancelled before codes were kept: its English reason, as it was kept.
    assert "payment declined: stolen_card" in html
    assert "payments were unavailable just then" in html
    in_japanese = (await admin.get("/admin", headers={"Accept-Language": "ja"})).text
    assert "その時点で決済サービスを利用できませんでした" in in_japanese
    assert "payments were unavailable" not in in_japanese
    assert "payment declined: stolen_card" in in_japanese
    assert "Low on stock" in html and 'href="/admin/inventory?low=1"' in html
    assert f'href="{shop.urls["explorer"]}/traces/{trace_id}"' in html
    assert "card processor timed out" in html and ">payments<" in html
    assert f'{shop.urls["explorer"]}/traces?service=gateway&amp;error=true' in html
    assert re.search(r'data-testid="dead-letters">\d+\+?<', html)


async def test_the_dashboard_says_when_the_explorer_or_a_service_is_away(shop: ServedShop
                                                                         ) -> None:
    (closed,) = free_ports(1)
    app = shop.gateway(explorer_url=f"http://127.0.0.1:{closed}",
                       orders_url=f"http://127.0.0.1:{closed}")
    async with browsing(app) as browser:
        assert (await browser.log_in()).status_code == 303
        page = await browser.get("/admin")
    assert page.status_code == 200, "the rest of the dashboard is still shown"
    assert "The explorer cannot be asked right now" in page.text
    assert f"the explorer at http://127.0.0.1:{closed} did not answer" in page.text
    assert ("Today's orders cannot be shown right now: The orders service is unavailable "
            "right now (cannot connect") in unescape(page.text)
    assert "Low on stock" in page.text


async def test_recent_failures_come_from_the_jaeger_api(shop: ServedShop) -> None:
    trace_id = await asyncio.to_thread(_export_failed_trace, shop.urls["explorer"])
    failures = await ExplorerClient(shop.urls["explorer"]).recent_failures()
    assert failures.unavailable is None
    mine = next(failed for failed in failures.traces if failed.trace_id == trace_id)
    assert mine.operation == "POST /api/v1/payments" and mine.service == "payments"
    assert mine.message == "card processor timed out"
    assert mine.url == f"{shop.urls['explorer']}/traces/{trace_id}"
    assert abs((datetime.now(UTC) - mine.started_at).total_seconds()) < 120
    refused = await ExplorerClient(shop.urls["identity"]).recent_failures()  # not a trace backend
    assert refused.traces == [] and refused.unavailable == "the explorer answered HTTP 404"


def _traced(explorer_url: str, service: str) -> Telemetry:
    """Telemetry whose spans go to the explorer as each one ends."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=f"{explorer_url}/v1/traces")))
    return Telemetry(service, tracer_provider=provider)


async def _error_trace_ids(explorer_url: str) -> set[str]:
    """The traces through the gateway that hold a span with error status."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{explorer_url}/api/traces", params={
            "service": "gateway", "tags": json.dumps({"error": "true"}), "limit": 100})
    return {trace["traceID"] for trace in answer.raise_for_status().json()["data"]}


async def test_a_synthetic_journey_that_expected_a_401_is_not_a_failure(
    admin: Browser, shop: ServedShop,
) -> None:
    """The synthetic checkout tries to log in first and, as its account does not exist
    yet, registers it on the 401: its client span and the gateway's call to identity
    are errors by the HTTP conventions, but nothing in the shop failed. The same journey
    through a gateway whose cart is away fails for real (the gateway answers 503): that
    one is listed, with the cart as what went wrong, not the login."""
    explorer = shop.urls["explorer"]

    async def journey(**gateway_settings: Any) -> RunResult:
        app = create_gateway(shop.gateway_settings(**gateway_settings),
                             _traced(explorer, "gateway"))
        with serve_in_thread(app, lifespan="on") as gateway_url:
            return await Monitor(gateway_url, _traced(explorer, "synthetics"),
                                 service_secret=None).run("checkout")

    succeeded = await journey()
    failed = await journey(cart_url=shop.away)
    assert (succeeded.outcome, succeeded.error) == (SUCCESS, None)
    assert (failed.outcome, failed.step) == (FAILURE, "add to cart"), failed.error
    assert succeeded.trace_id and failed.trace_id

    async def both_have_errors() -> bool:
        return {succeeded.trace_id, failed.trace_id} <= await _error_trace_ids(explorer)
    await eventually(both_have_errors, 10, "both journeys' error spans reach the explorer")

    failures = await ExplorerClient(explorer).recent_failures()
    listed = {trace.trace_id: trace for trace in failures.traces}
    assert succeeded.trace_id not in listed
    shown = listed[failed.trace_id]
    assert (shown.operation, shown.service) == ("synthetic checkout", "gateway")
    assert shown.message.startswith("ConnectError"), shown.message
    page = (await admin.get("/admin")).text
    assert f"/traces/{failed.trace_id}" in page and f"/traces/{succeeded.trace_id}" not in page


async def test_recent_failures_link_where_the_browser_finds_the_explorer(
    shop: ServedShop,
) -> None:
    """In containers the gateway asks http://explorer:8800, which no browser reaches:
    the links go to the public address (KANSOKU_GATEWAY_EXPLORER_PUBLIC_URL)."""
    trace_id = await asyncio.to_thread(_export_failed_trace, shop.urls["explorer"])
    failures = await ExplorerClient(shop.urls["explorer"], public_url="http://shop.example:8800/"
                                    ).recent_failures()
    mine = next(failed for failed in failures.traces if failed.trace_id == trace_id)
    assert mine.url == f"http://shop.example:8800/traces/{trace_id}"
    assert failures.search_url.startswith("http://shop.example:8800/traces?")
    assert GatewaySettings(explorer_url="http://explorer:8800",
                           explorer_public_url="http://127.0.0.1:8800").explorer_link_url \
        == "http://127.0.0.1:8800"
    assert GatewaySettings(explorer_url="http://explorer:8800").explorer_link_url \
        == "http://explorer:8800"


async def test_the_public_api_additions(visitor: Browser) -> None:
    api = {"Accept": "application/json"}
    login = await visitor.client.post("/api/v1/auth/login", headers=api, json={
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    admin = {**api, "Authorization": f"Bearer {login.json()['access_token']}"}
    today = await visitor.client.get("/api/v1/admin/sales", headers=admin)
    assert today.status_code == 200, today.text
    assert today.json()["since"].endswith("T00:00:00Z")
    assert set(today.json()) >= {"orders", "paid", "pending_payment", "cancelled",
                                 "revenue", "recent_cancellations"}
    since = await visitor.client.get("/api/v1/admin/sales", headers=admin,
                                     params={"since": "2090-01-01T00:00:00+09:00"})
    assert since.json()["since"] == "2089-12-31T15:00:00Z" and since.json()["orders"] == 0
    # The public API's product creation shares the pages' logic: stock set, or a problem.
    laptop = {"name": "Premium Laptop", "price": "1299.99", "inventory": 7}
    created = await visitor.client.post("/api/v1/products", headers=admin, json=laptop)
    assert created.status_code == 201, created.text
    assert (created.json()["stock"], created.json()["stock_status"]) == (7, "in_stock")
    taken = await visitor.client.post("/api/v1/products", headers=admin,
                                      json={**laptop, "sku": created.json()["sku"]})
    assert taken.status_code == 409 and taken.json()["field"] == "sku"
    assert taken.headers["content-type"] == "application/problem+json"

    email, password = await new_customer(visitor)
    customer = await visitor.client.post("/api/v1/auth/login", headers=api, json={
        "email": email, "password": password})
    refused = await visitor.client.get("/api/v1/admin/sales", headers={
        **api, "Authorization": f"Bearer {customer.json()['access_token']}"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"


# --- mailbox and dead letters ---------------------------------------------------------

async def test_a_dead_letter_is_replayed_and_its_email_reaches_the_mailbox(
    admin: Browser, nats_url: str,
) -> None:
    number = f"KS-T{uuid.uuid4().hex[:6].upper()}"
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    payload = {"order_id": str(uuid.uuid4()), "number": number, "status": "paid",
               "user_id": "u-1", "email": email, "name": "Buyer", "total": "10.00",
               "currency": "USD", "items": [{"product_id": 1, "name": "Telescope",
                                             "quantity": 1, "unit_price": "10.00"}]}
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        await events.ensure_streams(js)
        event_id = str(uuid.uuid4())
        await js.publish(f"{events.DEAD_LETTER_PREFIX}.order.paid",
                         json.dumps(payload).encode(), headers={
                             events.ORIGINAL_SUBJECT_HEADER: "order.paid",
                             events.CONSUMER_HEADER: "order-confirmation",
                             events.ERROR_HEADER: "SMTPServerDisconnected: gone",
                             events.EVENT_ID_HEADER: event_id,
                             events.MESSAGE_ID_HEADER: event_id})
    finally:
        await connection.close()

    listed = await admin.get("/admin/dead-letters")
    assert listed.status_code == 200
    sequence = re.search(rf'data-sequence="(\d+)">\s*<div class="dl-head">\s*<h2>order.paid'
                         rf'[^<]*<span class="muted">#\d+</span></h2>.*?{event_id}',
                         listed.text, re.S)
    assert sequence, listed.text
    assert "SMTPServerDisconnected: gone" in listed.text and "order-confirmation" in listed.text
    replayed = await admin.submit("/admin/dead-letters",
                                  f"/admin/dead-letters/{sequence.group(1)}/replay", {})
    assert replayed.status_code == 303
    after = await admin.get("/admin/dead-letters")
    assert f"Dead letter {sequence.group(1)} was delivered again to order.paid." in after.text
    assert event_id not in after.text
    again = await admin.submit("/admin/dead-letters",
                               f"/admin/dead-letters/{sequence.group(1)}/replay", {})
    assert again.status_code == 404, "replayed already"
    assert f"There is no dead letter {sequence.group(1)}: it may have been replayed" in again.text

    async def mailed() -> bool:
        return number in (await admin.get("/admin/mailbox")).text

    await eventually(mailed, 20, f"the confirmation of {number} in the mailbox")
    mailbox = (await admin.get("/admin/mailbox")).text
    assert f"to {email}" in mailbox and "<h1>Mailbox</h1>" in mailbox


# --- the pages themselves -------------------------------------------------------------

async def test_every_admin_page_is_well_formed(admin: Browser) -> None:
    """Landmarks, one h1, a label for every field, the admin nav, and no inline script
    or style (the pages' CSP forbids them)."""
    for path in ADMIN_PAGES:
        page = await admin.get(path)
        assert page.status_code == 200, path
        html = page.text
        assert html.count("<h1") == 1, path
        for landmark in ("<header", "<nav", "<main", "<footer"):
            assert landmark in html, (path, landmark)
        assert 'aria-label="Admin"' in html, path
        assert '<script src="/static/admin.js" defer></script>' in html, path
        assert "<script>" not in html and " style=" not in html, path
        for field_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="(f-[^"]+)"', html):
            assert f'for="{field_id}"' in html, (path, field_id)
        assert "content-security-policy" in page.headers, path


# --- in a real browser ----------------------------------------------------------------

async def test_the_admin_pages_in_chromium(shop: ServedShop, page: BrowserPage) -> None:
    """Each screen in Chromium, wide and phone-sized: no JavaScript error, nothing wider
    than the screen, and after a form with mistakes the keyboard starts at their list.
    Screenshots: test-artifacts/screenshots/admin-page-*.png."""
    browser = page.page
    async with served(shop.gateway()) as gateway:
        await browser.goto(f"{gateway}/admin/login")
        await browser.get_by_label("E-mail address").fill(ADMIN_EMAIL)
        await browser.get_by_label("Password").fill(ADMIN_PASSWORD)
        await browser.get_by_role("button", name="Log in").click()
        await browser.wait_for_url(f"{gateway}/admin")

        await browser.goto(f"{gateway}/admin/products/new")
        await browser.get_by_label("Price").fill("free")
        await browser.get_by_role("button", name="Create the product").click()
        summary = browser.locator(".error-summary")
        await summary.wait_for()
        assert await summary.evaluate("element => element === document.activeElement"), \
            "focus moves to the list of mistakes"
        await browser.get_by_role("link", name="Name").click()  # the summary links to it
        assert await browser.evaluate("document.activeElement.id") == "f-name"
        await page.screenshot("admin-page-new-product-mistakes")

        screens = {"dashboard": "/admin", "products": "/admin/products?q=Orion",
                   "product": "/admin/products/7", "delete": "/admin/products/7/delete",
                   "inventory": "/admin/inventory?low=1", "stock": "/admin/inventory/7",
                   "mailbox": "/admin/mailbox", "dead-letters": "/admin/dead-letters"}
        viewports: tuple[tuple[str, ViewportSize], ...] = (
            ("wide", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844}))
        for size, viewport in viewports:
            await browser.set_viewport_size(viewport)
            for name, path in screens.items():
                answer = await browser.goto(f"{gateway}{path}")
                assert answer is not None and answer.status == 200, path
                # The whole page: a wide table scrolls in its own box, and nothing
                # (not even a visually-hidden text in it) may widen the page.
                overflow = await browser.evaluate(
                    "() => document.documentElement.scrollWidth"
                    " - document.documentElement.clientWidth")
                assert overflow <= 1, f"{path} is wider than a {size} screen"
                await page.screenshot(f"admin-page-{name}-{size}")
        await browser.goto("about:blank")
    assert page.errors == [], "no JavaScript error, nothing logged as an error"
