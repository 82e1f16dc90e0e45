"""The admin's journey in a real browser (Debian's Chromium), on a stack of its own:
log in → create a product with a picture → its thumbnail appears → restock it → a
customer finds it in the storefront and puts it in the cart. No JavaScript error on the
way, and the pages' real-user monitoring reaches the explorer.

Screenshots: test-artifacts/screenshots/admin-journey-*.png."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.async_api import expect

from tests.browser import BrowserPage, Visits
from tests.rum import assert_rum_exported
from tests.stack.test_up import RunningStack
from tests.support import new_customer

pytestmark = pytest.mark.stack

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin-pass-1234"





def picture(path: Path) -> Path:
    """A small PNG, as a photo from a phone would be, only smaller."""
    image = Image.new("RGB", (480, 360), "#1b2a4a")
    drawing = ImageDraw.Draw(image)
    for x, y in ((60, 50), (200, 120), (330, 80), (410, 260), (120, 280)):
        drawing.ellipse((x, y, x + 8, y + 8), fill="#fff6c2")
    image.save(path, format="PNG")
    return path





async def test_admin_creates_restocks_and_a_customer_can_buy(
    web_shop: RunningStack, page: BrowserPage, tmp_path: Path,
) -> None:
    gateway, browser = web_shop.url("gateway"), page.page
    visits = Visits(browser)
    arrived, visited = visits.arrived, visits.paths

    # Log in: an admin page sends the anonymous visitor to the admin login, and back.
    await browser.goto(f"{gateway}/admin")
    await arrived(r"/admin/login\?next=/admin$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text("Admin login")
    await page.screenshot("admin-journey-1-login")
    await browser.get_by_label("E-mail address").fill(ADMIN_EMAIL)
    await browser.get_by_label("Password").fill(ADMIN_PASSWORD)
    await browser.get_by_role("button", name="Log in").click()
    await arrived(r"/admin$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text("Dashboard")
    await expect(browser.get_by_role("heading", name="Low on stock")).to_be_visible()
    await page.screenshot("admin-journey-2-dashboard")

    # Create a product with a picture.
    name = f"Nebula filter {uuid.uuid4().hex[:6]}"
    await browser.get_by_role("navigation", name="Admin").get_by_role(
        "link", name="New product").click()
    await arrived(r"/admin/products/new$")
    await browser.get_by_label("Name", exact=True).fill(name)
    await browser.get_by_label("Description", exact=True).fill(
        "Brings out the nebula, leaves the city.")
    await browser.get_by_label("Price").fill("39.90")
    await browser.get_by_label("Category").select_option("filters")
    await browser.get_by_label("Units in stock").fill("2")
    await browser.get_by_label("Picture").set_input_files(picture(tmp_path / "nebula.png"))
    await page.screenshot("admin-journey-3-new-product")
    await browser.get_by_role("button", name="Create the product").click()
    product_path = await arrived(r"/admin/products/\d+$")
    product_id = int(product_path.rsplit("/", 1)[1])
    await expect(browser.get_by_role("heading", level=1)).to_have_text(name)
    await expect(browser.get_by_role("status").first).to_contain_text(
        f"“{name}” was created with 2 in stock.")

    # The thumbnail appears once the worker has made it (admin.js swaps it in).
    thumbnail = browser.get_by_test_id("thumbnail")
    await expect(thumbnail).to_be_visible(timeout=30_000)
    assert await thumbnail.evaluate("image => image.complete && image.naturalWidth > 0")
    assert "/thumbnail?v=1" in (await thumbnail.get_attribute("src") or "")
    await page.screenshot("admin-journey-4-thumbnail")

    # Restock it.
    await browser.get_by_role("link", name="Restock or adjust").click()
    await arrived(rf"/admin/inventory/{product_id}$")
    await browser.get_by_label("Units to add").fill("20")
    await browser.get_by_label("Reason").fill("restock from supplier")
    await browser.get_by_role("button", name="Update the stock").click()
    await expect(browser.get_by_test_id("available")).to_have_text("22")
    await expect(browser.get_by_role("status").first).to_contain_text(
        "Added 20 (“restock from supplier”): 22 available now.")
    await expect(browser.get_by_role("table", name="Recent changes")).to_contain_text(
        "restock from supplier")
    await page.screenshot("admin-journey-5-restocked")

    # A customer finds it in the storefront and can buy it.
    await browser.get_by_role("button", name="Log out").click()
    await browser.wait_for_load_state("load")
    email, password = await new_customer(gateway, "Star Gazer")
    await browser.goto(f"{gateway}/login")
    await arrived(r"/login")
    await browser.get_by_label("E-mail address").fill(email)
    await browser.get_by_label("Password").fill(password)
    await browser.get_by_role("button", name="Log in").click()
    await browser.wait_for_load_state("load")
    await browser.goto(f"{gateway}/products?q={name.replace(' ', '+')}")
    await arrived(r"/products\?q=")
    await browser.get_by_role("link", name=name).first.click()
    await arrived(rf"/products/{product_id}$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text(name)
    product_image = browser.get_by_role("img", name=name).first
    await expect(product_image).to_be_visible()
    assert await product_image.evaluate("image => image.complete && image.naturalWidth > 0")
    await page.screenshot("admin-journey-6-storefront-product")
    await browser.get_by_label("Quantity").fill("2")
    await browser.get_by_role("button", name="Add to cart").click()
    await arrived(r"/cart$")
    await expect(browser.get_by_role("main")).to_contain_text(name)
    await page.screenshot("admin-journey-7-cart")

    # Leave the last page, so its final Web Vitals are sent.
    await browser.goto("about:blank")
    assert page.errors == [], "no JavaScript error, nothing logged as an error"
    await assert_rum_exported(web_shop.url("explorer"), sorted(set(visited)))
