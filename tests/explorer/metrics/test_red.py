"""RED from the server spans: requests per second over the part of the range the
explorer holds, error %, and p50/p95/p99 per step — checked against figures worked out
here by hand from the spans posted; and the RED board drawn from them in Chromium."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from tests.browser import BrowserPage, served

MS = 1_000_000
S = 1_000_000_000


def requests(now: int) -> bytes:
    """The catalog's ten requests to /products taking 10, 20 … 100 ms, 100 s to 91 s
    ago, and two to /cart, one of them failing with a 500."""
    def server(number: int, route: str, start: int, duration_ms: int, status: int = 200
               ) -> Span:
        return Span(trace_id=number.to_bytes(16, "big"), span_id=number.to_bytes(8, "big"),
                    name=f"GET {route}", kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start,
                    end_time_unix_nano=start + duration_ms * MS,
                    attributes=[KeyValue(key="http.route", value=AnyValue(string_value=route)),
                                KeyValue(key="http.response.status_code",
                                         value=AnyValue(int_value=status))],
                    status=Status(code=Status.STATUS_CODE_ERROR if status >= 500
                                else Status.STATUS_CODE_UNSET))
    spans = [server(i + 1, "/products", now - (100 - i) * S, 10 * (i + 1)) for i in range(10)]
    spans += [server(11, "/cart", now - 95 * S, 5), server(12, "/cart", now - 94 * S, 7, 500)]
    return bytes(ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[KeyValue(key="service.name",
                                               value=AnyValue(string_value="catalog"))]),
        scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString())


async def test_red_rates_are_over_what_the_explorer_holds_and_latency_per_step() -> None:
    app = create_app(Settings(db_path=":memory:"))
    now = time.time_ns()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://explorer") as http:
        assert (await http.post("/v1/traces", content=requests(now), headers={
            "Content-Type": "application/x-protobuf"})).status_code == 200
        [service] = (await http.get("/api/red", params={"lookback": "1h"})).json()["data"]
        routes = {row["route"]: row for row in (await http.get("/api/red", params={
            "service": "catalog", "by_route": "true", "lookback": "1h"})).json()["data"]}
        series = (await http.get("/api/red/series", params={
            "service": "catalog", "route": "/products", "lookback": "15m", "step": "15m"})
            ).json()["data"]
        every_service = (await http.get("/api/red/series", params={
            "lookback": "15m", "step": "15m"})).json()["data"]
    app.state.store.close()

    # The explorer's earliest span is 100 s old: the hour's rate is over those 100 s
    # (not 3600, which would read 0.00), and the answer says so.
    assert 100 <= service["seconds"] < 110
    assert service["rate_per_second"] == pytest.approx(12 / service["seconds"])
    assert service["rate_per_second"] > 0.1
    assert service["error_percent"] == pytest.approx(100 / 12)
    assert routes["/cart"]["error_percent"] == 50.0
    assert routes["/products"]["error_percent"] == 0.0
    # 10, 20 … 100 ms interpolated between neighbours: the median halfway from 50 to 60.
    assert routes["/products"]["p50_ms"] == pytest.approx(55)

    [step] = series
    assert step["requests"] == 10 and step["rate_per_second"] == pytest.approx(10 / 900)
    # p95: 0.95 * 9 = 8.55 places past the first: 90 + 0.55 * 10; p99: 90 + 0.91 * 10.
    assert (step["p50_ms"], step["p95_ms"], step["p99_ms"]) == pytest.approx((55, 95.5, 99.1))
    [all_of_it] = every_service
    assert all_of_it["service"] == "catalog" and all_of_it["requests"] == 12
    assert all_of_it["error_percent"] == pytest.approx(100 / 12)


#: Elements whose right edge is past the window's (outside a table's scrolling box).
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => !e.closest('.table-box') && e.getBoundingClientRect().right > innerWidth + 0.5)
  .map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))"""


async def test_the_red_board_reads_at_1280_and_390_pixels(page: BrowserPage) -> None:
    """The Services page: a rate that is not 0.00, every figure on one line and inside
    the screen (p99 too, at 390 px as a card), and RED charts with titled axes; a
    service's page charts one route's p50/p95/p99."""
    app = create_app(Settings(db_path=":memory:"))
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/traces", content=requests(time.time_ns()), headers={
                "Content-Type": "application/x-protobuf"})).status_code == 200
        browser = page.page
        for width in (1280, 390):
            await browser.set_viewport_size({"width": width, "height": 900})
            await browser.goto(f"{base}/?lookback=1h")
            row = browser.get_by_role("row", name=re.compile("catalog"))
            await row.wait_for()
            # 12 requests over the ~100 s the explorer holds: about 7 a minute.
            rate = browser.locator("td[data-label='Requests']")
            assert re.fullmatch(r"7\.\d+/min", await rate.inner_text()), await rate.inner_text()
            p99 = browser.locator("td[data-label='p99']")
            assert await p99.inner_text() == "99 ms"  # 10 … 100 ms interpolated, rounded
            box = await p99.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
            for cell in await browser.locator("td.num").all():  # "94 ms" on one line
                cell_box = await cell.bounding_box()
                assert cell_box is not None and cell_box["height"] < 60
            if width == 390:  # a card: each figure labelled
                assert "p99" in await p99.evaluate(
                    "td => getComputedStyle(td, '::before').content")
            titles = {"Requests per second, by service": "requests/s",
                      "Errors, % of requests, by service": "% failed",
                      "Latency p95 by service, ms": "ms"}
            for title, axis in titles.items():
                chart = browser.get_by_role("img", name=title)
                await chart.wait_for()
                assert await chart.locator("text.axis-title").all_text_contents() == [
                    axis, "Time (UTC)"]
            assert await browser.evaluate(TOO_WIDE) == []
            await page.screenshot(f"explorer-red-board-{width}")

        await browser.set_viewport_size({"width": 1280, "height": 900})
        await browser.goto(f"{base}/services/catalog?lookback=1h")
        # A route's name opens its slowest traces; its "charts" link draws its RED.
        products = browser.get_by_role("row", name=re.compile(r"^\/products"))
        assert "/traces?service=catalog" in str(await products.get_by_role(
            "link", name="/products").get_attribute("href"))
        await products.get_by_role("link", name="charts").click()
        chart = browser.get_by_role("img", name="Latency p50/p95/p99 of /products, ms")
        await chart.wait_for()
        legend = await chart.locator("xpath=..").locator(".legend .key").all_text_contents()
        assert legend == ["catalog · p50", "catalog · p95", "catalog · p99"]
        await browser.get_by_role("img", name="Errors, % of requests of /products").wait_for()
        await page.screenshot("explorer-red-route")
    app.state.store.close()
    assert page.errors == []


async def test_a_step_without_requests_is_a_rate_of_0_not_a_gap(page: BrowserPage) -> None:
    app = create_app(Settings(db_path=":memory:"))
    now = time.time_ns()
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            # Requests 400 to 391 s ago and 100 to 91 s ago; the 30 s steps between had none.
            for at in (now - 300 * S, now):
                assert (await http.post("/v1/traces", content=requests(at), headers={
                    "Content-Type": "application/x-protobuf"})).status_code == 200
        browser = page.page
        await browser.goto(f"{base}/?lookback=15m")
        chart = browser.get_by_role("img", name="Requests per second, by service")
        await chart.wait_for()
        path = str(await chart.locator("path.series").get_attribute("d"))
        # One line (one move), through every step from the first to the last: some at 0.
        assert path.count("M") == 1 and path.count("L") >= 3, path
        bottom = await chart.locator("line.axis-line").first.get_attribute("y1")
        assert f",{float(str(bottom)):.1f}" in path, (bottom, path)
    app.state.store.close()
    assert page.errors == []
