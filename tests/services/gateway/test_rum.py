"""The gateway's intake for browser telemetry (`POST /rum`): what a page's script sends
arrives in a real explorer, over OTLP, as the explorer's API reads it; what a script must
not send is refused with a problem that says why."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from kansoku.kit import semconv
from kansoku.kit.clock import wall_time
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.rum.pipeline import KnownRoutes
from kansoku.services.gateway.settings import Settings
from kansoku.services.gateway.state import gateway_of
from tests.rum import explorer_in_thread
from tests.support import ManualClock, eventually, free_ports, serve_in_thread


@pytest.fixture(scope="module")
def explorer() -> Iterator[str]:
    with explorer_in_thread() as url:
        yield url


def exporting_to(monkeypatch: pytest.MonkeyPatch, explorer: str, *,
                 batch_delay_ms: int = 100) -> None:
    """OTLP to `explorer`, quickly (the intake's providers read this when created)."""
    for key in [key for key in os.environ if key.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", explorer)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", str(batch_delay_ms))
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", str(batch_delay_ms))
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")


def gateway(valkey_url: str, *, telemetry: bool = True, clock: ManualClock | None = None,
            **settings: Any) -> FastAPI:
    """The real gateway app; its own spans go nowhere, the browser's go to OTLP."""
    (closed,) = free_ports(1)  # no other service is needed by the intake
    return create_app(
        Settings(catalog_url=f"http://127.0.0.1:{closed}", redis_url=valkey_url, **settings),
        Telemetry("gateway", tracer_provider=TracerProvider(), meter_provider=MeterProvider())
        if telemetry else Telemetry("gateway"), clock=clock.time if clock else wall_time)


@asynccontextmanager
async def intake(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://shop") as client:
            yield client
    finally:
        rum = gateway_of(app).rum
        if rum is not None:
            rum.shutdown()


def now_ms() -> float:
    return time.time() * 1000


def beacon(events: list[dict[str, Any]], *, path: str = "/", session_id: str | None = None,
           sent_at: float | None = None) -> dict[str, Any]:
    return {"session_id": session_id or uuid.uuid4().hex, "page_view_id": uuid.uuid4().hex[:16],
            "path": path, "sent_at": sent_at or now_ms(), "events": events}


def vital(name: str, value: float, rating: str = "good") -> dict[str, Any]:
    return {"kind": "web_vital", "time": now_ms(), "name": name, "value": value,
            "rating": rating}


async def explorer_json(explorer: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=explorer) as client:
        return (await client.get(path, params=params)).raise_for_status().json()["data"]


async def test_a_pages_batch_arrives_as_the_explorer_reads_it(
        valkey_url: str, explorer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exporting_to(monkeypatch, explorer)
    path = f"/products/{uuid.uuid4().int % 10**9}"
    trace_id, span_id, session = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex
    started = now_ms() - 900
    events = [
        {"kind": "page_view", "time": started, "navigation_type": "navigate"},
        vital("TTFB", 120.5), vital("FCP", 300.0), vital("LCP", 3100.0, "needs-improvement"),
        vital("CLS", 0.3, "poor"), vital("INP", 80.0),
        {"kind": "click", "time": started + 100, "action": "add-to-cart"},
        {"kind": "span", "trace_id": trace_id, "span_id": span_id, "name": "add-to-cart",
         "start": started + 100, "end": started + 340, "method": "POST",
         "url": "/cart/items", "status_code": 303, "action": "add-to-cart"},
        {"kind": "error", "time": started + 400, "type": "TypeError",
         "message": "price is undefined", "stack": "TypeError: price is undefined\n  at x",
         "source": "/static/shop.js", "line": 12, "column": 3,
         "unhandled_rejection": False, "trace_id": trace_id, "span_id": span_id},
    ]
    async with intake(gateway(valkey_url)) as client:
        # As navigator.sendBeacon sends it: a string, so text/plain.
        answer = await client.post("/rum", content=json.dumps(
            beacon(events, path=path, session_id=session)),
            headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert answer.status_code == 204, answer.text
        assert answer.content == b""

    async def mine() -> list[dict[str, Any]]:
        logs = await explorer_json(explorer, "/api/logs", service="storefront-web",
                                   lookback="15m", limit=1000)
        return [log for log in logs if log["attributes"].get("url.path") == path]

    async def arrived() -> bool:
        traces = await explorer_json(explorer, f"/api/traces/{trace_id}")
        return len(await mine()) == 8 and bool(traces)

    await eventually(arrived, 15, "the batch reaching the explorer")
    vitals = {(log["attributes"]["web_vital.name"], log["attributes"]["web_vital.value"],
               log["attributes"]["web_vital.rating"]) for log in await mine()
              if log["attributes"]["event.name"] == "browser.web_vital"}
    assert vitals == {("TTFB", 120.5, "good"), ("FCP", 300.0, "good"), ("INP", 80.0, "good"),
                      ("LCP", 3100.0, "needs-improvement"), ("CLS", 0.3, "poor")}
    # The Browser page's answer: this page counted under its route template, with the
    # error and its trace (other tests' product pages may share the row).
    data = await explorer_json(explorer, "/api/vitals", lookback="15m")
    assert {row["name"] for row in data["vitals"]
            if row["page"] == "/products/{product_id}"} == {"TTFB", "FCP", "INP", "LCP", "CLS"}
    assert not any(row["page"] == path for row in data["vitals"])
    assert ("price is undefined", trace_id) in {
        (row["message"], row["trace_id"]) for row in data["errors"]
        if row["page"] == "/products/{product_id}"}

    (found,) = await explorer_json(explorer, f"/api/traces/{trace_id}")
    (span,) = found["spans"]
    assert found["processes"][span["processID"]]["serviceName"] == "storefront-web"
    assert (span["spanID"], span["operationName"], span["references"]) == (
        span_id, "add-to-cart", [])
    assert span["duration"] == pytest.approx(240_000, abs=2)  # microseconds
    tags = {tag["key"]: tag["value"] for tag in span["tags"]}
    assert tags["span.kind"] == "client" and tags["session.id"] == session
    assert tags["http.response.status_code"] == 303 and tags["url.path"] == "/cart/items"
    assert tags["kansoku.rum.action"] == "add-to-cart"
    resource = {tag["key"]: tag["value"]
                for tag in found["processes"][span["processID"]]["tags"]}
    assert resource["service.namespace"] == "kansoku"

    logs = await explorer_json(explorer, "/api/logs", service="storefront-web",
                               lookback="15m", limit=1000)
    mine_logs = [log for log in logs if log["attributes"].get("url.path") == path]
    assert sorted(log["attributes"]["event.name"] for log in mine_logs) == sorted(
        ["browser.page_view", "browser.click", "browser.error"] + ["browser.web_vital"] * 5)
    for log in mine_logs:
        assert log["attributes"]["session.id"] == session
        # The page's route template, found by the intake: what pages are grouped by.
        assert log["attributes"]["url.template"] == "/products/{product_id}"
    (lcp,) = [log for log in mine_logs if log["attributes"].get("web_vital.name") == "LCP"]
    assert lcp["body"] == f"LCP 3100 ms on {path} (needs-improvement)"
    assert lcp["attributes"]["web_vital.rating"] == "needs-improvement"

    async def metrics_arrived() -> bool:
        names = {row["name"] for row in await explorer_json(explorer, "/api/metrics")}
        return {semconv.METRIC_WEB_VITALS["LCP"], semconv.METRIC_PAGE_VIEWS, semconv.METRIC_ERRORS,
                semconv.METRIC_KEY_ACTIONS, semconv.METRIC_ACTION_DURATION} <= names

    # The intake's shutdown (in `intake`) flushed the metrics.
    await eventually(metrics_arrived, 10, "the browser metrics reaching the explorer")


def test_a_pages_path_is_filed_under_the_gateways_route_for_it(valkey_url: str) -> None:
    """The intake finds each page's route template from its path, among the gateway's
    own routes: every product page is one group, a fixed path is not a template's, and
    a path the gateway has no page for has none (its metrics count as `other`)."""
    app, routes = gateway(valkey_url, telemetry=False), KnownRoutes()
    order = uuid.uuid4()
    assert {path: routes.template_of(app, path) for path in (
        "/", "/products/1", "/products/42", f"/orders/{order}", f"/orders/{order}/confirmation",
        "/admin/products/new", "/admin/products/7", "/lab", "/nowhere/at/all")} == {
        "/": "/", "/products/1": "/products/{product_id}",
        "/products/42": "/products/{product_id}", f"/orders/{order}": "/orders/{order_id}",
        f"/orders/{order}/confirmation": "/orders/{order_id}/confirmation",
        "/admin/products/new": "/admin/products/new",
        "/admin/products/7": "/admin/products/{product_id}", "/lab": "/lab",
        "/nowhere/at/all": None}


async def test_a_browser_with_a_wrong_clock_is_put_right(
        valkey_url: str, explorer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exporting_to(monkeypatch, explorer)
    hour = 3_600_000.0
    wrong_now = now_ms() - hour  # the browser's clock is an hour behind
    trace_id = uuid.uuid4().hex
    span = {"kind": "span", "trace_id": trace_id, "span_id": uuid.uuid4().hex[:16],
            "name": "place-order", "start": wrong_now - 500, "end": wrong_now - 100,
            "method": "POST", "url": "/checkout", "status_code": 200}
    async with intake(gateway(valkey_url)) as client:
        answer = await client.post("/rum", json=beacon([span], sent_at=wrong_now))
        assert answer.status_code == 204, answer.text

    async def arrived() -> bool:
        async with httpx.AsyncClient(base_url=explorer) as http:
            return (await http.get(f"/api/traces/{trace_id}")).status_code == 200

    await eventually(arrived, 15, "the span reaching the explorer")
    (found,) = await explorer_json(explorer, f"/api/traces/{trace_id}")
    started_ms = found["spans"][0]["startTime"] / 1000
    assert now_ms() - 5000 < started_ms + 500 < now_ms() + 100


async def test_the_intake_flushes_when_the_gateway_stops(
        valkey_url: str, explorer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches wait a minute before export: only the shutdown can have sent this one.
    exporting_to(monkeypatch, explorer, batch_delay_ms=60_000)
    path = f"/cart/{uuid.uuid4().hex[:8]}"
    app = gateway(valkey_url)
    with serve_in_thread(app, lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.post("/rum", json=beacon([vital("LCP", 900.0)], path=path))
            assert answer.status_code == 204, answer.text
    data = await explorer_json(explorer, "/api/vitals", lookback="15m")
    assert [row["name"] for row in data["vitals"] if row["page"] == path] == ["LCP"]


async def test_without_telemetry_the_intake_checks_and_drops(valkey_url: str) -> None:
    app = gateway(valkey_url, telemetry=False)
    assert gateway_of(app).rum is None
    async with intake(app) as client:
        good = await client.post("/rum", json=beacon([vital("LCP", 900.0)]))
        bad = await client.post("/rum", json=beacon([{"kind": "keystroke"}]))
    assert (good.status_code, bad.status_code) == (204, 422)


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["request_id"] == answer.headers["x-request-id"]
    assert "Traceback" not in answer.text
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


async def test_bad_batches_are_refused_saying_why(valkey_url: str) -> None:
    ok = beacon([vital("CLS", 0.01)])
    async with intake(gateway(valkey_url, rum_max_body_bytes=16384)) as client:
        not_json = problem(await client.post("/rum", content=b"{events: [",
                                             headers={"Content-Type": "application/json"}),
                           400)
        assert not_json["detail"].startswith("The body is not JSON")
        problem(await client.post("/rum", content=b"\xff\xfe",
                                  headers={"Content-Type": "text/plain"}), 400)
        too_big = problem(await client.post(
            "/rum", json=beacon([vital("LCP", 1.0)] * 300)), 413)
        assert too_big["limit"] == 16384
        # Without a Content-Length (a stream), the limit still holds while reading.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b" " * 1000
        problem(await client.post("/rum", content=chunks(),
                                  headers={"Content-Type": "application/json"}), 413)
        problem(await client.post("/rum", data={"events": "[]"}), 415)
        problem(await client.post("/rum", content=b"<beacon/>",
                                  headers={"Content-Type": "application/xml"}), 415)
        assert (await client.get("/rum")).status_code == 405
        refused = problem(await client.post("/rum", json=ok, headers={
            "Sec-Fetch-Site": "cross-site"}), 403)
        assert "own pages" in refused["detail"]

        async def unprocessable(body: Any) -> list[str]:
            return error_fields(problem(await client.post("/rum", json=body), 422))

        assert await unprocessable(beacon([{"kind": "keystroke", "time": now_ms(),
                                            "key": "4"}])) == ["events.0"]
        assert await unprocessable({**ok, "form": {"card_number": "4111"}}) == ["form"]
        assert await unprocessable({**ok, "events": []}) == ["events"]
        assert await unprocessable({**ok, "events": [vital("LCP", 1.0)] * 101}) == ["events"]
        assert await unprocessable({**ok, "session_id": "Robert'); DROP"}) == ["session_id"]
        assert await unprocessable({**ok, "path": "/search?q=my+address"}) == ["path"]
        assert await unprocessable(beacon([{**vital("LCP", 1.0), "value": "1"}])) == [
            "events.0.web_vital.value"]
        assert await unprocessable(beacon([{**vital("LCP", 1.0), "name": "TTI"}])) == [
            "events.0.web_vital.name"]
        assert await unprocessable(beacon([{
            "kind": "error", "time": now_ms(), "type": "Error", "message": "x" * 1001,
            "unhandled_rejection": False}])) == ["events.0.error.message"]
        span = {"kind": "span", "trace_id": "0" * 32, "span_id": "1" * 16, "name": "x",
                "start": now_ms() - 10, "end": now_ms(), "method": "POST", "url": "/",
                "status_code": 200}
        assert await unprocessable(beacon([span])) == ["events.0.span.trace_id"]
        backwards = {**span, "trace_id": "a" * 32, "start": now_ms(), "end": now_ms() - 10}
        assert await unprocessable(beacon([backwards])) == ["events.0.span"]
        last_year = {**vital("LCP", 1.0), "time": now_ms() - 400 * 86_400_000}
        assert await unprocessable(beacon([last_year])) == ["body"]
        # Nothing a batch says is echoed back (it could be anything).
        echoed = await client.post("/rum", json={**ok, "path": "<script>alert(1)</script>"})
        assert "<script>" not in echoed.text
        assert (await client.post("/rum", json=ok)).status_code == 204


async def test_rates_are_limited_per_session_and_per_address(valkey_url: str) -> None:
    # A Valkey database of its own, so other tests' batches from this address do not count.
    own_db = valkey_url.rsplit("/", 1)[0] + "/7"
    async with redis.from_url(own_db) as valkey:
        await valkey.flushdb()
    # Limits count per clock minute: a clock that stands still turns no window mid-test.
    clock = ManualClock()
    async with intake(gateway(own_db, rum_rate_per_session=3, rum_rate_per_address=8,
                              clock=clock)) as client:
        session = uuid.uuid4().hex
        answers = [await client.post("/rum", json=beacon([vital("TTFB", 90.0)],
                                                          session_id=session))
                   for _ in range(4)]
        assert [a.status_code for a in answers] == [204, 204, 204, 429]
        limited = problem(answers[-1], 429)
        assert "session" in limited["detail"] and int(answers[-1].headers["retry-after"]) > 0
        # Another tab (session) from the same address, until the address's own limit.
        others = [(await client.post("/rum", json=beacon([vital("TTFB", 90.0)]))).status_code
                  for _ in range(5)]
        assert others == [204, 204, 204, 204, 429]
        assert "address" in problem(await client.post(
            "/rum", json=beacon([vital("TTFB", 90.0)])), 429)["detail"]
