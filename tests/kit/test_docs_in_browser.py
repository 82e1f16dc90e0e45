"""The API documentation every app gets from the kit — Swagger UI at /docs and ReDoc at
/redoc (the gateway's at /api/docs and /api/redoc) — in Chromium on a machine with no
network but the app: the pages' scripts and styles come with kansoku, so the operations
show. (With FastAPI's own pages, which load them from a CDN, the page stays blank.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.settings import Settings
from tests.browser import BrowserPage, only_from, served
from tests.kit.apps import make_app
from tests.support import free_ports

#: ReDoc's menu ends with a "by Redocly" link whose little logo it loads from Redocly's
#: site, and leaves out when that fails: the one request the docs make elsewhere, for an
#: ornament.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
#: How long a page may take to show its operations: the gateway's OpenAPI document took
#: 2.6 s to make on a machine busy with other test runs.
RENDERED_WITHIN_MS = 60_000


@asynccontextmanager
async def offline(page: BrowserPage, app: FastAPI) -> AsyncIterator[tuple[str, list[str]]]:
    """`app` served, and `page` able to reach it and nothing else; yields the app's URL
    and the URLs the page tried to reach elsewhere."""
    async with served(app) as url:
        yield url, await only_from(page.page, url)


async def swagger_operations(page: BrowserPage, url: str) -> list[str]:
    """The operations Swagger UI at `url` shows, as "METHOD /path"."""
    answer = await page.page.goto(url)
    assert answer is not None and answer.status == 200
    operations = page.page.locator(".opblock-summary")
    await operations.first.wait_for(timeout=RENDERED_WITHIN_MS)
    return [" ".join((await operations.nth(i).inner_text()).split()[:2])
            for i in range(await operations.count())]


async def redoc_operations(page: BrowserPage, url: str) -> list[str]:
    """The operations ReDoc at `url` shows, as "METHOD /path" (its request samples)."""
    answer = await page.page.goto(url)
    assert answer is not None and answer.status == 200
    endpoints = page.page.locator("[data-section-id^='tag/'] .http-verb + span, "
                                  "[data-section-id^='operation/'] .http-verb + span")
    await endpoints.first.wait_for(state="attached", timeout=RENDERED_WITHIN_MS)
    verbs = page.page.locator(".http-verb")
    return [f"{(await verbs.nth(i).inner_text()).upper()} "
            f"{await endpoints.nth(i).text_content()}"
            for i in range(await endpoints.count())]


async def test_a_services_docs_show_its_operations_with_no_network(page: BrowserPage) -> None:
    async with offline(page, make_app()) as (url, refused):
        swagger = await swagger_operations(page, f"{url}/docs")
        await page.screenshot("docs-swagger-offline")
        assert {"GET /items", "POST /items", "GET /teapot"} <= set(swagger), swagger
        redoc = await redoc_operations(page, f"{url}/redoc")
        await page.screenshot("docs-redoc-offline")
        assert {"GET /items", "POST /items", "GET /teapot"} <= set(redoc), redoc
    assert set(refused) <= {REDOC_LOGO}, refused
    assert page.errors == []
    assert [load for load in page.failed_loads if not load.startswith(REDOC_LOGO)] == []


async def test_the_public_apis_docs_show_its_operations_with_no_network(
        page: BrowserPage, valkey_url: str) -> None:
    (closed,) = free_ports(1)  # the docs need no service behind the gateway
    gateway = create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}",
                                  redis_url=valkey_url), Telemetry("gateway"))
    async with offline(page, gateway) as (url, refused):
        swagger = await swagger_operations(page, f"{url}/api/docs")
        assert {"POST /api/v1/auth/login", "GET /api/v1/products"} <= set(swagger), swagger
        redoc = await redoc_operations(page, f"{url}/api/redoc")
        assert {"POST /api/v1/auth/login", "GET /api/v1/products"} <= set(redoc), redoc
    assert set(refused) <= {REDOC_LOGO}, refused
    assert page.errors == []
    assert [load for load in page.failed_loads if not load.startswith(REDOC_LOGO)] == []


@pytest.mark.parametrize("path", ["/docs/assets/swagger-ui-bundle.js",
                                  "/docs/assets/swagger-ui.css",
                                  "/docs/assets/redoc.standalone.js"])
async def test_the_docs_files_are_served_by_the_app_itself(path: str) -> None:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app()),
                                 base_url="http://probe") as client:
        page = await client.get("/docs" if "swagger" in path else "/redoc")
        asset = await client.get(path)
    assert path in page.text and "cdn" not in page.text.lower()
    assert asset.status_code == 200 and len(asset.content) > 100_000
