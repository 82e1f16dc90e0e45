"""The `storefront` synthetic journey: the shop's pages in a real browser.

Debian's Chromium (`/usr/bin/chromium`, the `chromium` package) driven by Playwright —
never a browser Playwright downloads. Without Chromium or Playwright the journey is
skipped, saying why and that `kansoku install-browser` installs them
(`browser_setup.py`); it is not a failure of the shop.

Before each step the page's extra headers are set to that step's `traceparent` and the
synthetic baggage, so the gateway's spans for the page (and what it calls) join the
journey's trace under the step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from opentelemetry import propagate

from kansoku.loadgen.browser_setup import INSTALL_COMMAND, missing_browser
from kansoku.loadgen.outcomes import JourneyFailed, JourneySkipped

if TYPE_CHECKING:  # Playwright is optional: imported at run time once it is known there
    from playwright.async_api import Page

#: Opens a step of the journey by name: its span, the parent of what the page calls.
Step = Callable[[str], AbstractAsyncContextManager[object]]

#: Where the pages' script sends what it measured (the gateway's RUM intake).
RUM_INTAKE: Final = "/rum"
#: How long leaving the last page waits for its script's last batch.
LEAVING_SECONDS: Final = 5.0

#: Headless, with no GPU and no calls home (the same flags as the tests' browser).
CHROMIUM_FLAGS: Final = ("--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run")


def _trace_headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


async def _leave(page: Page) -> None:
    """Leave the last page as a person would, so its script sends what it measured last
    (LCP and CLS are final only then: closing the browser would lose them, and the
    product page's LCP is where imageSlowLoad shows). Its batch not arriving within a
    few seconds is no failure of the shop's."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        async with page.expect_response(lambda answer: answer.url.endswith(RUM_INTAKE),
                                        timeout=LEAVING_SECONDS * 1000):
            await page.goto("about:blank")


async def storefront_in_browser(step: Step, *, gateway: str, chromium: Path,
                                timeout_seconds: float) -> None:
    """The journey: the home page, then a product page, in Chromium at `chromium`, each in
    a `step`; `JourneyFailed` for what went wrong, `JourneySkipped` without a browser."""
    reason = missing_browser(chromium)
    if reason:
        raise JourneySkipped(f"{reason}: '{INSTALL_COMMAND}' installs what it needs")
    # Playwright is optional (`kansoku[browser]`): imported once it is known to be there.
    from playwright.async_api import Error, async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=list(CHROMIUM_FLAGS))
        try:
            page = await browser.new_page()
            page.set_default_timeout(timeout_seconds * 1000)
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                async with step("home page"):
                    await page.set_extra_http_headers(_trace_headers())
                    answer = await page.goto(f"{gateway}/")
                    if answer is None or answer.status != 200:
                        raise JourneyFailed(f"the home page answered "
                                            f"{answer.status if answer else 'nothing'}")
                async with step("product page"):
                    await page.set_extra_http_headers(_trace_headers())
                    link = page.locator("main a[href^='/products/']").first
                    name = (await link.inner_text()).strip()
                    async with page.expect_navigation():
                        await link.click()
                    heading = (await page.locator("h1").first.inner_text()).strip()
                    if name and heading not in name and name not in heading:
                        raise JourneyFailed(f"the product page shows {heading!r}, not "
                                            f"{name!r}")
                await _leave(page)
            except Error as exc:
                raise JourneyFailed(f"the browser: {str(exc).splitlines()[0]}") from exc
            if errors:
                raise JourneyFailed(f"JavaScript error on the page: {errors[0][:200]}")
        finally:
            await browser.close()
