"""The explorer's pages in Chromium at 1280 and 390 pixels wide: nothing wider than the
screen (the sections' navigation wraps, wide tables scroll in their own box), every
section reachable, times in UTC on a 24-hour clock, and metric charts with a time axis,
values in their units and lines up to the right edge. Screenshots:
test-artifacts/screenshots/explorer-layout-<page>-<width>.png."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from playwright.async_api import ViewportSize

from kansoku.explorer.alerts.models import AlertRow, AlertState, StateChange
from kansoku.explorer.alerts.queries import save_alerts
from kansoku.explorer.app import create_app
from kansoku.explorer.pages import SECTIONS
from kansoku.explorer.settings import Settings
from tests.browser import BrowserPage, served
from tests.explorer.test_pages import TRACE, telemetry_of_one_request

S = 1_000_000_000
PROTOBUF = {"Content-Type": "application/x-protobuf"}
WIDTHS: tuple[tuple[str, ViewportSize], ...] = (
    ("1280", {"width": 1280, "height": 900}), ("390", {"width": 390, "height": 844}))
PAGES = {"services": "/", "map": "/map", "traces": "/traces", "trace": f"/traces/{TRACE.hex()}",
         "problems": "/problems", "alerts": "/alerts", "slos": "/slos", "logs": "/logs",
         "metrics": "/charts", "browser": "/browser"}


def _attributes(**values: str) -> list[KeyValue]:
    return [KeyValue(key=key, value=AnyValue(string_value=value))
            for key, value in values.items()]


def metrics_of_the_last_hour(now: int) -> bytes:
    """An export every 10 s for the last hour: memory (bytes), CPU (a utilization) and
    revenue (a counter, in USD)."""
    times = [now - 3600 * S + i * 10 * S for i in range(361)]
    memory = Metric(name="process.memory.usage", unit="By", gauge=Gauge(data_points=[
        NumberDataPoint(time_unix_nano=t, as_double=180e6 + 40e6 * (i % 30) / 30)
        for i, t in enumerate(times)]))
    cpu = Metric(name="process.cpu.utilization", unit="1", gauge=Gauge(data_points=[
        NumberDataPoint(time_unix_nano=t, as_double=0.05 + 0.2 * (i % 12 == 0))
        for i, t in enumerate(times)]))
    revenue = Metric(name="kansoku.orders.revenue", unit="{currency_unit}", sum=Sum(
        aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
        is_monotonic=True, data_points=[
            NumberDataPoint(time_unix_nano=t, as_double=129.99 * i,
                            attributes=_attributes(currency="USD"))
            for i, t in enumerate(times)]))
    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=_attributes(**{"service.name": "orders"})),
        scope_metrics=[ScopeMetrics(metrics=[memory, cpu, revenue])])])
    return bytes(request.SerializeToString())


@pytest.fixture
async def explorer() -> AsyncIterator[str]:
    """An explorer holding a failed request, an hour of metrics and an alert that fired
    and resolved for want of traffic."""
    app = create_app(Settings(db_path=":memory:", alerts_check_seconds=3600))
    now = time.time_ns()
    spans, logs = telemetry_of_one_request()
    labels = {"service": "payments", "severity": "critical"}
    reason = ("No requests in the last 1m: no traffic, so nothing to judge — which is not "
              "a fix.")
    save_alerts(app.state.store,
        [AlertRow("f1", "HighErrorRate", labels, AlertState.RESOLVED, now - 60 * S, now - 300 * S,
                  0.5, "payments failed 50.0 % of its requests over the last 1m",
                  {"resolution": reason, "value_text": "50.0 %", "kind": "error_rate"},
                  None, None)],
        [StateChange(time_ns=now - 300 * S, fingerprint="f1", rule="HighErrorRate",
                     labels=labels, from_state=AlertState.INACTIVE,
                     to_state=AlertState.FIRING, value=0.5, summary="payments failed",
                     reason=None),
         StateChange(time_ns=now - 60 * S, fingerprint="f1", rule="HighErrorRate",
                     labels=labels, from_state=AlertState.FIRING,
                     to_state=AlertState.RESOLVED, value=0.5, summary="payments failed",
                     reason=reason)])
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            for path, body in (("/v1/traces", spans), ("/v1/logs", logs),
                               ("/v1/metrics", metrics_of_the_last_hour(now))):
                assert (await http.post(path, content=body, headers=PROTOBUF)
                        ).status_code == 200
        yield base
    app.state.store.close()


async def test_every_page_fits_the_screen_at_1280_and_390(page: BrowserPage,
                                                          explorer: str) -> None:
    browser = page.page
    for width, viewport in WIDTHS:
        await browser.set_viewport_size(viewport)
        for name, path in PAGES.items():
            await browser.goto(f"{explorer}{path}")
            await browser.wait_for_function(  # the page's script has filled it in
                "!document.getElementById('content').textContent.includes('Loading…')")
            overflow = await browser.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow} px wider than {width} px"
            # Every section's link is inside the screen, none under another.
            boxes = [await link.bounding_box() for link in
                     await browser.get_by_role("navigation", name="Sections")
                     .get_by_role("link").all()]
            assert len(boxes) == len(SECTIONS)
            for box in boxes:
                assert box is not None and box["x"] >= 0
                assert box["x"] + box["width"] <= viewport["width"], f"{path} at {width}"
            await page.screenshot(f"explorer-layout-{name}-{width}", full_page=False)
    assert page.errors == []


async def test_times_are_utc_on_a_24_hour_clock(page: BrowserPage, explorer: str) -> None:
    browser = page.page
    await browser.goto(f"{explorer}/logs")
    cell = browser.get_by_role("row", name=re.compile("the catalog failed")).get_by_role(
        "cell").first
    shown = await cell.inner_text()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", shown), shown
    # The same moment, in UTC, as Python says it.
    logged = await browser.evaluate("fetch('/api/logs').then(r => r.json())")
    moment = time.gmtime(logged["data"][0]["time_ns"] / 1e9)
    assert shown == time.strftime("%H:%M:%S", moment)
    assert await browser.get_by_role("columnheader", name="Time (UTC)").count() == 1
    assert "(UTC)" in await browser.get_by_label(re.compile("Time range")).evaluate(
        "select => select.parentElement.textContent")


async def test_alert_history_says_why_an_alert_resolved(page: BrowserPage,
                                                        explorer: str) -> None:
    browser = page.page
    await browser.goto(f"{explorer}/alerts")
    card = browser.get_by_role("article", name="HighErrorRate resolved")
    assert "Resolved: No requests in the last 1m: no traffic" in await card.inner_text()
    row = browser.get_by_role("row", name=re.compile("Firing → Resolved"))
    assert "which is not a fix" in await row.inner_text()
    await page.screenshot("explorer-alerts-resolution")
    assert page.errors == []


async def test_metric_charts_have_a_time_axis_units_and_reach_the_right_edge(
        page: BrowserPage, explorer: str) -> None:
    browser = page.page
    await browser.set_viewport_size({"width": 1280, "height": 900})
    await browser.goto(f"{explorer}/charts?lookback=1h")
    memory = browser.get_by_role("img", name="Memory in use, bytes")
    cpu = browser.get_by_role("img", name="CPU utilization, %")
    revenue = browser.get_by_role("img", name="Revenue per second")
    for chart in (memory, cpu, revenue):
        await chart.wait_for()
    labels = {name: await chart.locator("text.axis").all_text_contents()
              for name, chart in (("memory", memory), ("cpu", cpu), ("revenue", revenue))}
    assert any(label.endswith("MiB") for label in labels["memory"]), labels["memory"]
    assert any(label.endswith("%") for label in labels["cpu"]), labels["cpu"]
    assert any(label.startswith("$") for label in labels["revenue"]), labels["revenue"]
    # A time axis: 24-hour UTC ticks, in order, and the zone said.
    ticks = [label for label in labels["memory"] if re.fullmatch(r"\d\d:\d\d", label)]
    assert len(ticks) >= 3
    assert await memory.locator("text.axis-title").all_text_contents() == [
        "bytes", "Time (UTC)"]
    assert await revenue.locator("text.axis-title").all_text_contents() == [
        "USD/s", "Time (UTC)"]
    # 129.99 USD every 10 s: 13 a second, on an axis up to $20.
    assert "$20" in labels["revenue"], labels["revenue"]
    # The line runs up to the right edge of the plot: its latest step ends now.
    for chart in (memory, cpu, revenue):
        edge = await chart.evaluate(
            "svg => { const axis = svg.querySelector('line.axis-line');"
            " const ends = [...svg.querySelectorAll('path.series')].map(p => {"
            " const box = p.getBBox(); return box.x + box.width; });"
            " return [Math.max(...ends), Number(axis.getAttribute('x2'))]; }")
        assert edge[0] >= edge[1] - 1, edge
    legend = await revenue.locator("xpath=..").get_by_text("orders · USD", exact=True).count()
    assert legend == 1
    await page.screenshot("explorer-metrics-charts")
    assert page.errors == []
