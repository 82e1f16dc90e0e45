"""The gateway's home page when the catalog is missing: a 503, never a hang or a trace."""

from __future__ import annotations

import httpx

from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.settings import Settings
from tests.support import free_ports


def gateway_without_catalog() -> httpx.AsyncClient:
    (closed,) = free_ports(1)
    app = create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}"), Telemetry("gateway"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_browsers_get_a_friendly_page() -> None:
    async with gateway_without_catalog() as client:
        response = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "We'll be right back" in response.text
    assert "catalog" in response.text
    assert "Traceback" not in response.text


async def test_scripts_get_problem_json() -> None:
    async with gateway_without_catalog() as client:
        response = await client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["dependency"] == "catalog"
    assert "cannot connect" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
