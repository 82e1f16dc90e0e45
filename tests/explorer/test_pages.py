"""The explorer's pages in Chromium: they draw what the API holds, show names sent by
anyone as text (never as markup), and raise no JavaScript error."""

from __future__ import annotations

import re
import time

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import (
    LogRecord,
    ResourceLogs,
    ScopeLogs,
    SeverityNumber,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from tests.browser import BrowserPage, served

TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
HOSTILE = '<img src=x onerror="alert(1)">'


def _attribute(key: str, value: str | int) -> KeyValue:
    any_value = (AnyValue(int_value=value) if isinstance(value, int)
                 else AnyValue(string_value=value))
    return KeyValue(key=key, value=any_value)


def _resource(service: str) -> Resource:
    return Resource(attributes=[_attribute("service.name", service)])


def telemetry_of_one_request() -> tuple[bytes, bytes]:
    """A gateway request calling a catalog that queries PostgreSQL and fails, and a log
    record of it — recent, so the default time range shows it."""
    now = time.time_ns() - 2_000_000_000
    gateway = Span(trace_id=TRACE, span_id=bytes.fromhex("0000000000000001"),
                   name="GET /api/v1/products/{product_id}", kind=Span.SPAN_KIND_SERVER,
                   start_time_unix_nano=now, end_time_unix_nano=now + 90_000_000,
                   attributes=[_attribute("http.route", "/api/v1/products/{product_id}"),
                               _attribute("http.response.status_code", 500),
                               _attribute("enduser.id", "user-1")],
                   status=Status(code=Status.STATUS_CODE_ERROR))
    catalog = Span(trace_id=TRACE, span_id=bytes.fromhex("0000000000000002"),
                   parent_span_id=gateway.span_id, name=HOSTILE, kind=Span.SPAN_KIND_SERVER,
                   start_time_unix_nano=now + 5_000_000, end_time_unix_nano=now + 80_000_000)
    query = Span(trace_id=TRACE, span_id=bytes.fromhex("0000000000000003"),
                 parent_span_id=catalog.span_id, name="SELECT", kind=Span.SPAN_KIND_CLIENT,
                 start_time_unix_nano=now + 10_000_000, end_time_unix_nano=now + 70_000_000,
                 attributes=[_attribute("db.system", "postgresql"),
                             _attribute("db.statement", "SELECT * FROM products WHERE id = $1")])
    spans = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=_resource("gateway"), scope_spans=[ScopeSpans(spans=[gateway])]),
        ResourceSpans(resource=_resource(HOSTILE),
                      scope_spans=[ScopeSpans(spans=[catalog, query])]),
    ])
    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=_resource("gateway"), scope_logs=[ScopeLogs(log_records=[LogRecord(
            time_unix_nano=now + 1_000_000, severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
            severity_text="ERROR",
            body=AnyValue(string_value="the catalog failed"), trace_id=TRACE,
            span_id=gateway.span_id)])])])
    return spans.SerializeToString(), logs.SerializeToString()


async def test_every_page_draws_the_data_and_keeps_names_as_text(page: BrowserPage) -> None:
    app = create_app(Settings(db_path=":memory:"))
    spans, logs = telemetry_of_one_request()
    protobuf = {"Content-Type": "application/x-protobuf"}
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/traces", content=spans, headers=protobuf)
                    ).status_code == 200
            assert (await http.post("/v1/logs", content=logs, headers=protobuf)
                    ).status_code == 200
        browser = page.page

        await browser.goto(f"{base}/")
        table = browser.get_by_role("table")
        await table.get_by_role("link", name="gateway").wait_for()
        assert "100.0 %" in await table.inner_text()  # the one request failed
        assert await browser.get_by_text(HOSTILE).count() >= 1, "shown as text"
        await page.screenshot("explorer-services")

        await browser.goto(f"{base}/map")
        await browser.get_by_role("img", name="Service map").wait_for()
        nodes = browser.locator("svg.map a.node")
        await nodes.first.wait_for()
        ids = await nodes.evaluate_all("nodes => nodes.map((node) => node.dataset.id)")
        assert {"gateway", HOSTILE, "postgresql"} <= set(ids)
        assert HOSTILE in await nodes.locator("text").all_text_contents()
        await page.screenshot("explorer-map")

        await browser.goto(f"{base}/traces?service=gateway")
        await browser.get_by_role("link", name="gateway: GET /api/v1/products/{product_id}"
                                  ).click()
        await browser.get_by_role("button", name="SELECT").wait_for()
        await browser.get_by_role("button", name="SELECT").click()
        assert await browser.locator("pre.sql").inner_text() == (
            "SELECT * FROM products WHERE id = $1")
        assert await browser.get_by_role("cell", name="the catalog failed").count() >= 1
        await page.screenshot("explorer-trace")

        await browser.goto(f"{base}/logs?min_severity=17")
        await browser.get_by_role("cell", name="the catalog failed").wait_for()
        await browser.get_by_role("link", name=TRACE.hex()[:8]).click()
        await browser.wait_for_url(f"{base}/traces/{TRACE.hex()}")
    app.state.store.close()
    assert page.errors == []


async def test_the_traces_page_hides_pictures_and_one_span_traces_and_says_what_it_left_out(
        page: BrowserPage) -> None:
    """By default the list leaves out the storefront's pictures (a trace each) and
    one-span traces; "show all" brings them back. A trace larger than the list's answer
    holds comes cut short, and the list and the trace's page say so."""
    from tests.explorer.traces.test_jaeger import big_trace, export, span

    app = create_app(Settings(db_path=":memory:", max_answer_bytes=256 * 1024))
    picture = [span(1, 10, name="GET /api/v1/products/{product_id}/thumbnail"),
               span(1, 11, parent=10, name="SELECT")]
    signing_keys = [span(3, 30, name="GET /.well-known/jwks.json")]
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            for spans in (picture, signing_keys, big_trace(2, 400)):
                assert (await http.post("/v1/traces", content=export(spans), headers={
                    "Content-Type": "application/json"})).status_code == 200
        browser = page.page
        await browser.goto(f"{base}/traces")
        cut = browser.get_by_text(re.compile("This answer holds the first .* of the trace's "
                                             "400 spans"))
        await cut.wait_for()
        thumbnail = browser.get_by_role("link", name=re.compile("thumbnail"))
        keys = browser.get_by_role("link", name=re.compile("jwks"))
        assert await thumbnail.count() == 0 and await keys.count() == 0
        await browser.get_by_label(re.compile("show all traces")).check()
        await browser.get_by_role("button", name="Search").click()
        await thumbnail.wait_for()
        await keys.wait_for()
        assert "all=true" in browser.url
        await browser.get_by_role("link", name="gateway: GET /products").click()
        note = browser.get_by_role("note")
        await note.wait_for()
        assert "of the trace's 400 spans: one trace's answer holds 256 KiB" in (
            await note.inner_text())
    app.state.store.close()
    assert page.errors == []


async def test_a_trace_made_by_two_instrumentations_says_which_made_each_span(
        page: BrowserPage) -> None:
    """A checkout crossing an OpenTelemetry service and an X-Ray one: each span is marked
    with what made it, the trace says how many each made, and an X-Ray span says what its
    SDK names differently."""
    from tests.explorer.traces.test_jaeger import export, span

    app = create_app(Settings(db_path=":memory:"))
    trace = 7
    otel = [span(trace, 70, name="POST /orders"), span(trace, 71, parent=70, name="GET")]
    xray = [span(trace, 72, parent=71, name="GET /products/7",
                 attributes={"telemetry.source": "xray"})]
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            for spans, service in ((otel, "orders"), (xray, "catalog")):
                assert (await http.post("/v1/traces", content=export(spans, service),
                                        headers={"Content-Type": "application/json"})
                        ).status_code == 200
        browser = page.page
        await browser.goto(f"{base}/traces/{trace:032x}")
        summary = browser.locator("p.sources")
        await summary.wait_for()
        assert await summary.inner_text() == (
            "Made by OpenTelemetry (2 spans), AWS X-Ray SDK (1 span)")
        badges = await browser.locator(".span-row .source").all_inner_texts()
        assert sorted(badges) == ["AWS X-Ray SDK", "OpenTelemetry", "OpenTelemetry"]
        await browser.get_by_role("button", name="GET /products/7").click()
        assert await browser.get_by_text(re.compile("names a request after its URL path")
                                         ).count() == 1
        await page.screenshot("explorer-trace-two-instrumentations")
    app.state.store.close()
    assert page.errors == []
