"""Web sessions, CSRF and the HTML problem pages, on a small app built like every service
(`build_service_app`) with the gateway's web layers and a few routes that use them, a real
Valkey, and the real identity service (on a real PostgreSQL). The sessions tell time by
a clock the tests move: a token is due for its refresh when the test says so, not after
a sleep."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from kansoku.kit.app import build_service_app
from kansoku.kit.db import Database
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.settings import Settings as GatewaySettings
from kansoku.services.gateway.state import Gateway, gateway_of, tokens_of
from kansoku.services.gateway.web import layers
from kansoku.services.gateway.web.auth import (
    AdminDep,
    CsrfChecked,
    CustomerDep,
    LoginRefused,
    WebSessionDep,
    log_in,
    log_out,
    safe_next,
    see_other,
)
from kansoku.services.gateway.web.rendering import render
from kansoku.services.gateway.web.sessions import seal, unseal
from kansoku.services.identity import demo as identity_demo
from kansoku.services.identity.app import create_app as create_identity
from kansoku.services.identity.settings import Settings as IdentitySettings
from tests.services.shop import NO_LOGIN_LOCKS
from tests.support import ManualClock, migrate, serve_in_thread

HTML = {"Accept": "text/html,application/xhtml+xml"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def session_app(valkey_url: str, identity_url: str, clock: ManualClock) -> FastAPI:
    """An app with the gateway's session layer and one route per thing to try."""
    settings = GatewaySettings(redis_url=valkey_url, identity_url=identity_url,
                               explorer_url="http://explorer.test")
    telemetry = Telemetry("sessions-test")
    app = build_service_app(service="sessions-test", settings=settings,
                            telemetry=telemetry, description="",
                            fault_flags=FaultFlags(None, "sessions-test", {}))
    app.state.gateway = Gateway.build(settings, telemetry, redis.from_url(valkey_url),
                                      clock=clock.time)
    layers.install(app, gateway_of(app).sessions)

    @app.get("/form")
    async def form_page(request: Request, session: WebSessionDep) -> Response:
        return render(request, "login.html", {"values": {}, "errors": {}, "next": "/"})

    @app.get("/plain")
    async def plain_page(request: Request, session: WebSessionDep) -> Response:
        return render(request, "orders.html", {"orders": [], "page": 1, "pages": 1})

    @app.post("/form")
    async def post_form(session: CsrfChecked) -> Response:
        return see_other("/done")

    @app.post("/login")
    async def login(request: Request, session: CsrfChecked) -> Response:
        form = await request.form()
        try:
            await log_in(request, str(form["email"]), str(form["password"]))
        except LoginRefused as refused:
            return PlainTextResponse(refused.message, status_code=422)
        return see_other("/mine")

    @app.post("/logout")
    async def logout(request: Request, session: CsrfChecked) -> Response:
        await log_out(request)
        return see_other("/")

    @app.get("/mine")
    async def mine(customer: CustomerDep) -> Response:
        return PlainTextResponse(f"{customer.user_id} {customer.role}")

    @app.get("/slow-notice")
    async def slow_notice(customer: CustomerDep) -> Response:
        await asyncio.sleep(0.5)  # meanwhile, another tab logs out
        customer.add_message("A notice")
        return PlainTextResponse("noted")

    @app.get("/admin-only")
    async def admin_only(admin: AdminDep) -> Response:
        return PlainTextResponse("for admins")

    @app.get("/boom")
    async def boom(session: WebSessionDep) -> Response:
        raise RuntimeError("a bug with a secret in its message: s3cr3t")

    @app.get("/busy")
    async def busy() -> Response:
        raise Problem(429, "too-many-requests", "Too many requests: try again in 7 s.",
                      headers={"Retry-After": "7"})

    @app.get("/away")
    async def away() -> Response:
        raise DependencyUnavailable("catalog", "cannot connect: ConnectError")

    @app.get("/api/v1/thing")
    async def api_thing() -> Response:
        raise Problem(404, "thing-not-found", "There is no thing.")

    return app


@pytest.fixture(scope="module")
async def identity_url(postgres_url: str) -> AsyncIterator[str]:
    await migrate(postgres_url, "identity")
    database = Database(postgres_url, schema="identity", application_name="test-seed")
    try:
        async with database.transaction() as session:
            await identity_demo.seed(session)
    finally:
        await database.dispose()
    identity = create_identity(IdentitySettings(database_url=postgres_url,
                                                service_secret="sessions-test-secret",
                                                **NO_LOGIN_LOCKS),
                               Telemetry("identity"))
    with serve_in_thread(identity, lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    """The sessions' clock: it moves only when a test moves it."""
    return ManualClock()


@pytest.fixture(scope="module")
async def app(valkey_url: str, identity_url: str, clock: ManualClock
              ) -> AsyncIterator[FastAPI]:
    built = session_app(valkey_url, identity_url, clock)
    async with built.router.lifespan_context(built):
        yield built
    await gateway_of(built).sessions.valkey.aclose()
    await gateway_of(built).clients.aclose()


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like a browser over HTTPS: asks for HTML, keeps cookies (Secure ones too)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://shop.test", headers=HTML) as client:
        yield client


@pytest.fixture
async def valkey(valkey_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(valkey_url)
    yield client
    await client.aclose()


async def csrf_token(browser: httpx.AsyncClient) -> str:
    page = await browser.get("/form")
    found = _CSRF.search(page.text)
    assert found
    return found.group(1)


async def customer(identity_url: str) -> tuple[str, str]:
    email, password = f"session-{uuid.uuid4().hex[:10]}@example.com", "session-pass-1"
    async with httpx.AsyncClient(base_url=identity_url) as identity:
        created = await identity.post("/users", json={"name": "Sol Session", "email": email,
                                                      "password": password})
    assert created.status_code == 201, created.text
    return email, password


async def log_in_as(browser: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await browser.post("/login", data={"csrf_token": await csrf_token(browser),
                                              "email": email, "password": password})


def key_of(session_id: str) -> str:
    return "websession:" + hashlib.sha256(session_id.encode()).hexdigest()


async def stored_session(valkey: redis.Redis, session_id: str) -> dict[str, Any]:
    """The session as stored, opened with the cookie's value as the gateway opens it."""
    raw = await valkey.get(key_of(session_id))
    assert raw is not None, "the session is in Valkey"
    opened = unseal(session_id, raw)
    assert opened is not None, "sealed with the cookie's key"
    stored: dict[str, Any] = json.loads(opened)
    return stored


async def store_session(valkey: redis.Redis, session_id: str, stored: dict[str, Any]
                        ) -> None:
    """Put a changed session back, sealed as the gateway seals it."""
    await valkey.set(key_of(session_id), seal(session_id, json.dumps(stored)))


async def test_only_a_page_with_a_form_starts_a_session(browser: httpx.AsyncClient) -> None:
    plain = await browser.get("/plain")
    form = await browser.get("/form")
    again = await browser.get("/form")
    assert plain.status_code == 200 and "set-cookie" not in plain.headers
    cookie = form.headers["set-cookie"]
    assert re.fullmatch(r"kansoku_session=[A-Za-z0-9_-]{43}; Max-Age=604800; Path=/; "
                        r"HttpOnly; Secure; SameSite=Lax", cookie)
    assert "set-cookie" not in again.headers, "the browser has it already"
    assert _CSRF.search(form.text)


async def test_forged_and_stale_form_posts_are_refused(app: FastAPI,
                                                       browser: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://shop.test") as stranger:
        # Another site's form: no cookie, no token (and a script asking for JSON).
        forged = await stranger.post("/form", data={"anything": "1"})
    token = await csrf_token(browser)
    without_token = await browser.post("/form", data={"anything": "1"})
    wrong_token = await browser.post("/form", data={"csrf_token": token[::-1]})
    right = await browser.post("/form", data={"csrf_token": token})
    for refused in (forged, without_token, wrong_token):
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "This form has expired or was not sent by this site." in refused.text
    assert right.status_code == 303 and right.headers["location"] == "/done"


async def test_sessions_live_in_valkey_under_a_hash_of_the_cookie(
        browser: httpx.AsyncClient, valkey: redis.Redis, identity_url: str) -> None:
    email, password = await customer(identity_url)
    answer = await log_in_as(browser, email, password)
    assert answer.status_code == 303
    session_id = browser.cookies["kansoku_session"]
    assert await valkey.get(f"websession:{session_id}") is None, "the cookie is not a key"
    stored = await stored_session(valkey, session_id)
    assert stored["email"] == email and stored["role"] == "customer"
    assert stored["access_token"] and stored["refresh_token"]
    assert 0 < await valkey.ttl(key_of(session_id)) <= 7 * 24 * 3600
    assert stored["access_token"] not in answer.headers["set-cookie"]
    assert password not in json.dumps(stored)


async def test_logging_in_starts_a_new_session_and_logging_out_ends_it(
        browser: httpx.AsyncClient, valkey: redis.Redis, identity_url: str) -> None:
    await browser.get("/form")
    before = browser.cookies["kansoku_session"]
    email, password = await customer(identity_url)
    await log_in_as(browser, email, password)
    after = browser.cookies["kansoku_session"]
    assert after != before, "an id seen before logging in is worth nothing after"
    assert await valkey.exists(key_of(before)) == 0
    mine = await browser.get("/mine")
    assert mine.status_code == 200 and mine.text.endswith(" customer")

    logout = await browser.post("/logout", data={"csrf_token": await csrf_token(browser)})
    assert logout.headers["set-cookie"].startswith("kansoku_session=; Max-Age=0;")
    assert await valkey.exists(key_of(after)) == 0
    assert (await browser.get("/mine")).status_code == 303


async def test_a_logout_in_another_tab_is_not_undone(
        browser: httpx.AsyncClient, valkey: redis.Redis, identity_url: str) -> None:
    email, password = await customer(identity_url)
    await log_in_as(browser, email, password)
    session_id = browser.cookies["kansoku_session"]
    token = await csrf_token(browser)

    async def log_out_soon() -> httpx.Response:
        await asyncio.sleep(0.2)
        return await browser.post("/logout", data={"csrf_token": token})

    noted, logged_out = await asyncio.gather(browser.get("/slow-notice"), log_out_soon())
    assert noted.status_code == 200 and logged_out.status_code == 303
    assert await valkey.exists(key_of(session_id)) == 0, "the slow request did not revive it"


async def test_wrong_password_is_refused_in_words(browser: httpx.AsyncClient,
                                                  identity_url: str) -> None:
    email, _ = await customer(identity_url)
    answer = await log_in_as(browser, email, "not-the-password")
    assert answer.status_code == 422
    assert answer.text == "The e-mail address or password is wrong."


async def test_expired_access_tokens_are_refreshed_once_for_concurrent_requests(
        browser: httpx.AsyncClient, valkey: redis.Redis, identity_url: str,
        clock: ManualClock) -> None:
    email, password = await customer(identity_url)
    await log_in_as(browser, email, password)
    session_id = browser.cookies["kansoku_session"]
    first = await stored_session(valkey, session_id)
    clock.advance(first["access_expires_at"] - clock.time())  # the token is due now
    # A browser asks for several things at once; refresh tokens work only once.
    answers = await asyncio.gather(*(browser.get("/mine") for _ in range(6)))
    assert [answer.status_code for answer in answers] == [200] * 6
    assert {answer.text for answer in answers} == {f"{first['user_id']} customer"}
    refreshed = await stored_session(valkey, session_id)
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert (await browser.get("/mine")).status_code == 200, "still logged in"


async def test_a_request_that_read_the_session_before_a_refresh_takes_its_tokens(
        app: FastAPI, browser: httpx.AsyncClient, valkey: redis.Redis, identity_url: str,
        clock: ManualClock) -> None:
    """A request that read the session before another refreshed it, and takes the lock
    only after that one let go, must not spend the old (used) refresh token: identity
    would refuse it and the session would be logged out (the race behind a flaky 303)."""
    email, password = await customer(identity_url)
    await log_in_as(browser, email, password)
    session_id = browser.cookies["kansoku_session"]
    first = await stored_session(valkey, session_id)
    clock.advance(first["access_expires_at"] - clock.time())
    gateway = gateway_of(app)
    stale = await gateway.sessions.fetch(session_id)  # read before the refresh …
    assert stale is not None and stale.needs_refresh(clock.time())
    assert (await browser.get("/mine")).status_code == 200  # … another request refreshes
    await gateway.sessions.refresh(stale, gateway.clients.identity, tokens_of(app))
    refreshed = await stored_session(valkey, session_id)
    assert refreshed["user_id"] == first["user_id"], "still logged in"
    assert stale.refresh_token == refreshed["refresh_token"] != first["refresh_token"]
    assert (await browser.get("/mine")).status_code == 200


async def test_a_refused_refresh_logs_the_session_out(
        browser: httpx.AsyncClient, valkey: redis.Redis, identity_url: str) -> None:
    email, password = await customer(identity_url)
    await log_in_as(browser, email, password)
    session_id = browser.cookies["kansoku_session"]
    stored = await stored_session(valkey, session_id)
    stored["refresh_token"] = "revoked"
    stored["access_expires_at"] = 0
    await store_session(valkey, session_id, stored)
    answer = await browser.get("/mine?tab=recent")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/mine%3Ftab%3Drecent"
    assert (await stored_session(valkey, session_id))["user_id"] is None


async def test_admin_pages_need_the_admin_role(browser: httpx.AsyncClient,
                                               identity_url: str) -> None:
    anonymous = await browser.get("/admin-only")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/admin/login?next=/admin-only"
    email, password = await customer(identity_url)
    await log_in_as(browser, email, password)
    refused = await browser.get("/admin-only")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Not allowed" in refused.text and "administrators" in refused.text
    await browser.post("/logout", data={"csrf_token": await csrf_token(browser)})
    await log_in_as(browser, "admin@example.com", "admin-pass-1234")
    assert (await browser.get("/admin-only")).text == "for admins"


async def test_problem_pages_look_the_same_and_keep_their_headers(
        browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        boom = await browser.get("/boom")
    busy = await browser.get("/busy")
    away = await browser.get("/away")
    missing = await browser.get("/nowhere")
    api = await browser.get("/api/v1/thing")

    assert boom.status_code == 500 and boom.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side" in boom.text
    assert boom.headers["x-request-id"] in boom.text
    assert "s3cr3t" not in boom.text and "Traceback" not in boom.text
    assert any("s3cr3t" in (record.exc_text or "") or record.exc_info
               for record in caplog.records), "the traceback went to the log"
    assert busy.status_code == 429 and busy.headers["retry-after"] == "7"
    assert "Too many requests" in busy.text and "try again in 7 s" in busy.text
    assert away.status_code == 503 and away.headers["retry-after"] == "5"
    assert "We\u2019ll be right back" in away.text and "catalog" in away.text
    assert missing.status_code == 404 and "Page not found" in missing.text
    for page in (boom, busy, away, missing):
        assert '<link rel="stylesheet" href="/static/shop.css">' in page.text
        assert '<script src="/static/rum.js" defer></script>' in page.text
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["detail"] == "There is no thing."


def test_next_pages_stay_on_this_site() -> None:
    assert safe_next("/orders?page=2") == "/orders?page=2"
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                      "evil.example", "", None, "javascript:alert(1)"):
        assert safe_next(elsewhere) == "/", elsewhere
