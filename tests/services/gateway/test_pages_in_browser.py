"""The gateway's pages in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.settings import Settings
from tests.browser import BrowserPage, served
from tests.support import free_ports
from tests.tokens import TokenIssuer


async def test_the_home_page_without_the_catalog_is_a_friendly_page(
    valkey_url: str, page: BrowserPage
) -> None:
    (closed,) = free_ports(1)  # nothing listens there: the catalog is down
    app = create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}", redis_url=valkey_url),
                     Telemetry("gateway"))
    app.state.tokens = TokenIssuer().verifier

    async with served(app) as base_url:
        response = await page.page.goto(f"{base_url}/", wait_until="load")
        assert response is not None
        assert response.status == 503
        assert await page.page.title() == "Temporarily unavailable — kansoku shop"
        heading = page.page.get_by_role("heading", level=1)
        assert await heading.inner_text() == "We\u2019ll be right back"
        notice = await page.page.get_by_role("alert").inner_text()
        assert "catalog" in notice
        assert "Traceback" not in await page.page.content()
        await page.screenshot()

    assert page.errors == [], "no JavaScript error, nothing logged as an error"
    # The page's own 503 is the point of it; nothing else on it may fail to load.
    assert set(page.failed_loads) <= {
        f"{base_url}/: the server responded with a status of 503 (Service Unavailable)"}
