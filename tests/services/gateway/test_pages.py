"""The storefront's pages with the real services behind them: identity, catalog,
inventory, cart, orders and payments, each served over real HTTP in a thread, on real
PostgreSQL, Valkey and NATS. The pages are asked the way a browser asks (over HTTPS, so
the Secure session cookie travels), and once in Chromium."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI

from kansoku.services.gateway.web.sessions import seal, unseal
from tests.browser import BrowserPage, served
from tests.services.shop import Infrastructure, ServedShop, serve_shop, tracing
from tests.tokens import TokenIssuer

HTML = {"Accept": "text/html,application/xhtml+xml"}
ADMIN = ("admin@example.com", "admin-pass-1234")
GOOD_CARD = "4111 1111 1111 1111"
DECLINED_CARD = "4000 0000 0000 7775"
#: The page's copy of its CSRF token.
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    """The services the storefront calls (the worker is not needed by it)."""
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "inventory", "cart", "payments", "orders"],
                          telemetry=tracing("orders")) as served:
        yield served


@pytest.fixture(scope="module")
async def gateway(shop: ServedShop) -> AsyncIterator[FastAPI]:
    """The gateway, asked in this test's event loop (its start-up and shutdown run, so
    its connections are closed at the end)."""
    app = shop.gateway()
    async with app.router.lifespan_context(app):
        yield app


class Browser:
    """An httpx client that behaves like a browser here: asks for HTML, keeps cookies
    (over https, so Secure ones travel), and follows nothing by itself."""

    def __init__(self, app: FastAPI) -> None:
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                        base_url="https://shop.test", headers=HTML)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, data: dict[str, Any], *, token_from: str | None = None
                   ) -> httpx.Response:
        """Post a form; with `token_from`, first open that page and send its CSRF token."""
        headers = {}
        if token_from is not None:
            data = {**data, "csrf_token": await self.csrf_token(token_from)}
            headers["Referer"] = f"{self.client.base_url}{token_from}"
        return await self.client.post(path, data=data, headers=headers)

    async def csrf_token(self, path: str) -> str:
        page = await self.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no form with a CSRF token on {path}: {page.status_code}"
        return found.group(1)

    async def register(self) -> str:
        email = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
        answer = await self.post("/register", {"name": "Sam Shopper", "email": email,
                                               "password": "shopper-pass-1"},
                                 token_from="/register")
        assert answer.status_code == 303, answer.text
        return email

    async def log_in(self, email: str, password: str) -> httpx.Response:
        return await self.post("/login", {"email": email, "password": password},
                               token_from="/login")


async def new_product(gateway: FastAPI, units: int, *, name: str | None = None
                      ) -> dict[str, Any]:
    """A product of our own (other test modules share the catalog), with `units` in stock,
    created by the admin through the public API."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                 base_url="http://gw") as client:
        tokens = (await client.post("/api/v1/auth/login", json={
            "email": ADMIN[0], "password": ADMIN[1]})).json()
        created = await client.post("/api/v1/products", headers={
            "Authorization": f"Bearer {tokens['access_token']}"}, json={
            "name": name or f"Test Comet Finder {uuid.uuid4().hex[:6]}",
            "description": "A wide-field scope for sweeping the sky.", "price": "129.50",
            "currency": "USD", "inventory": units, "category": "telescopes"})
    assert created.status_code == 201, created.text
    product: dict[str, Any] = created.json()
    return product


def field_error(page: str, field: str) -> str:
    """The error shown next to a form field (its `<p id="<field>-error">`)."""
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    assert found, f"no error next to {field}"
    return found.group(1)


def card_input(page: str) -> str:
    found = re.search(r'<input id="card_number"[^>]*>', page)
    assert found
    return re.sub(r"\s+", " ", found.group(0))


# --- browsing -------------------------------------------------------------------------

async def test_home_page_shows_featured_products_and_categories(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        home = await browser.get("/")
    assert home.status_code == 200
    assert home.text.count('class="card product"') == 24
    assert "Orion Refractor" in home.text
    assert 'href="/products?category=binoculars"' in home.text
    assert '<script src="/static/rum.js" defer></script>' in home.text
    assert "set-cookie" not in home.headers, "no form, no session: crawlers leave nothing"
    assert home.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in home.headers["content-security-policy"]


async def test_product_list_filters_searches_and_pages(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        binoculars = await browser.get("/products", params={"category": "binoculars"})
        second = await browser.get("/products", params={"category": "binoculars", "page": 2})
        found = await browser.get("/products", params={"q": "Dobsonian"})
        nothing = await browser.get("/products", params={"q": "zz-no-such-thing-zz"})
        bad_page = await browser.get("/products", params={"page": "first"})
    assert binoculars.status_code == 200
    assert "<h1>Binoculars</h1>" in binoculars.text
    assert binoculars.text.count('class="card product"') == 12
    grid = re.search(r'<ul class="grid".*?</ul>', binoculars.text, flags=re.S)
    assert grid and "Binoculars" in grid.group(0) and "Telescope" not in grid.group(0)
    assert 'rel="next"' in binoculars.text
    assert "Showing 13 to 24 of" in second.text and 'rel="prev"' in second.text
    assert "Dobsonian" in found.text and "matching “Dobsonian”" in found.text
    assert "No products match “zz-no-such-thing-zz”" in nothing.text
    assert bad_page.status_code == 422
    assert "text/html" in bad_page.headers["content-type"]
    assert "Traceback" not in bad_page.text


async def test_product_page_shows_picture_price_and_stock(shop: ServedShop, gateway: FastAPI
                                                          ) -> None:
    plenty, low, none = (await new_product(gateway, 40), await new_product(gateway, 2),
                         await new_product(gateway, 0))
    async with Browser(gateway) as browser:
        pages = [await browser.get(f"/products/{p['id']}") for p in (plenty, low, none)]
        missing = await browser.get("/products/999999999")
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert f'src="/api/v1/products/{plenty["id"]}/image?v=0"' in pages[0].text
    assert f'alt="{plenty["name"]}"' in pages[0].text
    assert "$129.50" in pages[0].text and "A wide-field scope" in pages[0].text
    assert "In stock" in pages[0].text and 'data-rum-action="add-to-cart"' in pages[0].text
    assert "Only 2 left" in pages[1].text
    assert "Out of stock" in pages[2].text and 'data-rum-action' not in pages[2].text
    assert missing.status_code == 404
    assert "Page not found" in missing.text and "There is no product" in missing.text


# --- accounts and sessions ------------------------------------------------------------

async def test_register_logs_in_with_a_secure_cookie(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        token = await browser.csrf_token("/register")
        answer = await browser.client.post("/register", data={
            "csrf_token": token, "name": "Ada", "email": f"ada-{uuid.uuid4().hex[:8]}@example.com",
            "password": "ada-pass-1234"})
        home = await browser.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("kansoku_session=")
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "ada-pass" not in cookie and "eyJ" not in cookie, "no password or token in it"
    assert "Welcome, Ada: your account is ready." in home.text
    assert "Log out" in home.text


async def test_registration_mistakes_are_shown_next_to_their_fields(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        email = await browser.register()
        other = Browser(gateway)
        taken = await other.post("/register", {"name": "Copy", "email": email,
                                               "password": "long-enough-1"},
                                 token_from="/register")
        short = await other.post("/register", {"name": "", "email": "not-an-address",
                                               "password": "short"}, token_from="/register")
        await other.__aexit__()
    assert taken.status_code == 422
    assert "exists already" in field_error(taken.text, "email")
    assert short.status_code == 422
    assert field_error(short.text, "name") == "Enter your name."
    assert "name@example.com" in field_error(short.text, "email")
    assert "at least 8 characters" in field_error(short.text, "password")
    assert 'value="short"' not in short.text, "a password is never shown back"


async def test_login_logout_and_going_back_where_you_were(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        email = await browser.register()
        await browser.post("/logout", {}, token_from="/")
        sent_to_login = await browser.get("/orders")
        wrong = await browser.log_in(email, "not-my-password")
        token = await browser.csrf_token("/login?next=/orders")
        right = await browser.client.post("/login", data={
            "csrf_token": token, "email": email, "password": "shopper-pass-1",
            "next": "/orders"})
        await browser.post("/logout", {}, token_from="/")
        evil = await browser.client.post("/login", data={
            "csrf_token": await browser.csrf_token("/login"), "email": email,
            "password": "shopper-pass-1", "next": "//evil.example/steal"})
    assert sent_to_login.status_code == 303
    assert sent_to_login.headers["location"] == "/login?next=/orders"
    assert wrong.status_code == 422
    assert field_error(wrong.text, "password") == "The e-mail address or password is wrong."
    assert f'value="{email}"' in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/orders"
    assert evil.headers["location"] == "/", "never sent to another site"


async def test_a_token_the_services_no_longer_accept_logs_the_session_out(
        shop: ServedShop, gateway: FastAPI) -> None:
    """The account's token is refused by the service a page calls (keys changed, account
    gone): the page sends the browser to log in again instead of showing the 401."""
    async with Browser(gateway) as browser, redis.from_url(shop.infra.valkey_url) as valkey:
        await browser.register()
        cookie = browser.client.cookies["kansoku_session"]
        key = "websession:" + hashlib.sha256(cookie.encode()).hexdigest()
        stored = json.loads(unseal(cookie, await valkey.get(key) or b"") or "{}")
        stored["access_token"] = TokenIssuer().token()  # signed by a key nobody knows
        await valkey.set(key, seal(cookie, json.dumps(stored)))
        refused = await browser.get("/cart")
        after = json.loads(unseal(cookie, await valkey.get(key) or b"") or "{}")
        again = await browser.get("/cart")
    assert refused.status_code == 303 and refused.headers["location"] == "/login"
    assert after["user_id"] is None and after["access_token"] is None
    assert again.headers["location"] == "/login?next=/cart", "now anonymous"


async def test_a_form_post_without_the_csrf_token_is_refused(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        await browser.register()
        forged = await browser.client.post("/cart/items", data={"product_id": "1",
                                                                "quantity": "1"})
        wrong = await browser.client.post("/cart/items", data={
            "product_id": "1", "quantity": "1", "csrf_token": "x" * 43})
        cart = await browser.get("/cart")
    for answer in (forged, wrong):
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert "This form has expired or was not sent by this site" in answer.text
    assert "Your cart is empty" in cart.text, "nothing was added"


async def test_a_customer_cannot_open_an_admin_page(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        anonymous = await browser.get("/admin")
        await browser.register()
        customer = await browser.get("/admin")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/admin/login?next=/admin"
    assert customer.status_code == 403
    assert customer.headers["content-type"].startswith("text/html")
    assert "Not allowed" in customer.text and "administrators" in customer.text


async def test_problem_pages_for_browsers_and_problem_json_for_the_api(gateway: FastAPI
                                                                        ) -> None:
    async with Browser(gateway) as browser:
        page = await browser.get("/no/such/page")
        api = await browser.get("/api/v1/no/such/thing")
        script = await browser.client.get("/no/such/page", headers={"Accept": "*/*"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1 id=\"problem-heading\">Page not found</h1>" in page.text
    assert page.headers["x-request-id"] in page.text
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert script.headers["content-type"] == "application/problem+json"


async def test_guessing_passwords_here_meets_the_apis_limit(shop: ServedShop) -> None:
    app = shop.gateway(rate_limit_per_ip=3)
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 4321)),
            base_url="https://shop.test", headers=HTML) as client:
        token = _CSRF.search((await client.get("/login")).text)
        assert token
        answers = []
        # Seven tries: even if a minute's window turns in between, one is refused.
        for attempt in range(7):
            answers.append(await client.post("/login", data={
                "csrf_token": token.group(1), "email": "admin@example.com",
                "password": f"guess-{attempt}"}))
            if answers[-1].status_code == 429:
                break
    assert [answer.status_code for answer in answers[:3]] == [422, 422, 422]
    limited = answers[-1]
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "Too many requests" in limited.text and "at most 3 a minute" in limited.text


# --- cart, checkout, orders -----------------------------------------------------------

async def add(browser: Browser, product_id: int, quantity: int) -> httpx.Response:
    return await browser.post("/cart/items", {"product_id": product_id, "quantity": quantity},
                              token_from=f"/products/{product_id}")


async def test_cart_add_change_and_remove(shop: ServedShop, gateway: FastAPI) -> None:
    first, second = await new_product(gateway, 10), await new_product(gateway, 5)
    async with Browser(gateway) as browser:
        anonymous = await add(browser, first["id"], 1)
        await browser.register()
        added = await add(browser, first["id"], 2)
        notice = await browser.get("/cart")
        await add(browser, second["id"], 1)
        cart = await browser.get("/cart")
        too_many = await add(browser, second["id"], 5)
        changed = await browser.post(f"/cart/items/{first['id']}", {"quantity": 3},
                                     token_from="/cart")
        removed = await browser.post(f"/cart/items/{second['id']}/remove", {},
                                     token_from="/cart")
        after = await browser.get("/cart")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
        "/login?next=/products/")
    assert added.status_code == 303 and added.headers["location"] == "/cart"
    assert f"Added 2 of {first['name']} to your cart." in notice.text
    assert f"Added 2 of {first['name']}" not in cart.text, "a notice shows once"
    assert "$388.50" in cart.text, "2 + 1 at $129.50"
    assert 'data-rum-action="checkout"' in cart.text
    assert too_many.status_code == 422
    assert field_error(too_many.text, "quantity") == (
        "Only 5 can be bought, and your cart holds 1 already: choose fewer.")
    assert changed.status_code == removed.status_code == 303
    assert first["name"] in after.text and second["name"] not in after.text
    assert 'value="3"' in after.text and "$388.50" in after.text


async def checkout_form(browser: Browser, card_number: str, **changes: str) -> dict[str, str]:
    page = await browser.get("/checkout")
    assert page.status_code == 200, page.text
    key = re.search(r'name="checkout_key" value="([0-9a-f]{32})"', page.text)
    assert key and 'data-rum-action="place-order"' in page.text
    token = _CSRF.search(page.text)
    assert token
    return {"csrf_token": token.group(1), "checkout_key": key.group(1),
            "street": "1 Observatory Road", "city": "Flagstaff", "state": "AZ", "zip": "86001",
            "country": "US", "card_number": card_number, "expiry_month": "12",
            "expiry_year": "2035", "cvv": "737", **changes}


async def test_checkout_bad_card_declined_card_then_an_order(shop: ServedShop, gateway: FastAPI
                                                             ) -> None:
    product = await new_product(gateway, 10)
    async with Browser(gateway) as browser:
        await browser.register()
        await add(browser, product["id"], 2)
        went = await browser.post("/cart/checkout", {}, token_from="/cart")
        assert went.status_code == 303 and went.headers["location"] == "/checkout"

        bad = await browser.client.post("/checkout", data=await checkout_form(
            browser, "4111 1111 1111 1112", zip=""))
        declined = await browser.client.post("/checkout", data=await checkout_form(
            browser, DECLINED_CARD))
        still_in_cart = await browser.get("/cart")
        paid = await browser.client.post("/checkout", data=await checkout_form(
            browser, GOOD_CARD))
        confirmation = await browser.get(paid.headers["location"])
        history = await browser.get("/orders")
        emptied = await browser.get("/cart")
        # The declined order's page says why it was cancelled in the reader's language.
        order_pages = [await browser.get(f"/orders/{order_id}", headers={
            "Accept-Language": language}) for order_id in dict.fromkeys(re.findall(
                r'href="/orders/([0-9a-f-]{36})"', history.text))
            for language in ("ja", "en")]

    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert field_error(bad.text, "card_number") == (
        "This card number is not valid: check the digits.")
    assert field_error(bad.text, "zip") == "Enter your ZIP or postcode."
    assert "4111 1111 1111 1112" not in bad.text and "737" not in bad.text
    assert 'value="Flagstaff"' in bad.text, "the address is kept"
    assert "Traceback" not in bad.text

    assert declined.status_code == 402
    assert field_error(declined.text, "card_number") == (
        "The payment was declined (insufficient funds). Nothing was charged: "
        "use another card.")
    assert card_input(declined.text) == card_input(bad.text) == (
        '<input id="card_number" name="card_number" type="text" required autocomplete="cc-number"'
        ' aria-describedby="card_number-error" aria-invalid="true" inputmode="numeric" '
        'maxlength="23" spellcheck="false">'), "the card number is never shown back"
    assert product["name"] in still_in_cart.text, "a declined card leaves the cart as it was"

    assert paid.status_code == 303
    assert re.fullmatch(r"/orders/[0-9a-f-]{36}/confirmation", paid.headers["location"])
    number = re.search(r"<strong data-order-number>(KS-\d+)</strong>", confirmation.text)
    assert number, confirmation.text
    assert "Payment received: VISA card ending 1111." in confirmation.text
    assert "Thank you for your order" in confirmation.text and "$259.00" in confirmation.text
    assert f'data-order-number="{number.group(1)}"' in history.text
    assert ">paid<" in history.text
    # Both link to the trace in which the order was placed.
    link = re.search(r'<a href="http://explorer.test/traces/([0-9a-f]{32})" target="_blank" '
                     r'rel="noopener" data-order-trace>Open its trace in the explorer</a>',
                     confirmation.text)
    assert link, confirmation.text
    assert (f'<a href="http://explorer.test/traces/{link.group(1)}" target="_blank" '
            f'rel="noopener" aria-label="Trace of {number.group(1)} in the explorer" '
            'data-order-trace>Open</a>') in history.text
    assert "Your cart is empty" in emptied.text
    whys = [re.search(r'class="status cancelled">[^<]*</span> \(([^)]*)\)', page.text)
            for page in order_pages]
    assert [why.group(1) for why in whys if why] == [
        "お支払いが承認されませんでした：残高不足",  # noqa: RUF001 - the catalog's own colon
        "the payment was declined: insufficient funds"]


async def test_another_customers_order_is_not_found(shop: ServedShop, gateway: FastAPI) -> None:
    product = await new_product(gateway, 5)
    async with Browser(gateway) as buyer, Browser(gateway) as other:
        await buyer.register()
        await add(buyer, product["id"], 1)
        paid = await buyer.client.post("/checkout", data=await checkout_form(buyer, GOOD_CARD))
        await other.register()
        peek = await other.get(paid.headers["location"])
        garbage = await other.get("/orders/not-an-order")
    assert peek.status_code == 404 and "You have no order" in peek.text
    assert garbage.status_code == 404


# --- in Chromium ----------------------------------------------------------------------

#: What every page must have, checked in the browser: landmarks, a visible label for
#: every form field, a text alternative (empty for decoration) for every picture, one h1.
_ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  for (const landmark of ["header", "nav", "main", "footer"]) {
    if (!document.querySelector(landmark)) problems.push(`no <${landmark}>`);
  }
  const shown = (label) => label.offsetWidth > 1 && label.offsetHeight > 1;
  for (const field of document.querySelectorAll("input:not([type=hidden]), select")) {
    if (![...field.labels].some(shown)) problems.push(`no visible label: ${field.name}`);
  }
  for (const image of document.querySelectorAll("img:not([alt])")) {
    problems.push(`no alt: ${image.src}`);
  }
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  return problems;
}"""


async def test_pages_work_in_chromium_with_keyboard_and_no_script_errors(
        shop: ServedShop, gateway: FastAPI, page: BrowserPage) -> None:
    product = await new_product(gateway, 8)
    async with served(shop.gateway()) as base_url:
        tab = page.page

        async def accessible(path: str) -> None:
            assert await tab.evaluate(_ACCESSIBILITY_PROBLEMS) == [], path

        await tab.goto(f"{base_url}/register")
        await accessible("/register")
        await tab.keyboard.press("Tab")
        assert await tab.evaluate("document.activeElement.textContent") == (
            "Skip to the content"), "the first Tab offers to skip to the content"
        await tab.get_by_label("Your name").fill("Kim Keyboard")
        await tab.get_by_label("E-mail address").fill(f"kim-{uuid.uuid4().hex[:8]}@example.com")
        await tab.get_by_label("Password").fill("kim-pass-1234")
        await tab.get_by_label("Password").press("Enter")
        await tab.wait_for_url(f"{base_url}/")
        await accessible("/")
        assert "Welcome, Kim Keyboard" in await tab.get_by_role("status").first.inner_text()
        cookies = await tab.context.cookies()
        session = next(c for c in cookies if c["name"] == "kansoku_session")
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"

        await tab.goto(f"{base_url}/products/{product['id']}")
        await accessible("/products/{id}")
        await tab.get_by_label("Quantity").fill("9")
        await tab.get_by_role("button", name="Add to cart").click()
        await tab.wait_for_load_state()
        assert "Only 8 can be bought" in await tab.locator("#quantity-error").inner_text()
        assert await tab.get_by_label("Quantity").get_attribute("aria-invalid") == "true"
        await page.screenshot("storefront_field_error")

        await tab.get_by_label("Quantity").fill("2")
        await tab.get_by_label("Quantity").press("Enter")  # the keyboard sends the form
        await tab.wait_for_url(f"{base_url}/cart")
        await accessible("/cart")
        await tab.get_by_role("button", name="Check out").press("Enter")
        await tab.wait_for_url(f"{base_url}/checkout")
        await accessible("/checkout")
        await tab.get_by_role("button", name=re.compile("^Place order")).click()
        await tab.wait_for_load_state()
        await accessible("/checkout with errors")
        assert await tab.get_by_role("alert").inner_text() != ""
        await page.screenshot("storefront_checkout_errors")
        assert page.errors == []


async def test_each_page_loads_well_under_100_kb_of_our_own_css_and_js(gateway: FastAPI
                                                                         ) -> None:
    async with Browser(gateway) as browser:
        for path in ("/login", "/", "/products", "/products/1", "/cart", "/orders", "/nowhere"):
            if path == "/":
                await browser.register()
            html = (await browser.get(path)).text
            assets = re.findall(r'<(?:link rel="stylesheet" href|script src)="(/static/[^"]+)"',
                                html)
            assert "/static/shop.css" in assets and "/static/rum.js" in assets, path
            sizes = [len((await browser.get(asset)).content) for asset in assets]
            assert sum(sizes) < 100 * 1024, (path, dict(zip(assets, sizes, strict=True)))
