"""The lab through the gateway: the public API's `/api/v1/lab/…`, the `/lab` page with
and without its script, and the page in Chromium — with real identity (logins, tokens),
catalog (categories) and lab services over HTTP, on real PostgreSQL and Valkey."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from kansoku.kit.telemetry import Telemetry
from tests.browser import BrowserPage, served
from tests.services.gateway.test_pages import _ACCESSIBILITY_PROBLEMS, Browser
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import free_ports

EXPLORER = "http://explorer.test"
ALICE = ("alice@example.com", "alice-pass-1234")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _lab_traces(name: str) -> Telemetry:
    """The lab traces (into nowhere), so its answers carry a trace id."""
    return Telemetry(name, tracer_provider=TracerProvider()) if name == "lab" else Telemetry(name)


@pytest.fixture(scope="module")
async def lab_shop(postgres_url: str, valkey_url: str, nats_url: str
                   ) -> AsyncIterator[ServedShop]:
    """The lab, with identity for logging in, the catalog for the page's categories, and
    orders (whose tables the lab reads)."""
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "orders", "lab"], telemetry=_lab_traces
                          ) as served:
        yield served


@pytest.fixture(scope="module")
async def gateway(lab_shop: ServedShop) -> AsyncIterator[FastAPI]:
    app = lab_shop.gateway()
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def api(gateway: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                 base_url="http://gw/api/v1", timeout=30) as client:
        yield client


async def log_in(api: httpx.AsyncClient, email: str = ALICE[0], password: str = ALICE[1]
                 ) -> tuple[dict[str, str], str]:
    """An access token's header, and whose it is."""
    tokens = (await api.post("/auth/login", json={"email": email,
                                                  "password": password})).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = (await api.get("/users/me", headers=headers)).json()
    return headers, str(me["id"])


# --- the public API ---------------------------------------------------------------------

async def test_n_plus_one_through_the_gateway_for_the_logged_in_user(
        api: httpx.AsyncClient) -> None:
    headers, user_id = await log_in(api)
    problem = await api.post("/lab/n-plus-one", headers=headers,
                             json={"parameters": {"limit": 20}})
    fixed = await api.post("/lab/n-plus-one/fixed", headers=headers,
                           json={"parameters": {"limit": 20}})
    assert problem.status_code == 200, problem.text
    assert problem.json()["data"]["query_count"] >= 21
    assert fixed.status_code == 200
    assert fixed.json()["data"]["query_count"] <= 2
    for answer in (problem.json(), fixed.json()):
        assert answer["status"] == "success"
        assert answer["user_id"] == user_id, "the gateway filled in the caller"
        assert TRACE_ID.match(answer["trace_id"])
        assert len(answer["data"]["results"]) == 20
    assert problem.json()["data"]["results"] == fixed.json()["data"]["results"]


async def test_the_seeds_request_is_accepted_with_the_callers_own_id(
        api: httpx.AsyncClient) -> None:
    headers, user_id = await log_in(api)
    own = await api.post("/lab/slow-query/fixed", headers=headers, json={
        "user_id": user_id, "parameters": {"limit": 3, "category": "telescopes"}})
    assert own.status_code == 200
    assert [row["category"] for row in own.json()["data"]["results"]] == ["telescopes"] * 3
    other = await api.post("/lab/n-plus-one", headers=headers,
                           json={"user_id": str(uuid.uuid4())})
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"


async def test_a_database_error_is_passed_on_as_the_labs_answer_every_time(
        api: httpx.AsyncClient) -> None:
    headers, user_id = await log_in(api)
    # More in a row than the shop's usual five that open a circuit.
    for _ in range(7):
        answer = await api.post("/lab/database-error", headers=headers)
        assert answer.status_code == 500, answer.text
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["status"] == "error"
        assert body["error"]["sqlstate"] == "42P01"
        assert body["user_id"] == user_id and TRACE_ID.match(body["trace_id"])
    fixed = await api.post("/lab/database-error/fixed", headers=headers)
    assert fixed.status_code == 200 and fixed.json()["status"] == "success"


async def test_the_lab_is_for_logged_in_users(api: httpx.AsyncClient) -> None:
    answer = await api.post("/lab/n-plus-one")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("body", "status", "problem"), [
    ({"parameters": {"limit": 0}}, 422, "validation-error"),
    ({"parameters": {"variant": "sideways"}}, 422, "validation-error"),
    ({"parameters": {"category": "<script>"}}, 422, "validation-error"),
    ({"operation": "n_plus_one"}, 422, "validation-error"),
])
async def test_bad_requests_stop_at_the_gateway(api: httpx.AsyncClient, body: dict[str, Any],
                                                status: int, problem: str) -> None:
    headers, _ = await log_in(api)
    answer = await api.post("/lab/n-plus-one", headers=headers, json=body)
    assert answer.status_code == status
    assert answer.json()["type"].endswith(f"/{problem}")


async def test_the_labs_own_refusals_come_through_as_problems(api: httpx.AsyncClient) -> None:
    headers, _ = await log_in(api)
    answer = await api.post("/lab/slow-query", headers=headers, json={"user_id": "someone"})
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/not-your-user-id")


async def test_without_the_lab_the_gateway_answers_503(lab_shop: ServedShop) -> None:
    (closed,) = free_ports(1)
    app = lab_shop.gateway(lab_url=f"http://127.0.0.1:{closed}")
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw/api/v1") as client:
        headers, _ = await log_in(client)
        answer = await client.post("/lab/n-plus-one", headers=headers)
    assert answer.status_code == 503
    assert answer.json()["dependency"] == "lab"


async def test_the_lab_routes_are_documented_and_the_page_is_not(
        api: httpx.AsyncClient) -> None:
    paths = (await api.get("http://gw/api/openapi.json")).json()["paths"]
    for scenario in ("n-plus-one", "slow-query", "database-error"):
        for path in (f"/api/v1/lab/{scenario}", f"/api/v1/lab/{scenario}/fixed"):
            assert "post" in paths[path]
            assert paths[path]["post"]["tags"] == ["lab"]
    assert not any(path.startswith("/lab") for path in paths)


# --- the page -----------------------------------------------------------------------------

async def test_the_page_is_for_logged_in_users(gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        anonymous = await browser.get("/lab")
        await browser.log_in(*ALICE)
        page = await browser.get("/lab")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/lab"
    assert page.status_code == 200
    assert "<h1>Performance lab</h1>" in page.text
    assert '<script src="/static/lab.js" defer></script>' in page.text
    for scenario in ("n-plus-one", "slow-query", "database-error"):
        assert f'data-run="/lab/run/{scenario}"' in page.text
        assert f'data-run="/lab/run/{scenario}/fixed"' in page.text
        assert f'data-testid="result-{scenario}-fixed"' in page.text
    assert '<option value="telescopes"' in page.text, "categories from the catalog"
    assert f'data-explorer-url="{EXPLORER}"' in page.text


async def test_without_script_the_form_brings_the_page_back_with_the_result(
        gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        await browser.log_in(*ALICE)
        answer = await browser.post("/lab/n-plus-one", {"limit": "20", "category": ""},
                                    token_from="/lab")
        wrong = await browser.post("/lab/n-plus-one/fixed", {"limit": "many"},
                                   token_from="/lab")
        forged = await browser.client.post("/lab/database-error", data={})
    assert answer.status_code == 200
    box = _box(answer.text, "n-plus-one")
    assert "success (HTTP 200)" in box
    assert '<dd data-field="query-count">21</dd>' in box
    assert re.search(rf'href="{EXPLORER}/traces/[0-9a-f]{{32}}"', box)
    assert "not run yet" in _box(answer.text, "n-plus-one-fixed")
    assert wrong.status_code == 422
    assert "Check limit" in _box(wrong.text, "n-plus-one-fixed")
    assert 'value="many"' in wrong.text, "what was typed is shown again"
    assert forged.status_code == 403, "no CSRF token, no run"


def _box(page: str, key: str) -> str:
    found = re.search(rf'data-testid="result-{key}".*?</section>', page, flags=re.S)
    assert found, f"no result box {key}"
    return found.group(0)


async def test_the_script_endpoint_needs_the_session_and_its_csrf_header(
        gateway: FastAPI) -> None:
    async with Browser(gateway) as browser:
        anonymous = await browser.client.post("/lab/run/n-plus-one", json={},
                                              headers={"Accept": "application/json"})
        await browser.log_in(*ALICE)
        token = _CSRF.search((await browser.get("/lab")).text)
        assert token
        json_headers = {"Accept": "application/json"}
        without = await browser.client.post("/lab/run/n-plus-one", json={},
                                            headers=json_headers)
        ran = await browser.client.post("/lab/run/database-error", json={},
                                        headers={**json_headers,
                                                 "X-CSRF-Token": token.group(1)})
        bad = await browser.client.post("/lab/run/n-plus-one", json={"limit": -1},
                                        headers={**json_headers,
                                                 "X-CSRF-Token": token.group(1)})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert without.status_code == 403
    assert without.json()["type"].endswith("/csrf-failed")
    assert ran.status_code == 500 and ran.json()["status"] == "error"
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_the_page_works_in_chromium(lab_shop: ServedShop, page: BrowserPage) -> None:
    async with served(lab_shop.gateway()) as base_url:
        tab = page.page
        await tab.goto(f"{base_url}/lab")
        await tab.get_by_label("E-mail address").fill(ALICE[0])
        await tab.get_by_label("Password").fill(ALICE[1])
        await tab.get_by_label("Password").press("Enter")
        await tab.wait_for_url(f"{base_url}/lab")
        assert await tab.evaluate(_ACCESSIBILITY_PROBLEMS) == []

        async def run(scenario: str, button: str, key: str, status: str) -> dict[str, str]:
            """Click `button` in the scenario's section; the result box once it shows
            `status`."""
            section = tab.locator("section.lab-scenario",
                                  has=tab.locator(f"#{scenario}-title"))
            box = tab.get_by_test_id(f"result-{key}")
            await section.get_by_role("button", name=button).click()
            await box.locator(f'[data-field="status"]:has-text("{status}")').wait_for(
                timeout=20000)
            fields = {name: await box.locator(f'[data-field="{name}"]').inner_text()
                      for name in ("status", "response-time", "query-count", "message")}
            link = box.get_by_role("link", name="Open its trace in the explorer")
            fields["trace"] = await link.get_attribute("href") or ""
            return fields

        problem = await run("n-plus-one", "Run the N+1", "n-plus-one", "success")
        assert problem["query-count"] == "21"
        assert problem["response-time"].endswith(" ms")
        assert problem["message"] == "20 rows returned."
        assert re.fullmatch(rf"{EXPLORER}/traces/[0-9a-f]{{32}}", problem["trace"])
        fixed = await run("n-plus-one", "Run the fix", "n-plus-one-fixed", "success")
        assert fixed["query-count"] == "1"
        assert fixed["trace"] != problem["trace"], "each run is a trace of its own"
        comparison = await tab.locator('[data-comparison="n-plus-one"]').inner_text()
        assert "the problem sent 21 statements" in comparison
        assert "the fix sent 1 statement " in comparison

        error = await run("database-error", "Cause the error", "database-error",
                          "error (HTTP 500)")
        assert "order_summaries" in error["message"] and "42P01" in error["message"]
        assert re.fullmatch(rf"{EXPLORER}/traces/[0-9a-f]{{32}}", error["trace"])
        assert tab.url == f"{base_url}/lab", "the page stayed: the script ran it"
        await page.screenshot("lab_page")
    assert page.errors == []
    # The error answer is a 500 on purpose; nothing else on the page failed to load.
    assert all("/lab/run/database-error" in failed for failed in page.failed_loads), (
        page.failed_loads)
