"""RED from the server spans: requests per second over the part of the range the
explorer holds, error %, and p50/p95/p99 per step — checked against figures worked out
here by hand from the spans posted."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings

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
