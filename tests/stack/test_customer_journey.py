"""The customer's journey in a real browser (Debian's Chromium), on a stack of its own:
log in → a category → a product → add 2 → the cart → checkout (fill in the form) → the
confirmation with the order number → the order history lists it. No JavaScript error on
the way, and the pages' real-user monitoring (Web Vitals of every page visited, and a
trace that starts in the browser and continues in the gateway) reaches the explorer.

Screenshots: test-artifacts/screenshots/customer-journey-*.png."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser import BrowserPage, Visits
from tests.rum import assert_rum_exported
from tests.stack.test_up import RunningStack
from tests.support import new_customer

pytestmark = pytest.mark.stack

#: A demo product with plenty in stock (ids 51 to 75 are the eyepieces).
PRODUCT_ID, PRODUCT_NAME = 51, "Orion Wide-Field Eyepiece"








async def test_customer_logs_in_buys_two_and_finds_the_order(
        web_shop: RunningStack, page: BrowserPage) -> None:
    gateway, browser = web_shop.url("gateway"), page.page
    email, password = await new_customer(gateway, "Night Owl")
    visits = Visits(browser)
    arrived, visited = visits.arrived, visits.paths

    # Log in.
    await browser.goto(f"{gateway}/login")
    await arrived(r"/login$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text("Log in")
    await browser.get_by_label("E-mail address").fill(email)
    await browser.get_by_label("Password").fill(password)
    await page.screenshot("customer-journey-1-login")
    await browser.get_by_role("button", name="Log in").click()
    await arrived(rf"{re.escape(gateway)}/$")
    await expect(browser.get_by_role("contentinfo")).to_contain_text("Logged in as Night Owl")

    # A category, then a product in it.
    await browser.get_by_role("link", name="Eyepieces", exact=True).first.click()
    await arrived(r"/products\?category=eyepieces$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text("Eyepieces")
    await page.screenshot("customer-journey-2-category")
    await browser.get_by_role("link", name=PRODUCT_NAME, exact=True).click()
    await arrived(rf"/products/{PRODUCT_ID}$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text(PRODUCT_NAME)
    image = browser.get_by_role("img", name=PRODUCT_NAME)
    await expect(image).to_be_visible()
    assert await image.evaluate("image => image.complete && image.naturalWidth > 0")
    await expect(browser.locator(".stock")).to_have_text("In stock")
    await page.screenshot("customer-journey-3-product")

    # Two of it into the cart.
    await browser.get_by_label("Quantity").fill("2")
    await browser.get_by_role("button", name="Add to cart").click()
    await arrived(r"/cart$")
    await expect(browser.get_by_role("status")).to_contain_text(
        f"Added 2 of {PRODUCT_NAME} to your cart.")
    await expect(browser.get_by_label(f"Quantity of {PRODUCT_NAME}")).to_have_value("2")
    await page.screenshot("customer-journey-4-cart")

    # Checkout: where to send it, and the card.
    await browser.get_by_role("button", name="Check out").click()
    await arrived(r"/checkout$")
    await browser.get_by_label("Street address").fill("1 Observatory Road")
    await browser.get_by_label("Town or city").fill("Flagstaff")
    await browser.get_by_label("State or region").fill("AZ")
    await browser.get_by_label("ZIP or postcode").fill("86001")
    await browser.get_by_label("Country").select_option("US")
    await browser.get_by_label("Card number").fill("4111 1111 1111 1111")
    await browser.get_by_label("Month").select_option("12")
    await browser.get_by_label("Year").select_option("2035")
    await browser.get_by_label("Security code (CVV)").fill("123")
    await page.screenshot("customer-journey-5-checkout")
    await browser.get_by_role("button", name=re.compile(r"^Place order and pay")).click()

    # The confirmation, with the order number.
    await arrived(r"/orders/[0-9a-f-]{36}/confirmation$")
    await expect(browser.get_by_role("heading", level=1)).to_have_text(
        "Thank you for your order")
    number = await browser.locator("[data-order-number]").inner_text()
    assert re.fullmatch(r"KS-\d+", number), number
    await expect(browser.get_by_role("main")).to_contain_text(
        "Payment received: VISA card ending 1111.")
    assert "4111 1111" not in await browser.content(), "the card number is not on the page"
    await page.screenshot("customer-journey-6-confirmation")

    # The order history lists it, paid.
    await browser.get_by_role("navigation", name="Your account").get_by_role(
        "link", name="Orders").click()
    await arrived(r"/orders$")
    row = browser.get_by_role("row").filter(has_text=number)
    await expect(row).to_contain_text("paid")
    await expect(row.get_by_role("link", name=number, exact=True)).to_be_visible()
    # … with a link to the trace in which it was placed.
    await expect(row.get_by_role("link", name=f"Trace of {number} in the explorer")
                 ).to_have_attribute("href", re.compile(r"/traces/[0-9a-f]{32}$"))
    await page.screenshot("customer-journey-7-orders")

    # Leave the last page, so its final Web Vitals are sent.
    await browser.goto("about:blank")
    assert page.errors == [], "no JavaScript error, nothing logged as an error"
    await assert_rum_exported(web_shop.url("explorer"), sorted(set(visited)))
