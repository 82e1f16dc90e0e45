"""The pages' layout in Chromium, at a laptop's width (1280 px) and a phone's (390 px):
each test measures what a newcomer saw go wrong, on every page it checks that nothing is
wider than the screen and that every field has a visible label, and it saves a
screenshot per width (test-artifacts/screenshots/layout-<what>-<width>.png).

- the storefront's header fits a phone, logged in or not (its search used to run off
  the side), and the logo's 観測 is drawn with a font that has those characters;
- the admin's product rows keep Edit and Delete in line with the product, and their
  thumbnails (which a phone's narrow table used to squeeze to nothing);
- the inventory's "Only products low on stock" checkbox sits next to its label;
- the lab's variant radio buttons sit next to their labels;
- the orders list and an order's page fit a phone (their tables scroll in a box).

Served by real identity, catalog, inventory, cart, orders and lab services; the gateway
in a thread, as `kansoku serve` runs it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, ViewportSize

from tests.browser import BrowserPage, in_ci, served
from tests.services.gateway.test_pages import _ACCESSIBILITY_PROBLEMS
from tests.services.shop import Infrastructure, ServedShop, serve_shop, tracing

ADMIN = ("admin@example.com", "admin-pass-1234")
CUSTOMER = ("alice@example.com", "alice-pass-1234")
WIDTHS: dict[int, ViewportSize] = {1280: {"width": 1280, "height": 900},
                                   390: {"width": 390, "height": 844}}
#: The logo's characters, and the Debian package with a font that draws them.
LOGO, LOGO_FONT_PACKAGE = "観測", "fonts-ipafont-gothic"

#: How far the page reaches past the screen's right edge (0 when nothing overflows).
_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"

#: The boxes of a control and of the text of its label, side by side: `[control, text]`,
#: each `{left, right, top, bottom}`.
_CONTROL_AND_LABEL_TEXT = """(control) => {
  const label = control.labels[0];
  const range = document.createRange();
  const texts = [...label.childNodes].filter(node => node.nodeType === Node.TEXT_NODE
                                                     && node.textContent.trim());
  if (texts.length) { range.setStartBefore(texts[0]); range.setEndAfter(texts.at(-1)); }
  else { range.selectNodeContents(label); }
  const box = (rect) => ({left: rect.left, right: rect.right, top: rect.top,
                          bottom: rect.bottom});
  return [box(control.getBoundingClientRect()), box(range.getClientRects()[0])];
}"""


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "inventory", "cart", "orders", "lab"],
                          telemetry=tracing("orders")) as served_shop:
        yield served_shop


@pytest.fixture
async def gateway(shop: ServedShop) -> AsyncIterator[str]:
    async with served(shop.gateway()) as url:
        yield url


async def log_in(tab: Page, gateway: str, account: tuple[str, str],
                 form: str = "/login") -> None:
    await tab.context.clear_cookies()
    await tab.goto(f"{gateway}{form}")
    await tab.get_by_label("E-mail address").fill(account[0])
    await tab.get_by_label("Password").fill(account[1])
    await tab.get_by_label("Password").press("Enter")
    await tab.wait_for_load_state("load")
    assert "/login" not in tab.url, "logged in"


async def at_each_width(page: BrowserPage, url: str) -> AsyncIterator[int]:
    """Open `url` at each width and check it (nothing wider than the screen, every field
    labelled); yield the width, for the test to measure and take its screenshot."""
    for width, viewport in WIDTHS.items():
        await page.page.set_viewport_size(viewport)
        answer = await page.page.goto(url)
        assert answer is not None and answer.status == 200, url
        assert await page.page.evaluate(_OVERFLOW) <= 0, f"{url} is wider than {width} px"
        assert await page.page.evaluate(_ACCESSIBILITY_PROBLEMS) == [], url
        yield width


def _side_by_side(control: dict[str, float], text: dict[str, float]) -> None:
    """A checkbox or radio button of its own size, on one line with its label's text,
    which comes just after it."""
    size = (control["right"] - control["left"], control["bottom"] - control["top"])
    assert max(size) <= 24, f"the control is {size[0]:.0f} by {size[1]:.0f} px"
    gap = text["left"] - control["right"]
    middle = (control["top"] + control["bottom"]) / 2
    assert 0 <= gap <= 12, f"{gap:.0f} px between the control and its label's text"
    assert text["top"] <= middle <= text["bottom"], "the control is beside its text"


def _fonts_with(characters: str) -> set[str]:
    """The font families fontconfig says can draw every one of `characters`."""
    if shutil.which("fc-list") is None:
        return set()
    charset = " ".join(f"{ord(character):x}" for character in characters)
    listed = subprocess.run(["fc-list", f":charset={charset}", "family"], text=True,
                            capture_output=True, check=False).stdout
    return {family.strip() for line in listed.splitlines() for family in line.split(",")}


async def test_the_storefront_header_fits_a_phone_and_draws_the_logo(
        gateway: str, page: BrowserPage) -> None:
    tab = page.page
    japanese = _fonts_with(LOGO)
    if not japanese:
        reason = (f"no font here draws {LOGO}: run scripts/install-chromium, or "
                  f"'sudo apt-get install {LOGO_FONT_PACKAGE}'")
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    for who in ("anonymous", "customer"):
        if who == "customer":  # more links in the header
            await log_in(tab, gateway, CUSTOMER)
        async for width in at_each_width(page, f"{gateway}/"):
            edges = await tab.locator(".site-header .bar > *").evaluate_all(
                "items => items.map(item => item.getBoundingClientRect().right)")
            assert max(edges) <= width, f"the header runs past a {width} px screen"
            cdp = await tab.context.new_cdp_session(tab)
            await cdp.send("DOM.enable")
            await cdp.send("CSS.enable")
            document = await cdp.send("DOM.getDocument")
            logo = await cdp.send("DOM.querySelector", {
                "nodeId": document["root"]["nodeId"], "selector": ".brand [lang=ja]"})
            used: dict[str, Any] = await cdp.send("CSS.getPlatformFontsForNode",
                                                  {"nodeId": logo["nodeId"]})
            families = {font["familyName"] for font in used["fonts"]}
            assert families and families <= japanese, (
                f"{LOGO} is drawn with {families}, which lack its characters")
            await cdp.detach()
            await page.screenshot(f"layout-header-{who}-{width}", full_page=False)


async def test_the_admin_product_rows_keep_edit_and_delete_in_line(
        gateway: str, page: BrowserPage) -> None:
    tab = page.page
    await log_in(tab, gateway, ADMIN, "/admin/login")
    async for width in at_each_width(page, f"{gateway}/admin/products"):
        rows = await tab.locator("table.products tbody tr").evaluate_all("""rows =>
            rows.map(row => {
              const middle = (element) => {
                const box = element.getBoundingClientRect();
                return (box.top + box.bottom) / 2;
              };
              const cell = row.cells[row.cells.length - 1], box = row.getBoundingClientRect();
              const picture = row.cells[0].firstElementChild.getBoundingClientRect();
              return {product: middle(row.cells[1].querySelector('a')),
                      picture: [picture.width, picture.height],
                      edit: middle(cell.querySelector('a')),
                      cellTop: cell.getBoundingClientRect().top - box.top,
                      cellBottom: box.bottom - cell.getBoundingClientRect().bottom};
            })""")
        assert len(rows) == 25
        for row in rows:
            assert abs(row["cellTop"]) <= 1 and abs(row["cellBottom"]) <= 1, (
                "the actions fill their cell of the row", row)
            assert abs(row["edit"] - row["product"]) <= 2, (
                "Edit is in line with the product's name", row)
            assert row["picture"] == [48, 48], ("the thumbnail keeps its size", row)
        await page.screenshot(f"layout-admin-products-{width}")


async def test_the_inventory_checkbox_sits_next_to_its_label(
        gateway: str, page: BrowserPage) -> None:
    tab = page.page
    await log_in(tab, gateway, ADMIN, "/admin/login")
    async for width in at_each_width(page, f"{gateway}/admin/inventory"):
        checkbox = tab.get_by_label("Only products low on stock")
        _side_by_side(*await checkbox.evaluate(_CONTROL_AND_LABEL_TEXT))
        await tab.get_by_text("Only products low on stock").click()
        assert await checkbox.is_checked(), "the label is the checkbox's"
        await page.screenshot(f"layout-inventory-{width}", full_page=False)


async def test_the_lab_radio_buttons_sit_next_to_their_labels(
        gateway: str, page: BrowserPage) -> None:
    tab = page.page
    await log_in(tab, gateway, CUSTOMER)
    async for width in at_each_width(page, f"{gateway}/lab"):
        radios = tab.get_by_role("radio")
        assert await radios.count() >= 4  # two scenarios with two variants each
        for radio in await radios.all():
            _side_by_side(*await radio.evaluate(_CONTROL_AND_LABEL_TEXT))
        cartesian = tab.get_by_label("cartesian product")
        await cartesian.scroll_into_view_if_needed()
        await page.screenshot(f"layout-lab-{width}", full_page=False)


async def test_the_orders_and_an_order_fit_a_phone_and_link_to_their_trace(
        gateway: str, page: BrowserPage) -> None:
    """The orders list (now with a trace column) and an order's page are no wider than
    a phone: their tables scroll in a box of their own."""
    tab = page.page
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=30) as api:
        token = (await api.post("/auth/login", json=dict(
            zip(("email", "password"), CUSTOMER, strict=True)))).json()["access_token"]
        placed = await api.post("/orders", headers={"Authorization": f"Bearer {token}"},
                                json={"items": [{"product_id": 1, "quantity": 1}],
                                      "shipping_address": {
                                          "street": "1 Observatory Road", "city": "Flagstaff",
                                          "state": "AZ", "zip": "86001", "country": "US"}})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    await log_in(tab, gateway, CUSTOMER)
    for path, name in ((f"/orders/{order['id']}", "order"), ("/orders", "orders")):
        async for width in at_each_width(page, f"{gateway}{path}"):
            trace = tab.locator("[data-order-trace]").first
            assert await trace.get_attribute("href") == (
                f"http://explorer.test/traces/{order['trace_id']}")
            await page.screenshot(f"layout-{name}-{width}")
