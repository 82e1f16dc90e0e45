"""The explorer's routes: the OTLP/HTTP receiver and the first query endpoints."""

from __future__ import annotations

import html
import zlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from kansoku.explorer.store import TelemetryStore
from kansoku.kit.errors import Problem

router = APIRouter()

PROTOBUF = "application/x-protobuf"


async def _decode(request: Request, message: Message) -> None:
    """Read an OTLP/HTTP protobuf body (optionally gzip) into `message`, or raise a Problem."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != PROTOBUF:
        raise Problem(415, "unsupported-media-type",
                      f"Send OTLP as {PROTOBUF}; got '{content_type or 'nothing'}'. "
                      "(OTLP/JSON arrives with the full explorer.)")
    limit: int = request.app.state.settings.max_body_bytes
    # Read at most limit + 1 bytes: an oversized body is refused without holding it all.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "payload-too-large", f"The body is over {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = decompressor.decompress(body, limit + 1)
        except zlib.error as exc:
            raise Problem(400, "bad-encoding", f"The gzip body is corrupt: {exc}.") from exc
        if len(body) > limit:
            raise Problem(413, "payload-too-large", f"The body is over {limit} bytes unzipped.")
        if not decompressor.eof:
            raise Problem(400, "bad-encoding", "The gzip body is truncated.")
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise Problem(400, "malformed-otlp", f"The body is not a valid OTLP message: {exc}."
                      ) from exc


def _store(request: Request) -> TelemetryStore:
    store: TelemetryStore = request.app.state.store
    return store


async def _receive(request: Request, message: Message, store: Callable[[Any], int],
                   answer: Message) -> Response:
    await _decode(request, message)
    store(message)
    return Response(answer.SerializeToString(), media_type=PROTOBUF)


@router.post("/v1/traces", include_in_schema=False)
async def receive_traces(request: Request) -> Response:
    return await _receive(request, ExportTraceServiceRequest(), _store(request).add_traces,
                          ExportTraceServiceResponse())


@router.post("/v1/metrics", include_in_schema=False)
async def receive_metrics(request: Request) -> Response:
    return await _receive(request, ExportMetricsServiceRequest(), _store(request).add_metrics,
                          ExportMetricsServiceResponse())


@router.post("/v1/logs", include_in_schema=False)
async def receive_logs(request: Request) -> Response:
    return await _receive(request, ExportLogsServiceRequest(), _store(request).add_logs,
                          ExportLogsServiceResponse())


@router.get("/api/services")
async def services(request: Request) -> dict[str, Any]:
    """Services that sent spans (Jaeger's shape: `{"data": [...]}`)."""
    return {"data": sorted(_store(request).services)}


@router.get("/api/traces")
async def traces(
    request: Request,
    service: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> dict[str, Any]:
    """The newest traces with a span of `service` (any service if omitted)."""
    found = []
    for trace_id, spans in reversed(_store(request).traces.items()):
        if service is None or any(span["service"] == service for span in spans):
            found.append({"trace_id": trace_id, "spans": _store(request).trace(trace_id)})
            if len(found) == limit:
                break
    return {"data": found}


@router.get("/api/traces/{trace_id}")
async def trace(trace_id: str, request: Request) -> dict[str, Any]:
    """The spans of one trace, oldest first."""
    spans = _store(request).trace(trace_id)
    if not spans:
        raise Problem(404, "trace-not-found", f"No spans of trace {trace_id} have arrived.")
    return {"data": {"trace_id": trace_id.lower(), "spans": spans}}


@router.get("/api/stats")
async def stats(request: Request) -> dict[str, Any]:
    """How much telemetry arrived since the explorer started."""
    store = _store(request)
    return {"received": dict(store.received), "traces_kept": len(store.traces),
            "spans_kept": store.span_count, "services": sorted(store.services)}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request) -> str:
    store = _store(request)
    # Service names come from whoever sends OTLP: escape them.
    services_list = "".join(f"<li>{html.escape(name)}</li>" for name in sorted(store.services))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>kansoku explorer</title></head><body style="font-family:system-ui;margin:2rem">
<h1>kansoku explorer</h1>
<p>Receiving OTLP. Spans: {store.received["spans"]}, metric points:
{store.received["metric_points"]}, log records: {store.received["log_records"]}.</p>
<h2>Services seen</h2><ul>{services_list or "<li>none yet</li>"}</ul>
<p>The full explorer (service map, trace waterfall, logs, problems) is on its way;
meanwhile <a href="/api/stats">/api/stats</a> and <code>/api/traces/&lt;trace id&gt;</code>
answer in JSON.</p></body></html>"""
