"""Metrics in the explorer: counters become rates per step and increases over a window,
gauges averages; the funnel and the metrics page are drawn from them."""

from __future__ import annotations

import time

import httpx
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

from kansoku.explorer.app import create_app
from kansoku.explorer.metrics import queries
from kansoku.explorer.settings import Settings
from tests.browser import BrowserPage, served

SECOND = 1_000_000_000
#: Three exports ten seconds apart, a minute or two ago (on a 20 s boundary, so
#: steps of 10 s and 20 s split them predictably).
T0 = (time.time_ns() // (20 * SECOND)) * 20 * SECOND - 80 * SECOND


def _status(value: str) -> list[KeyValue]:
    return [KeyValue(key="status", value=AnyValue(string_value=value))]


def export() -> bytes:
    orders = Metric(name="kansoku.orders", unit="{order}", sum=Sum(
        aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
        is_monotonic=True, data_points=[
            *(NumberDataPoint(time_unix_nano=T0 + i * 10 * SECOND, as_int=value,
                              attributes=_status("placed"))
              for i, value in enumerate((5, 8, 12))),
            *(NumberDataPoint(time_unix_nano=T0 + i * 10 * SECOND, as_int=value,
                              attributes=_status("paid"))
              for i, value in enumerate((4, 6, 9)))]))
    memory = Metric(name="process.memory.usage", unit="By", gauge=Gauge(data_points=[
        NumberDataPoint(time_unix_nano=T0 + i * 10 * SECOND, as_double=value)
        for i, value in enumerate((100.0, 300.0, 200.0))]))
    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=[KeyValue(key="service.name",
                                               value=AnyValue(string_value="orders"))]),
        scope_metrics=[ScopeMetrics(metrics=[orders, memory])])])
    return bytes(request.SerializeToString())


async def test_counters_become_rates_and_gauges_averages(page: BrowserPage) -> None:
    app = create_app(Settings(db_path=":memory:"))
    store = app.state.store
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.post("/v1/metrics", content=export(),
                                     headers={"Content-Type": "application/x-protobuf"})
            assert answer.status_code == 200
            funnel = (await http.get("/api/funnel", params={"lookback": "1h"})).json()["data"]
            names = (await http.get("/api/metrics", params={"lookback": "1h"})).json()["data"]

        # Over a window holding every export, the series began inside it: all 12 count.
        assert queries.metric_increase(store, "kansoku.orders", T0 - SECOND, T0 + 30 * SECOND,
                                       {"status": "placed"}) == 12
        # From after the first export: 12 - 5.
        assert queries.metric_increase(store, "kansoku.orders", T0 + SECOND, T0 + 30 * SECOND,
                                       {"status": "placed"}) == 7
        series = queries.metric_series(store, "kansoku.orders", None, T0, T0 + 30 * SECOND,
                                       10 * SECOND).data
        # The series began in the window: its first step counts in full (5+4), then
        # (8+6)-(5+4) and (12+9)-(8+6); per second of the 10 s steps.
        assert [point.value for point in series] == [0.9, 0.5, 0.7]
        later = queries.metric_series(store, "kansoku.orders", None, T0 + SECOND,
                                      T0 + 30 * SECOND, 10 * SECOND).data
        assert [point.value for point in later] == [0.5, 0.7]  # against the export before
        by_status = queries.metric_series(store, "kansoku.orders", None, T0, T0 + 30 * SECOND,
                                          10 * SECOND, by="status").data
        assert [(point.attribute, point.value) for point in by_status] == [
            ("paid", 0.4), ("placed", 0.5), ("paid", 0.2), ("placed", 0.3), ("paid", 0.3),
            ("placed", 0.4)]
        # Steps count from the range's start: from T0 + 5 s, steps end at T0 + 15 s, 25 s.
        shifted = queries.metric_series(store, "kansoku.orders", None, T0 + 5 * SECOND,
                                        T0 + 25 * SECOND, 10 * SECOND).data
        assert [(point.time_ns - T0) // SECOND for point in shifted] == [5, 15]
        averages = queries.metric_series(store, "process.memory.usage", "orders", T0,
                                         T0 + 30 * SECOND, 20 * SECOND).data
        assert [point.value for point in averages] == [200.0, 200.0]  # (100+300)/2, 200
        by_step = {row["step"]: row["count"] for row in funnel}
        assert by_step["Orders placed"] == 12 and by_step["Orders paid"] == 9
        assert {row["name"] for row in names} == {"kansoku.orders", "process.memory.usage"}

        await page.page.goto(f"{base}/charts?lookback=15m")
        await page.page.get_by_role("img", name="Memory in use, bytes").wait_for()
        funnel_text = await page.page.get_by_role("region", name="Funnel").inner_text()
        assert "Orders placed" in funnel_text and "12" in funnel_text
        await page.screenshot("explorer-metrics")
    store.close()
    assert page.errors == []
