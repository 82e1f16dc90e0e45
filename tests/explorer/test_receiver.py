"""The explorer's OTLP/HTTP receiver: real protobuf in, clear statuses for bad input."""

from __future__ import annotations

import gzip

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings

PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def export_request() -> bytes:
    def attribute(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    root = Span(trace_id=TRACE_ID, span_id=bytes.fromhex("b7ad6b7169203331"), name="GET /",
                kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=1_000_000,
                end_time_unix_nano=5_000_000, attributes=[attribute("enduser.id", "u1")])
    child = Span(trace_id=TRACE_ID, span_id=bytes.fromhex("00f067aa0ba902b7"),
                 parent_span_id=root.span_id, name="SELECT", kind=Span.SPAN_KIND_CLIENT,
                 start_time_unix_nano=2_000_000, end_time_unix_nano=3_000_000)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[attribute("service.name", "shop")]),
        scope_spans=[ScopeSpans(spans=[child, root])],
    )])
    return bytes(request.SerializeToString())


def client(max_spans: int = 1000, max_body_bytes: int = 1 << 20) -> httpx.AsyncClient:
    app = create_app(Settings(max_spans=max_spans, max_body_bytes=max_body_bytes))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_protobuf_spans_are_stored_and_queryable() -> None:
    async with client() as http:
        response = await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-protobuf"
        trace = (await http.get(f"/api/traces/{TRACE_ID.hex()}")).json()["data"]
        services = (await http.get("/api/services")).json()
    names = [span["name"] for span in trace["spans"]]
    assert names == ["GET /", "SELECT"]  # oldest first
    root, child = trace["spans"]
    assert root["parent_span_id"] is None and root["kind"] == "server"
    assert child["parent_span_id"] == root["span_id"]
    assert root["attributes"] == {"enduser.id": "u1"}
    assert root["duration_ms"] == 4.0
    assert services == {"data": ["shop"]}


async def test_gzip_bodies_are_accepted() -> None:
    async with client() as http:
        response = await http.post("/v1/traces", content=gzip.compress(export_request()),
                                   headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 200


async def test_malformed_truncated_and_corrupt_payloads_are_400() -> None:
    async with client() as http:
        garbage = await http.post("/v1/traces", content=b"\xff\xfe not protobuf",
                                  headers=PROTOBUF)
        truncated = await http.post("/v1/traces", content=export_request()[:-7],
                                    headers=PROTOBUF)
        bad_gzip = await http.post("/v1/logs", content=b"not gzip at all",
                                   headers={**PROTOBUF, "Content-Encoding": "gzip"})
        cut_gzip = await http.post("/v1/traces", content=gzip.compress(export_request())[:-9],
                                   headers={**PROTOBUF, "Content-Encoding": "gzip"})
        still_serving = await http.get("/api/stats")
    for response in (garbage, truncated, bad_gzip, cut_gzip):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert still_serving.status_code == 200


async def test_wrong_content_type_is_415_and_oversized_is_413() -> None:
    async with client(max_body_bytes=64) as http:
        wrong_type = await http.post("/v1/metrics", content=b"{}",
                                     headers={"Content-Type": "text/plain"})
        too_big = await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
    assert wrong_type.status_code == 415
    assert "application/x-protobuf" in wrong_type.json()["detail"]
    assert too_big.status_code == 413


async def test_unknown_trace_is_404() -> None:
    async with client() as http:
        response = await http.get("/api/traces/" + "0" * 32)
    assert response.status_code == 404
    assert response.json()["request_id"]


async def test_oldest_traces_are_dropped_past_the_limit() -> None:
    async with client(max_spans=2) as http:
        await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
        first = await http.get(f"/api/traces/{TRACE_ID.hex()}")
        other = export_request().replace(TRACE_ID, bytes(reversed(TRACE_ID)))
        await http.post("/v1/traces", content=other, headers=PROTOBUF)
        dropped = await http.get(f"/api/traces/{TRACE_ID.hex()}")
        stats = (await http.get("/api/stats")).json()
    assert first.status_code == 200
    assert dropped.status_code == 404
    assert stats["spans_kept"] == 2 and stats["received"]["spans"] == 4


async def test_service_names_are_escaped_on_the_page() -> None:
    hostile = export_request().replace(b"shop", b"<b>X")
    async with client() as http:
        await http.post("/v1/traces", content=hostile, headers=PROTOBUF)
        page = await http.get("/")
    assert "<b>X" not in page.text
    assert "&lt;b&gt;X" in page.text
