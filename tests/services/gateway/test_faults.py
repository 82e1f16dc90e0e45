"""The fault flags in the gateway: the admin API (`/api/v1/admin/flags`), the admin page
(`/admin/faults`, with real admin login and CSRF), and the two faults acting in the
gateway itself (gatewayCpuHog, imageSlowLoad)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from kansoku.faults import catalogue, flagfile
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.faults import CPU_HOG_SECONDS, deliver_image_slowly
from kansoku.services.gateway.settings import Settings
from tests.faults import switch
from tests.services.gateway.test_admin_pages import Browser, shop  # noqa: F401
from tests.services.shop import ServedShop
from tests.support import free_ports
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
ADMIN, CUSTOMER = TOKENS.headers("admin"), TOKENS.headers()


@pytest.fixture
async def gateway(valkey_url: str, tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Path]]:
    """The gateway alone (no other service answers), with a flags file."""
    flags_file = tmp_path / "flags.json"
    flagfile.reset(flags_file)
    (closed,) = free_ports(1)
    app = create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}", redis_url=valkey_url,
                              flags_file=flags_file), Telemetry("gateway"))
    app.state.tokens = TOKENS.verifier
    async with app.router.lifespan_context(app):
        yield app, flags_file


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_the_admin_api_lists_sets_and_resets_flags(gateway: tuple[FastAPI, Path]
                                                         ) -> None:
    app, flags_file = gateway
    async with client(app) as api:
        listed = await api.get("/api/v1/admin/flags", headers=ADMIN)
        assert listed.status_code == 200
        assert [flag["name"] for flag in listed.json()] == list(catalogue.FLAGS)
        assert {flag["variant"] for flag in listed.json()} == {"off"}
        changed = await api.put("/api/v1/admin/flags/paymentFailure", headers=ADMIN,
                                json={"variant": "50%"})
        assert changed.status_code == 200
        assert (changed.json()["variant"], changed.json()["service"]) == ("50%", "payments")
        assert flagfile.read_variants(flags_file)["paymentFailure"] == "50%"
        reset = await api.post("/api/v1/admin/flags/reset", headers=ADMIN)
        assert {flag["variant"] for flag in reset.json()} == {"off"}
        assert flagfile.read_variants(flags_file)["paymentFailure"] == "off"


async def test_the_admin_api_names_the_valid_flags_and_variants(
        gateway: tuple[FastAPI, Path]) -> None:
    app, flags_file = gateway
    async with client(app) as api:
        unknown = await api.put("/api/v1/admin/flags/noSuchFlag", headers=ADMIN,
                                json={"variant": "on"})
        bad = await api.put("/api/v1/admin/flags/paymentLatency", headers=ADMIN,
                            json={"variant": "2s"})
        customer = await api.put("/api/v1/admin/flags/paymentLatency", headers=CUSTOMER,
                                 json={"variant": "1s"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["flags"] == list(catalogue.FLAGS) and unknown.json()["request_id"]
    assert "paymentFailure" in unknown.json()["detail"]
    assert bad.status_code == 422 and bad.json()["variants"] == ["off", "1s", "3s"]
    assert "Variants: off, 1s, 3s." in bad.json()["detail"]
    assert customer.status_code == 403
    assert set(flagfile.read_variants(flags_file).values()) == {"off"}


async def test_cpu_hog_burns_cpu_on_every_request(gateway: tuple[FastAPI, Path]) -> None:
    app, flags_file = gateway
    async with client(app) as api:
        await api.get("/api/v1/categories")  # warm up
        cpu = time.thread_time()
        await api.get("/api/v1/categories")
        normal = time.thread_time() - cpu
        await switch(app, flags_file, "gatewayCpuHog", "on")
        cpu = time.thread_time()
        for _ in range(3):
            await api.get("/api/v1/categories")
        hogged = time.thread_time() - cpu
    assert hogged >= 3 * CPU_HOG_SECONDS > normal


async def test_slow_images_wait_their_seconds(gateway: tuple[FastAPI, Path]) -> None:
    app, flags_file = gateway
    started = time.monotonic()
    await deliver_image_slowly(app.state.flags)
    assert time.monotonic() - started < 0.1
    await switch(app, flags_file, "imageSlowLoad", "5s")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(deliver_image_slowly(app.state.flags), 1.0)


# --- the admin page ---------------------------------------------------------------------

def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_the_faults_page_switches_and_resets_flags(
        shop: ServedShop, tmp_path: Path) -> None:  # noqa: F811
    flags_file = tmp_path / "flags.json"
    flagfile.reset(flags_file)
    app = shop.gateway(flags_file=flags_file)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="https://shop.test", timeout=30,
                                  headers={"Accept": "text/html"}) as http):
        admin = Browser(http)
        assert (await admin.log_in(next_page="/admin/faults")).status_code == 303
        page = await admin.get("/admin/faults")
        assert page.status_code == 200
        assert '<a href="/admin/faults" aria-current="page">Faults</a>' in page.text
        assert all(f'data-flag="{name}"' in page.text for name in catalogue.FLAGS)
        assert "What to look for" in page.text
        token = csrf_token(page.text)
        forged = await admin.post("/admin/faults/inventoryFailure", {"variant": "50%"})
        assert forged.status_code == 403
        switched = await admin.post("/admin/faults/inventoryFailure",
                                    {"variant": "50%", "csrf_token": token})
        assert switched.status_code == 303
        assert flagfile.read_variants(flags_file)["inventoryFailure"] == "50%"
        shown = await admin.get("/admin/faults")
        assert "inventoryFailure is now 50%." in unescape(shown.text)
        assert '<option value="50%" selected>' in shown.text
        bad = await admin.post("/admin/faults/inventoryFailure",
                               {"variant": "33%", "csrf_token": token})
        assert bad.status_code == 422
        assert "Variants: off, 10%, 50%, 100%." in unescape(bad.text)
        reset = await admin.post("/admin/faults/reset", {"csrf_token": token})
        assert reset.status_code == 303
        assert set(flagfile.read_variants(flags_file).values()) == {"off"}
