"""The explorer can require a login (KANSOKU_EXPLORER_AUTH): people get a login page and
a cookie session, programs a bearer token; OTLP ingest and health stay open.

Before: anyone who could reach port 8800 read every trace and log, customers' e-mail
addresses included (see test_personal_data).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from kansoku.kit.settings import ConfigurationError
from kansoku.services.gateway.clients import ExplorerClient

PASSWORD, TOKEN = "explorer-login-pass", "explorer-program-token-0123456789"
PAGE = {"Accept": "text/html,application/xhtml+xml"}


@asynccontextmanager
async def explorer(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db_path=":memory:", problems_enabled=False,
                              alerts_enabled=False, **settings))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://explorer.test") as client:
        yield client


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    async with explorer(auth=True, password=PASSWORD, token=TOKEN) as client:
        yield client


async def test_programs_need_the_token(guarded: httpx.AsyncClient) -> None:
    anonymous = await guarded.get("/api/services")
    wrong = await guarded.get("/api/services", headers={"Authorization": "Bearer guess"})
    right = await guarded.get("/api/services", headers={"Authorization": f"Bearer {TOKEN}"})
    for refused in (anonymous, wrong):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "KANSOKU_EXPLORER_TOKEN" in refused.json()["detail"]
    assert right.status_code == 200


async def test_people_log_in_on_a_page_and_keep_a_cookie(guarded: httpx.AsyncClient) -> None:
    sent_away = await guarded.get("/traces?service=gateway", headers=PAGE)
    assert sent_away.status_code == 303
    assert sent_away.headers["location"] == "/login?next=/traces%3Fservice%3Dgateway"
    form = await guarded.get(sent_away.headers["location"])
    assert form.status_code == 200 and 'name="password"' in form.text

    wrong = await guarded.post("/login", data={"password": "guess", "next": "/traces"})
    assert wrong.status_code == 401 and "That password is not the explorer" in wrong.text
    assert "kansoku_explorer" not in guarded.cookies

    elsewhere = await guarded.post("/login", data={"password": PASSWORD,
                                                   "next": "//evil.example/"})
    assert elsewhere.headers["location"] == "/", "never sent to another site"
    logged_in = await guarded.post("/login", data={"password": PASSWORD, "next": "/traces"})
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/traces"
    cookie = logged_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert PASSWORD not in cookie and TOKEN not in cookie
    assert (await guarded.get("/", headers=PAGE)).status_code == 200
    assert (await guarded.get("/api/services")).status_code == 200

    await guarded.post("/logout")
    assert (await guarded.get("/api/services")).status_code == 401


async def test_a_forged_cookie_is_refused(guarded: httpx.AsyncClient) -> None:
    for forged in ("v1.99999999999.0000", "v1.1.abc", "anything"):
        guarded.cookies.set("kansoku_explorer", forged, domain="explorer.test")
        assert (await guarded.get("/api/services")).status_code == 401


async def test_ingest_and_health_stay_open(guarded: httpx.AsyncClient) -> None:
    ingest = await guarded.post("/v1/traces", json={"resourceSpans": []})
    assert ingest.status_code == 200
    assert (await guarded.get("/health/ready")).status_code == 200


async def test_off_by_default_and_on_only_with_both_secrets() -> None:
    async with explorer() as open_explorer:
        assert (await open_explorer.get("/api/services")).status_code == 200
    with pytest.raises(ConfigurationError, match="KANSOKU_EXPLORER_TOKEN"):
        create_app(Settings(db_path=":memory:", auth=True, password=PASSWORD))


async def test_the_gateways_dashboard_reads_it_with_the_token() -> None:
    app = create_app(Settings(db_path=":memory:", problems_enabled=False,
                              alerts_enabled=False, auth=True, password=PASSWORD, token=TOKEN))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        without = await ExplorerClient("http://explorer.test",
                                       transport=transport).recent_failures()
        with_token = await ExplorerClient("http://explorer.test", transport=transport,
                                          token=TOKEN).recent_failures()
    assert without.unavailable == "the explorer answered HTTP 401"
    assert with_token.unavailable is None
