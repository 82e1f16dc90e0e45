"""The OTLP/HTTP receiver: `/v1/traces`, `/v1/metrics` and `/v1/logs`, protobuf or
JSON, gzipped or not. It decodes off the event loop, hands the rows to the store's
writer and answers once they are committed (partial success for records it could not
keep, 503 with Retry-After while the writer catches up)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from google.protobuf.message import Message
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

from kansoku.explorer.common.responses import store_of
from kansoku.explorer.ingest import otlp
from kansoku.explorer.store import LOGS, METRIC_POINTS, SPANS, Rows, StoreBusy, Table
from kansoku.kit.errors import Problem

router = APIRouter()


#: The export request of one signal.
ExportRequest = TypeVar("ExportRequest", bound=Message)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


async def _body(request: Request) -> tuple[bytes, bool]:
    """The OTLP/HTTP body (gunzipped), and whether it is JSON; Problems for bad input."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (PROTOBUF, JSON):
        raise Problem(415, "unsupported-media-type",
                      f"Send OTLP as {PROTOBUF} or {JSON}; got '{content_type or 'nothing'}'.")
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
        body = _gunzip(body, limit)
    return body, content_type == JSON


def _gunzip(data: bytes, limit: int) -> bytes:
    """`data` unzipped, every member of it: a gzip file may be several members one after
    another (RFC 1952), which read as one, and `zlib` stops after the first. Problems
    for a corrupt or truncated body, or one over `limit` bytes unzipped (never unzipped
    further than that)."""
    parts: list[bytes] = []
    size = 0
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = decompressor.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise Problem(400, "bad-encoding", f"The gzip body is corrupt: {exc}.") from exc
        size += len(part)
        if size > limit:
            raise Problem(413, "payload-too-large", f"The body is over {limit} bytes unzipped.")
        if not decompressor.eof:
            raise Problem(400, "bad-encoding", "The gzip body is truncated.")
        parts.append(part)
        data = decompressor.unused_data
        if not data.strip(b"\0"):  # the end, or the zero padding gzip itself ignores
            return b"".join(parts)


async def _receive(request: Request, table: Table, message: ExportRequest,
                   to_rows: Callable[[ExportRequest], Rows], answer: Message,
                   rejected_field: str) -> Response:
    body, is_json = await _body(request)

    def decode() -> Rows:
        if is_json:
            return otlp.json_rows(table, body)
        otlp.parse(body, message)
        return to_rows(message)

    try:
        # Decoding is CPU work: off the event loop, so queries stay responsive.
        rows = await asyncio.to_thread(decode)
    except otlp.MalformedPayload as exc:
        raise Problem(400, "malformed-otlp",
                      f"The body is not a valid OTLP export request: {exc}") from exc
    try:
        await asyncio.wrap_future(store_of(request).submit(rows))
    except StoreBusy as exc:
        raise Problem(503, "explorer-busy", f"The explorer is catching up ({exc}); send "
                      "again shortly.", headers={"Retry-After": "2"}) from exc
    if rows.rejected:
        partial = answer.partial_success
        setattr(partial, rejected_field, rows.rejected)
        partial.error_message = rows.error
    if is_json:
        return JSONResponse(json_format.MessageToDict(answer))
    return Response(answer.SerializeToString(), media_type=PROTOBUF)


@router.post("/v1/traces", include_in_schema=False)
async def receive_traces(request: Request) -> Response:
    return await _receive(request, SPANS, ExportTraceServiceRequest(), otlp.span_rows,
                          ExportTraceServiceResponse(), "rejected_spans")


@router.post("/v1/metrics", include_in_schema=False)
async def receive_metrics(request: Request) -> Response:
    return await _receive(request, METRIC_POINTS, ExportMetricsServiceRequest(), otlp.metric_rows,
                          ExportMetricsServiceResponse(), "rejected_data_points")


@router.post("/v1/logs", include_in_schema=False)
async def receive_logs(request: Request) -> Response:
    return await _receive(request, LOGS, ExportLogsServiceRequest(), otlp.log_rows,
                          ExportLogsServiceResponse(), "rejected_log_records")
