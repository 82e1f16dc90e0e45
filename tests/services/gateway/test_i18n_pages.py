"""The shop's pages in two languages (issue 23): no template holds text outside the
translation catalogs; a page asked for in Japanese is Japanese; the language switch on
every page keeps the reader's choice in a cookie that beats the browser's header; money
and dates are written as the reader's language writes them; products are named, and a
service's refusal (a problem's detail) explained, in the reader's language. In
Chromium, every storefront, admin and lab page in Japanese, at a laptop's width and a
phone's, fits the screen and has no empty button, link or heading (screenshots in
test-artifacts/screenshots/ja-<page>-<width>.png)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jinja2 import nodes

from kansoku.kit import i18n
from kansoku.kit.i18n import Language
from kansoku.services.gateway.web import rendering
from tests.browser import BrowserPage, served
from tests.services.gateway.test_pages import ADMIN, GOOD_CARD, Browser, add, checkout_form
from tests.services.shop import Infrastructure, ServedShop, serve_shop, tracing

#: Words a template may hold as they are: the shop's name, and units and codes that read
#: the same in both languages.
AS_THEY_ARE = {"kansoku", "shop", "観測", "HTTP", "SQLSTATE", "ms", "UTC"}
#: Attributes whose values a person reads (or hears): they must be translated too.
READ_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")
_TAG = re.compile(r"<[^>]*>", re.S)
_READ_ATTRIBUTE = re.compile(rf'\b(?:{"|".join(READ_ATTRIBUTES)})="([^"]*)"')
_ATTRIBUTE = re.compile(r'[\w-]+="[^"]*"')
_LETTERS = re.compile(r"[^\W\d_]+")
#: Where an expression ({{ … }}, a tag's value) stood: no letters, so nothing to find.
_EXPRESSION = "\x00"


def _text_outside_the_catalogs(source: str) -> set[str]:
    """The words a template writes as they are: its text between tags (outside
    `{% trans %}`, which the parser turns into gettext calls), plus the values of the
    attributes people read; tags, comments and expressions left out."""
    tree = rendering.templates.env.parse(source)
    pieces = []
    for node in tree.find_all((nodes.TemplateData, nodes.Expr)):
        pieces.append(node.data if isinstance(node, nodes.TemplateData) else _EXPRESSION)
    text = re.sub(r"<!--.*?-->", "", "".join(pieces), flags=re.S)
    read = " ".join(value for tag in _TAG.findall(text)
                    for value in _READ_ATTRIBUTE.findall(tag))
    between = _TAG.sub(" ", text)
    # A macro that writes attributes (` aria-invalid="true"`) is markup, not text; one
    # that writes an attribute people read is checked like a tag's.
    read += " " + " ".join(_READ_ATTRIBUTE.findall(between))
    between = _ATTRIBUTE.sub(" ", between)
    words = _LETTERS.findall(between + " " + re.sub(r"&\w+;", " ", read))
    return {word for word in words if word not in AS_THEY_ARE}


def test_no_template_holds_text_outside_the_catalogs() -> None:
    found = {}
    for path in sorted(rendering.TEMPLATES_DIR.rglob("*.html")):
        words = _text_outside_the_catalogs(path.read_text())
        if words:
            found[str(path.relative_to(rendering.TEMPLATES_DIR))] = sorted(words)
    assert not found, f"text outside {{% trans %}} or _(): {found}"


def test_the_check_finds_text_between_tags_and_in_attributes_people_read() -> None:
    assert _text_outside_the_catalogs('<p class="x">Hello {{ name }}</p>') == {"Hello"}
    assert _text_outside_the_catalogs('<img src="a.png" alt="A comet">') == {"A", "comet"}
    assert _text_outside_the_catalogs('<input placeholder="{{ _("Find") }}">') == set()
    assert _text_outside_the_catalogs("<p>{% trans %}Hello {{ n }}{% endtrans %}</p>"
                                      ) == set()
    assert _text_outside_the_catalogs('<a href="/x" data-role="menu">{{ _("Go") }}</a>'
                                      ) == set()


def test_dates_and_order_states_follow_the_language() -> None:
    moment = datetime(2026, 12, 7, 15, 4, tzinfo=UTC)
    i18n.set_language(Language.JAPANESE)
    try:
        assert rendering.format_datetime("2026-12-07T15:04:00+00:00", "short") == \
            "2026/12/07 15:04"
        assert rendering.format_date(moment) == "2026/12/07"
        assert rendering.order_status("pending_payment") == "支払い待ち"
        assert i18n.format_money("1299", "JPY") == "￥1,299"
    finally:
        i18n.set_language(Language.ENGLISH)
    assert rendering.format_datetime(moment, "short") == "12/7/26, 3:04\u202fPM"
    assert rendering.order_status("pending_payment") == "awaiting payment"
    assert i18n.format_money("1299", "JPY") == "¥1,299"


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "inventory", "cart", "payments", "orders",
                           "lab"], telemetry=tracing("orders")) as served:
        yield served


@pytest.fixture(scope="module")
async def gateway(shop: ServedShop) -> AsyncIterator[FastAPI]:
    app = shop.gateway()
    async with app.router.lifespan_context(app):
        yield app


async def yen_product(gateway: FastAPI) -> dict[str, Any]:
    """A product of our own, priced in yen, named in both languages."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                 base_url="http://gw") as client:
        tokens = (await client.post("/api/v1/auth/login", json={
            "email": ADMIN[0], "password": ADMIN[1]})).json()
        created = await client.post("/api/v1/products", headers={
            "Authorization": f"Bearer {tokens['access_token']}"}, json={
            "name": f"Comet Finder {uuid.uuid4().hex[:6]}", "name_ja": "コメットファインダー",
            "description": "A wide-field scope.", "description_ja": "広い視野の望遠鏡です。",
            "price": "12800", "currency": "JPY", "inventory": 30, "category": "telescopes"})
    assert created.status_code == 201, created.text
    product: dict[str, Any] = created.json()
    return product


async def test_a_page_asked_in_japanese_is_japanese_until_the_reader_switches(
        gateway: FastAPI) -> None:
    product = await yen_product(gateway)
    path = f"/products/{product['id']}"
    async with Browser(gateway) as browser:
        browser.client.headers["Accept-Language"] = "ja,en;q=0.8"
        page = await browser.get(path)
        assert page.status_code == 200 and page.headers["content-language"] == "ja"
        assert '<html lang="ja">' in page.text
        assert "<h1>コメットファインダー</h1>" in page.text, "the product in Japanese"
        assert "広い視野の望遠鏡です。" in page.text and "￥12,800" in page.text
        assert "カートに入れる" in page.text and "在庫あり" in page.text
        assert "Add to cart" not in page.text
        # The switch names each language in itself and comes back to this page.
        assert f'href="/language/en?next={path}"' in page.text and ">English</a>" in page.text

        switched = await browser.get("/language/en", params={"next": path})
        assert switched.status_code == 303 and switched.headers["location"] == path
        assert "kansoku_lang=en" in switched.headers["set-cookie"]
        page = await browser.get(path)  # still asking for Japanese: the choice wins
        assert '<html lang="en">' in page.text and "Add to cart" in page.text
        assert f"<h1>{product['name']}</h1>" in page.text and "¥12,800" in page.text

        await browser.get("/language/ja", params={"next": "/"})
        home = await browser.get("/", headers={"Accept-Language": "en"})
        assert '<html lang="ja">' in home.text and "おすすめ商品" in home.text
        assert "望遠鏡" in home.text, "the categories in Japanese"
        missing = await browser.get("/products/999999999")
        assert missing.status_code == 404 and "ページが見つかりません" in missing.text
        form = await browser.post("/register", {"name": "", "email": "x", "password": "1"},
                                  token_from="/register")
        assert form.status_code == 422 and "お名前を入力してください。" in form.text


async def test_the_api_words_a_problem_in_the_language_asked_for(gateway: FastAPI) -> None:
    """A problem's sentence follows Accept-Language (a service's, passed on by the
    gateway); what programs match on — type, title, status — stays as it was."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                 base_url="http://gw") as client:
        japanese = await client.get("/api/v1/products/999999999",
                                    headers={"Accept-Language": "ja"})
        english = await client.get("/api/v1/products/999999999")
        invalid = await client.get("/api/v1/products", params={"limit": 0},
                                   headers={"Accept-Language": "ja"})
    assert japanese.status_code == english.status_code == 404
    assert japanese.json()["detail"] == "ID 999999999 の商品はありません。"
    assert english.json()["detail"] == "There is no product with id 999999999."
    for member in ("type", "title", "status"):
        assert japanese.json()[member] == english.json()[member]
    assert japanese.json()["type"].endswith("/product-not-found")
    assert japanese.json()["title"] == "Not Found"
    assert invalid.status_code == 422
    assert invalid.json()["detail"] == "正しくない項目があります: limit。"
    assert invalid.json()["errors"][0]["message"] == "1 以上の値にしてください。"
    assert invalid.json()["errors"][0]["field"] == "limit"


async def test_a_refused_checkout_is_explained_in_japanese_on_the_form(
        gateway: FastAPI) -> None:
    """Orders hands on inventory's refusal, in the language the gateway passed on; the
    checkout page puts it on the form."""
    product = await yen_product(gateway)  # 30 in stock
    async with Browser(gateway) as browser:
        await browser.get("/language/ja", params={"next": "/"})
        await browser.register()
        await add(browser, product["id"], 2)
        # Meanwhile all but one unit are sold.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                     base_url="http://gw") as api:
            tokens = (await api.post("/api/v1/auth/login", json={
                "email": ADMIN[0], "password": ADMIN[1]})).json()
            sold = await api.post(f"/api/v1/inventory/{product['id']}/adjust", headers={
                "Authorization": f"Bearer {tokens['access_token']}"},
                json={"delta": -29, "reason": "sold elsewhere"})
            assert sold.status_code == 200, sold.text
        refused = await browser.client.post("/checkout", data=await checkout_form(
            browser, GOOD_CARD))
    assert refused.status_code == 409 and '<html lang="ja">' in refused.text
    expected = i18n.translated_in(Language.JAPANESE, "Product {product_id}: {wanted} wanted, "
                                  "{left} left.").format(product_id=product["id"], wanted=2,
                                                         left=1)
    assert "在庫が足りません" in expected
    summary = re.search(r'<div class="error-summary" role="alert".*?</div>', refused.text,
                        re.S)
    assert summary and expected in summary.group(0), refused.text
    assert "wanted" not in refused.text


# --- in Chromium ----------------------------------------------------------------------

CUSTOMER_PAGES = ("/", "/products", "/products?q=zzzz-nothing", "/cart", "/checkout",
                  "/orders", "/lab", "/login", "/register", "/products/999999999")
ADMIN_PAGES = ("/admin", "/admin/products", "/admin/products/new", "/admin/inventory",
               "/admin/mailbox", "/admin/dead-letters", "/admin/faults")
WIDTHS = {1280: {"width": 1280, "height": 900}, 390: {"width": 390, "height": 844}}
_OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
#: Buttons, links, headings, labels and table headers that show nothing (or only
#: whitespace): a text the page lost, or a box drawn empty.
_EMPTY_BOXES = """() => [...document.querySelectorAll(
    'button, a[href], h1, h2, h3, h4, label, th, legend, summary, option')]
  .filter(e => e.getClientRects().length && !e.closest('.visually-hidden'))
  .filter(e => !e.innerText.trim() && !e.querySelector('img, svg')
               && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML.slice(0, 120))"""


def _shot_name(path: str, width: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "home"
    return f"ja-{stem}-{width}"


async def _check_in_japanese(page: BrowserPage, url: str, path: str) -> None:
    for width, viewport in WIDTHS.items():
        await page.page.set_viewport_size(viewport)  # type: ignore[arg-type]
        answer = await page.page.goto(f"{url}{path}")
        # The mailbox and dead letters need the worker, not served here: their 503 page.
        assert answer is not None and answer.status in (200, 404, 503), path
        assert await page.page.evaluate("() => document.documentElement.lang") == "ja"
        assert await page.page.evaluate(_OVERFLOW) <= 0, f"{path} overflows at {width} px"
        assert await page.page.evaluate(_EMPTY_BOXES) == [], f"{path} at {width} px"
        await page.screenshot(_shot_name(path, width))


async def _log_in(page: BrowserPage, url: str, email: str, password: str,
                  form: str = "/login") -> None:
    tab = page.page
    await tab.goto(f"{url}{form}")
    await tab.get_by_label("メールアドレス").fill(email)
    await tab.get_by_label("パスワード").fill(password)
    await tab.get_by_label("パスワード").press("Enter")
    await tab.wait_for_load_state("load")
    assert "/login" not in tab.url, "logged in"


async def test_every_page_in_japanese_fits_and_has_no_empty_box(
        shop: ServedShop, page: BrowserPage) -> None:
    async with served(shop.gateway()) as url:
        tab = page.page
        await tab.context.set_extra_http_headers({"Accept-Language": "ja"})
        product = await _first_product(url)
        for path in ("/login", "/register", f"/products/{product}"):
            await _check_in_japanese(page, url, path)
        await tab.set_viewport_size({"width": 1280, "height": 900})
        await tab.goto(f"{url}/register")
        await tab.get_by_label("お名前").fill("山田 花子")
        await tab.get_by_label("メールアドレス").fill(f"ja-{uuid.uuid4().hex[:8]}@example.com")
        await tab.get_by_label("パスワード").fill("hanako-pass-1")
        await tab.get_by_label("パスワード").press("Enter")
        await tab.wait_for_load_state("load")
        assert "/register" not in tab.url, "registered and logged in"
        await tab.goto(f"{url}/products/{product}")
        await tab.get_by_role("button", name="カートに入れる").click()
        await tab.wait_for_url(re.compile(r"/cart$"))
        for path in CUSTOMER_PAGES:
            await _check_in_japanese(page, url, path)
        await tab.context.clear_cookies()
        await _log_in(page, url, *ADMIN, form="/admin/login")
        for path in (*ADMIN_PAGES, f"/admin/products/{product}",
                     f"/admin/inventory/{product}", f"/admin/products/{product}/delete"):
            await _check_in_japanese(page, url, path)
        assert page.errors == []


async def _first_product(url: str) -> int:
    async with httpx.AsyncClient(base_url=url) as client:
        found = (await client.get("/api/v1/products", params={"limit": 1})).json()
    return int(found["items"][0]["id"])
