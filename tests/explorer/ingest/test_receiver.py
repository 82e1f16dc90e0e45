"""The explorer's OTLP/HTTP receiver on a real DuckDB store: protobuf and JSON in, clear
statuses for bad input, back-pressure, what was acknowledged survives a restart."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
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


@asynccontextmanager
async def client(max_body_bytes: int = 1 << 20, db_path: str = ":memory:"
                 ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(max_body_bytes=max_body_bytes, db_path=db_path))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as http:
            yield http
    finally:
        app.state.store.close()


def json_export_request() -> bytes:
    """The same two spans in OTLP/JSON: hex ids, camelCase, enums as numbers."""
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "json-shop"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": TRACE_ID.hex(), "spanId": "b7ad6b7169203331", "name": "GET /json",
            "kind": 2, "startTimeUnixNano": "1000000", "endTimeUnixNano": "3000000",
            "attributes": [{"key": "http.route", "value": {"stringValue": "/json"}}],
            "status": {"code": 2, "message": "boom"}}]}]}]}).encode()


def flat(answer: httpx.Response) -> list[dict[str, object]]:
    spans: list[dict[str, object]] = answer.json()["data"]["spans"]
    return spans


async def test_protobuf_spans_are_stored_and_queryable() -> None:
    async with client() as http:
        response = await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-protobuf"
        spans = flat(await http.get(f"/api/spans/{TRACE_ID.hex()}"))
        jaeger = (await http.get(f"/api/traces/{TRACE_ID.hex()}")).json()["data"]
        services = (await http.get("/api/services")).json()
    assert [span["name"] for span in spans] == ["GET /", "SELECT"]  # oldest first
    root, child = spans
    assert root["parent_span_id"] is None and root["kind"] == "server"
    assert child["parent_span_id"] == root["span_id"]
    # The approach that made it (telemetry.source) is added when the sender named none.
    assert root["attributes"] == {"enduser.id": "u1", "telemetry.source": "otel"}
    assert root["user_id"] == "u1"
    assert root["duration_ns"] == 4_000_000
    assert services["data"] == ["shop"]
    (trace,) = jaeger
    assert trace["traceID"] == TRACE_ID.hex()
    by_name = {span["operationName"]: span for span in trace["spans"]}
    assert by_name["SELECT"]["references"] == [
        {"refType": "CHILD_OF", "traceID": TRACE_ID.hex(), "spanID": "b7ad6b7169203331"}]
    assert by_name["GET /"]["duration"] == 4000  # microseconds, as Jaeger's API has it
    assert trace["processes"][by_name["GET /"]["processID"]]["serviceName"] == "shop"


async def test_otlp_json_is_accepted() -> None:
    async with client() as http:
        response = await http.post("/v1/traces", content=json_export_request(),
                                   headers={"Content-Type": "application/json"})
        spans = flat(await http.get(f"/api/spans/{TRACE_ID.hex()}"))
        errors = (await http.get("/api/traces", params={
            "service": "json-shop", "tags": '{"error": "true"}', "lookback": "1000000h"})
                  ).json()["data"]
    assert response.status_code == 200 and response.json() == {}
    assert spans[0]["service"] == "json-shop" and spans[0]["route"] == "/json"
    assert spans[0]["status"] == "error" and spans[0]["status_message"] == "boom"
    assert [trace["traceID"] for trace in errors] == [TRACE_ID.hex()]


async def test_otlp_json_logs_and_metrics_are_accepted() -> None:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "json-shop"}}]}
    logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1700000000000000000", "severityNumber": 17, "severityText": "ERROR",
        "body": {"stringValue": "payment failed"}, "traceId": TRACE_ID.hex(),
        "spanId": "b7ad6b7169203331",
        "attributes": [{"key": "attempt", "value": {"intValue": "3"}}]}]}]}]}
    metrics = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [
        {"name": "queue.depth", "unit": "{message}", "gauge": {"dataPoints": [
            {"timeUnixNano": "1700000000000000000", "asInt": "42"}]}},
        {"name": "latency", "unit": "s", "histogram": {
            "aggregationTemporality": 2, "dataPoints": [{
                "timeUnixNano": "1700000000000000000", "count": "5", "sum": 1.25,
                "bucketCounts": ["1", "4"], "explicitBounds": [0.1]}]}}]}]}]}
    async with client() as http:
        logged = await http.post("/v1/logs", json=logs)
        measured = await http.post("/v1/metrics", json=metrics)
        found = (await http.get("/api/logs", params={"trace_id": TRACE_ID.hex(),
                                                     "lookback": "1000000h"})).json()
        stats = (await http.get("/api/stats")).json()
    assert logged.status_code == measured.status_code == 200
    (record,) = found["data"]
    assert record["body"] == "payment failed" and record["severity"] == "ERROR"
    assert record["attributes"] == {"attempt": 3}
    assert stats["received"]["metric_points"] == 2


async def test_malformed_otlp_json_is_400_naming_the_problem() -> None:
    def spans(span: object) -> dict[str, object]:
        return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}

    bodies = {
        "not an object": b"[1, 2]",
        "truncated": json_export_request()[:-5],
        "not hex": json.dumps(spans({"traceId": "z" * 32, "spanId": "0" * 16})).encode(),
        "wrong shape": json.dumps({"resourceSpans": "everything"}).encode(),
        "wrong type": json.dumps(spans({"traceId": TRACE_ID.hex(), "spanId": "0" * 16,
                                        "startTimeUnixNano": "soon"})).encode(),
    }
    async with client() as http:
        answers = {name: await http.post("/v1/traces", content=body,
                                         headers={"Content-Type": "application/json"})
                   for name, body in bodies.items()}
        still_serving = await http.get("/api/stats")
    for name, response in answers.items():
        assert response.status_code == 400, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert "is not hex" in answers["not hex"].json()["detail"]
    assert still_serving.json()["received"]["spans"] == 0


async def test_spans_without_proper_ids_are_rejected_partially() -> None:
    request = ExportTraceServiceRequest.FromString(export_request())
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"short"
    async with client() as http:
        response = await http.post("/v1/traces", content=request.SerializeToString(),
                                   headers=PROTOBUF)
        stats = (await http.get("/api/stats")).json()
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200
    assert answer.partial_success.rejected_spans == 1
    assert "16-byte trace id" in answer.partial_success.error_message
    assert stats["received"]["spans"] == 1 and stats["received"]["rejected"] == 1


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
        response = await http.get("/api/traces/" + "f" * 32)
    assert response.status_code == 404
    assert response.json()["request_id"]


async def test_what_was_acknowledged_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "telemetry.duckdb")
    async with client(db_path=path) as http:
        assert (await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
                ).status_code == 200
    async with client(db_path=path) as http:
        spans = flat(await http.get(f"/api/spans/{TRACE_ID.hex()}"))
    assert len(spans) == 2


async def test_a_full_backlog_answers_503_with_retry_after() -> None:
    async with client() as http:
        store = http._transport.app.state.store  # type: ignore[attr-defined]
        store._pending_rows = store.max_pending_rows  # as if the writer were far behind
        busy = await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
        store._pending_rows = 0
        fine = await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert fine.status_code == 200


async def test_retention_deletes_by_age_and_by_size(tmp_path: Path) -> None:
    old = ExportTraceServiceRequest.FromString(export_request())
    for span in old.resource_spans[0].scope_spans[0].spans:
        span.trace_id = bytes(reversed(TRACE_ID))
    recent = ExportTraceServiceRequest.FromString(export_request())
    now = 2_000_000_000_000_000_000
    for span in recent.resource_spans[0].scope_spans[0].spans:
        span.start_time_unix_nano += now
        span.end_time_unix_nano += now
    async with client(db_path=str(tmp_path / "telemetry.duckdb")) as http:
        for request in (old, recent):
            await http.post("/v1/traces", content=request.SerializeToString(),
                            headers=PROTOBUF)
        store = http._transport.app.state.store  # type: ignore[attr-defined]
        # The "old" spans started in 1970, the recent ones in 2033: a day's retention
        # removes the old ones only.
        deleted = store.enforce_retention(max_age_seconds=86400, max_bytes=1 << 40)
        kept = flat(await http.get(f"/api/spans/{TRACE_ID.hex()}"))
        gone = await http.get(f"/api/spans/{bytes(reversed(TRACE_ID)).hex()}")
        # Over the size limit, the oldest go too, until it fits (here: all of it).
        shrunk = store.enforce_retention(max_age_seconds=86400, max_bytes=1)
        emptied = await http.get(f"/api/spans/{TRACE_ID.hex()}")
    assert shrunk == 2 and emptied.status_code == 404
    assert deleted == 2 and len(kept) == 2 and gone.status_code == 404


async def test_spans_from_beyond_2262_are_rejected_not_fatal() -> None:
    request = ExportTraceServiceRequest.FromString(export_request())
    request.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = 2**64 - 1
    async with client() as http:
        response = await http.post("/v1/traces", content=request.SerializeToString(),
                                   headers=PROTOBUF)
        fine = await http.post("/v1/traces", content=export_request(), headers=PROTOBUF)
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200 and fine.status_code == 200
    assert answer.partial_success.rejected_spans == 1
    assert "2262" in answer.partial_success.error_message
