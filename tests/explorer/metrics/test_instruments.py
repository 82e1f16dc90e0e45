"""Metrics by instrument, from real OTLP payloads posted to an explorer: a counter as
its rate per second (cumulative with a reset, and delta), a gauge and an up-down counter
as their values, a histogram as p50/p95/p99 interpolated within its buckets — each
checked against figures worked out here by hand from the numbers posted; and the
metrics page, in Chromium, titling and labelling each chart so."""

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
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kansoku.explorer.app import create_app
from kansoku.explorer.metrics import queries
from kansoku.explorer.metrics.models import Instrument, Statistic
from kansoku.explorer.settings import Settings
from kansoku.explorer.store import TelemetryStore
from tests.browser import BrowserPage, served

S = 1_000_000_000
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
#: The first step's start: three minutes ago, so a 15-minute range holds every point.
T0 = time.time_ns() - 180 * S
#: Seconds after T0 of the orders counter's points, and their cumulative values: one point
#: before the window that starts at T0, then a reset (the process restarted) at +25 s.
ORDER_POINTS = ((-5, 100), (5, 130), (15, 160), (25, 20), (35, 50), (45, 80), (55, 95))
#: Request durations' bounds, in seconds, and two cumulative points (+5 s, +15 s) and a
#: third after a reset (+25 s): 9 buckets for 8 bounds, the last above 1 s.
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DURATION_POINTS = ((5, (0, 10, 20, 30, 20, 10, 5, 5, 0)),
                   (15, (0, 10, 70, 60, 30, 15, 8, 7, 0)),
                   (25, (0, 0, 4, 0, 0, 0, 0, 0, 0)))


def _attributes(**values: str) -> list[KeyValue]:
    return [KeyValue(key=key, value=AnyValue(string_value=value))
            for key, value in values.items()]


def _at(seconds: int) -> int:
    return T0 + seconds * S


def _resource_metrics(service: str, *metrics: Metric) -> ResourceMetrics:
    return ResourceMetrics(resource=Resource(attributes=_attributes(**{"service.name": service})),
                           scope_metrics=[ScopeMetrics(metrics=list(metrics))])


def export() -> bytes:
    """The orders service's counter, memory gauge, connection-pool up-down counter and
    duration histogram; the payments service's delta counter."""
    orders = Metric(name="kansoku.orders", unit="{order}", sum=Sum(
        aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[
            NumberDataPoint(time_unix_nano=_at(at), as_int=value) for at, value in ORDER_POINTS]))
    memory = Metric(name="process.memory.usage", unit="By", gauge=Gauge(data_points=[
        NumberDataPoint(time_unix_nano=_at(at), as_double=value)
        for at, value in ((5, 100.0), (15, 300.0), (25, 200.0))]))
    connections = Metric(name="db.client.connections.usage", unit="{connection}", sum=Sum(
        aggregation_temporality=CUMULATIVE, is_monotonic=False, data_points=[
            NumberDataPoint(time_unix_nano=_at(at), as_int=value,
                            attributes=_attributes(state=state))
            for at, state, value in ((5, "used", 3), (15, "used", 5), (25, "used", 2),
                                     (5, "idle", 7), (15, "idle", 5), (25, "idle", 8))]))
    durations = Metric(name="http.server.request.duration", unit="s", histogram=Histogram(
        aggregation_temporality=CUMULATIVE, data_points=[
            HistogramDataPoint(time_unix_nano=_at(at), count=sum(counts), sum=1.0,
                               bucket_counts=counts, explicit_bounds=BOUNDS)
            for at, counts in DURATION_POINTS]))
    payments = Metric(name="kansoku.orders", unit="{order}", sum=Sum(
        aggregation_temporality=DELTA, is_monotonic=True, data_points=[
            NumberDataPoint(time_unix_nano=_at(at), as_int=value)
            for at, value in ((5, 4), (15, 6), (25, 10))]))
    payment_durations = Metric(name="http.server.request.duration", unit="s",
                               histogram=Histogram(aggregation_temporality=DELTA, data_points=[
        HistogramDataPoint(time_unix_nano=_at(at), count=sum(counts), sum=0.1,
                           bucket_counts=counts, explicit_bounds=BOUNDS)
        for at, counts in ((5, (0, 4, 0, 0, 0, 0, 0, 0, 0)), (15, (0, 0, 4, 0, 0, 0, 0, 0, 0)))]))
    request = ExportMetricsServiceRequest(resource_metrics=[
        _resource_metrics("orders", orders, memory, connections, durations),
        _resource_metrics("payments", payments, payment_durations)])
    return bytes(request.SerializeToString())


@pytest.fixture
async def explorer() -> AsyncIterator[tuple[httpx.AsyncClient, TelemetryStore]]:
    app = create_app(Settings(db_path=":memory:"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://explorer") as http:
        answer = await http.post("/v1/metrics", content=export(),
                                 headers={"Content-Type": "application/x-protobuf"})
        assert answer.status_code == 200, answer.text
        yield http, app.state.store
    app.state.store.close()


def _values(series: list[tuple[str, int, float | None]]) -> list[tuple[str, int, float]]:
    return [(service, at, round(value, 6)) for service, at, value in series
            if value is not None]


async def test_a_counter_is_its_rate_per_second_across_a_reset(
        explorer: tuple[httpx.AsyncClient, TelemetryStore]) -> None:
    http, store = explorer
    series = queries.metric_series(store, "kansoku.orders", None, T0, _at(60), 20 * S)
    assert series.instrument == Instrument.COUNTER
    assert {point.statistic for point in series.data} == {Statistic.RATE}
    # orders, cumulative, from the point before the window (100): +30 +30 in the first
    # 20 s; 20 (counted from 0 after the reset) +30 in the second; +30 +15 in the third.
    # payments, delta: 4 + 6 in the first step, 10 in the second.
    assert _values([(p.service, (p.time_ns - T0) // S, p.value) for p in series.data]) == [
        ("orders", 0, 60 / 20), ("payments", 0, 10 / 20),
        ("orders", 20, 50 / 20), ("payments", 20, 10 / 20),
        ("orders", 40, 45 / 20)]

    # Through the API, one 15-minute step: the point before T0 is inside it and the
    # series began there, so it counts in full: 100 + 30 + 30 + 20 + 30 + 30 + 15 = 255.
    answer = (await http.get("/api/metrics/series", params={
        "name": "kansoku.orders", "service": "orders", "lookback": "15m", "step": "15m"}
        )).json()
    assert answer["instrument"] == "counter" and answer["unit"] == "{order}"
    [point] = answer["data"]
    assert point["statistic"] == "rate"
    assert point["value"] == pytest.approx(255 / 900)


async def test_a_gauge_and_an_up_down_counter_are_their_values(
        explorer: tuple[httpx.AsyncClient, TelemetryStore]) -> None:
    http, store = explorer
    memory = queries.metric_series(store, "process.memory.usage", None, T0, _at(40), 20 * S)
    assert memory.instrument == Instrument.GAUGE
    assert [(p.statistic, p.value) for p in memory.data] == [
        (Statistic.VALUE, (100 + 300) / 2), (Statistic.VALUE, 200)]
    pool = queries.metric_series(store, "db.client.connections.usage", None, T0, _at(40),
                                 20 * S, by="state")
    assert pool.instrument == Instrument.UP_DOWN_COUNTER
    # Not an increase per step (which read "8 once, then 0"): connections in use.
    assert [(p.attribute, p.value) for p in pool.data] == [
        ("idle", (7 + 5) / 2), ("used", (3 + 5) / 2), ("idle", 8), ("used", 2)]
    names = {row["name"]: row for row in (await http.get("/api/metrics")).json()["data"]}
    assert {name: row["instrument"] for name, row in names.items()} == {
        "kansoku.orders": "counter", "process.memory.usage": "gauge",
        "db.client.connections.usage": "up_down_counter",
        "http.server.request.duration": "histogram"}
    assert names["kansoku.orders"]["services"] == ["orders", "payments"]


async def test_a_histogram_is_p50_p95_p99_in_its_unit(
        explorer: tuple[httpx.AsyncClient, TelemetryStore]) -> None:
    http, store = explorer
    series = queries.metric_series(store, "http.server.request.duration", "orders", T0,
                                   _at(40), 20 * S)
    assert series.instrument == Instrument.HISTOGRAM and series.unit == "s"
    by_step = {((p.time_ns - T0) // S, p.statistic): p.value for p in series.data}
    # First step: the first point in full and the second's growth = the second point:
    # buckets 0, 10, 70, 60, 30, 15, 8, 7, 0 — 200 measurements.
    # p50, the 100th: 80 lie at or below 0.025 s, so 20 of the 60 in (0.025, 0.05].
    assert by_step[0, Statistic.P50] == pytest.approx(0.025 + 0.025 * 20 / 60)
    # p95, the 190th: 185 at or below 0.25 s, 5 of the 8 in (0.25, 0.5].
    assert by_step[0, Statistic.P95] == pytest.approx(0.25 + 0.25 * 5 / 8)
    # p99, the 198th: 193 at or below 0.5 s, 5 of the 7 in (0.5, 1].
    assert by_step[0, Statistic.P99] == pytest.approx(0.5 + 0.5 * 5 / 7)
    # Second step: the count fell from 200 to 4, a reset: 4 measurements, all in
    # (0.01, 0.025]: the 2nd, 3.8th and 3.96th of them.
    assert by_step[20, Statistic.P50] == pytest.approx(0.01 + 0.015 * 2 / 4)
    assert by_step[20, Statistic.P95] == pytest.approx(0.01 + 0.015 * 3.8 / 4)
    assert by_step[20, Statistic.P99] == pytest.approx(0.01 + 0.015 * 3.96 / 4)

    # payments' delta points, summed: 4 measurements in (0.005, 0.01], 4 in (0.01, 0.025].
    delta = queries.metric_series(store, "http.server.request.duration", "payments", T0,
                                  _at(20), 20 * S)
    assert [p.statistic for p in delta.data] == [Statistic.P50, Statistic.P95, Statistic.P99]
    assert [p.value for p in delta.data] == pytest.approx([
        0.005 + 0.005 * 4 / 4, 0.01 + 0.015 * (7.6 - 4) / 4, 0.01 + 0.015 * (7.92 - 4) / 4])

    answer = (await http.get("/api/metrics/series", params={
        "name": "http.server.request.duration", "service": "orders", "lookback": "15m",
        "step": "15m"})).json()
    assert answer["instrument"] == "histogram" and answer["unit"] == "s"
    values = {point["statistic"]: point["value"] for point in answer["data"]}
    # One step: 204 measurements (the 200 and the 4 after the reset), 84 at or below
    # 0.025 s: the median, the 102nd, is 18 of the 60 in (0.025, 0.05].
    assert values["p50"] == pytest.approx(0.025 + 0.025 * 18 / 60)
    assert values["p95"] == pytest.approx(0.25 + 0.25 * (0.95 * 204 - 189) / 8)
    assert values["p99"] == pytest.approx(0.5 + 0.5 * (0.99 * 204 - 197) / 7)


def test_percentiles_of_buckets_at_the_edges() -> None:
    # All in the last bucket, above the highest bound: nothing says how far above.
    assert queries.percentile_of_buckets(0.5, [1.0, 2.0], [0, 0, 5]) == 2.0
    # The first bucket runs from 0 up to its bound.
    assert queries.percentile_of_buckets(0.5, [10.0, 20.0], [4, 0, 0]) == 5.0
    assert queries.percentile_of_buckets(0.5, [10.0], [0, 0]) is None
    assert queries.percentile_of_buckets(0.5, [], [7]) is None


@pytest.mark.parametrize(("parameters", "field"), [
    ({"name": "kansoku.orders", "step": "later"}, "step"),
    ({"name": "kansoku.orders", "lookback": "soon"}, "lookback"),
    ({}, "name"),
])
async def test_bad_parameters_are_422(explorer: tuple[httpx.AsyncClient, TelemetryStore],
                                      parameters: dict[str, str], field: str) -> None:
    http, _ = explorer
    answer = await http.get("/api/metrics/series", params=parameters)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("step", ["1s", "0s"])
async def test_a_step_too_short_for_the_range_is_widened_to_a_2000th_of_it(
        explorer: tuple[httpx.AsyncClient, TelemetryStore], step: str) -> None:
    http, _ = explorer
    answer = await http.get("/api/metrics/series", params={
        "name": "kansoku.orders", "lookback": "24h", "step": step})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["step_ns"] == -(-(body["end_ns"] - body["start_ns"]) // 2000)
    red = await http.get("/api/red/series", params={"lookback": "24h", "step": step})
    assert red.status_code == 200, red.text


async def test_an_unknown_metric_is_an_empty_series(
        explorer: tuple[httpx.AsyncClient, TelemetryStore]) -> None:
    http, _ = explorer
    answer = (await http.get("/api/metrics/series", params={"name": "no.such"})).json()
    assert answer["instrument"] is None and answer["data"] == []


#: Every element's right edge, and the page's width, against the window's: anything
#: wider than the screen (outside a table's own scrolling box) is named.
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => !e.closest('.table-box') && e.getBoundingClientRect().right > innerWidth + 0.5)
  .map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))"""


async def test_the_metrics_page_titles_and_labels_each_chart_by_instrument(
        page: BrowserPage) -> None:
    app = create_app(Settings(db_path=":memory:"))
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/metrics", content=export(), headers={
                "Content-Type": "application/x-protobuf"})).status_code == 200
        browser = page.page
        for viewport in ({"width": 1280, "height": 900}, {"width": 390, "height": 844}):
            await browser.set_viewport_size(viewport)  # type: ignore[arg-type]
            await browser.goto(f"{base}/charts?lookback=15m")
            charts = {title: browser.get_by_role("img", name=title) for title in (
                "Orders per second, by status", "Memory in use, bytes",
                "Database connections, by state",
                "p50/p95/p99 of http.server.request.duration, ms")}
            for chart in charts.values():
                await chart.wait_for()
            # In their sections, in plain words, with labelled axes.
            assert await browser.get_by_role("region", name="Business").get_by_role(
                "img", name="Orders per second, by status").count() == 1
            assert await browser.get_by_role("region", name="Requests and latency").get_by_role(
                "img", name=re.compile("http.server.request.duration")).count() == 1
            axes = {title: await chart.locator("text.axis-title").all_text_contents()
                    for title, chart in charts.items()}
            assert axes["Orders per second, by status"] == ["orders/s", "Time (UTC)"]
            assert axes["p50/p95/p99 of http.server.request.duration, ms"] == ["ms", "Time (UTC)"]
            latency = charts["p50/p95/p99 of http.server.request.duration, ms"]
            ticks = await latency.locator("text.axis").all_text_contents()
            assert any(tick.endswith(" ms") for tick in ticks), ticks
            legend = await latency.locator("xpath=..").locator(".legend .key"
                                                               ).all_text_contents()
            assert legend == [f"{service} · {statistic}" for service in ("orders", "payments")
                              for statistic in ("p50", "p95", "p99")]
            pool = await charts["Database connections, by state"].locator("xpath=..").locator(
                ".legend").inner_text()
            assert "orders · idle" in pool and "orders · used" in pool
            assert await browser.evaluate(TOO_WIDE) == []
            await page.screenshot(f"explorer-metrics-{viewport['width']}")
    app.state.store.close()
    assert page.errors == []
