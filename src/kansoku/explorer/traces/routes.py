"""Traces: Jaeger's query API (services, operations, a search, a trace by id) and
kansoku's `/api/spans/{trace_id}`, a trace with its log records."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import (
    Data,
    JaegerAnswer,
    TraceIdPath,
    checked_trace_id,
    jaeger,
    mib,
    read,
    store_of,
)
from kansoku.explorer.store import TelemetryStore
from kansoku.explorer.traces import queries
from kansoku.explorer.traces.jaeger import jaeger_traces
from kansoku.explorer.traces.models import (
    JaegerTrace,
    Operation,
    TraceQuery,
    TraceSpans,
    TraceWithLogs,
)
from kansoku.kit.durations import parse_duration_ns
from kansoku.kit.errors import Problem, invalid_parameter
from kansoku.kit.i18n import gettext as _
from kansoku.kit.openapi import PROBLEM

router = APIRouter()


@router.get("/api/services", tags=["jaeger"])
async def services(request: Request) -> JaegerAnswer[list[str]]:
    """Services that sent spans."""
    return jaeger(await read(request, queries.services))


@router.get("/api/services/{service}/operations", tags=["jaeger"])
async def service_operations(service: str, request: Request) -> JaegerAnswer[list[str]]:
    """Span names of one service."""
    found = await read(request, queries.operations, service)
    return jaeger(sorted({operation.name for operation in found}))


@router.get("/api/operations", tags=["jaeger"])
async def operations(request: Request, service: Annotated[str, Query(max_length=200)],
                     spanKind: Annotated[str | None, Query()] = None
                     ) -> JaegerAnswer[list[Operation]]:
    """Span names and kinds of one service (optionally of one kind)."""
    found = await read(request, queries.operations, service)
    return jaeger(
        [operation for operation in found if spanKind in (None, "", operation.spanKind)])


#: A search's default number of traces (also for limit=0, as Jaeger takes it).
_DEFAULT_TRACES = 20


#: Jaeger's answer of traces, as JSON.
_TRACES_JSON = TypeAdapter(JaegerAnswer[list[JaegerTrace]])


def _traces_answer(traces: list[JaegerTrace]) -> Response:
    """The traces as JSON, serialized here and not checked again: their shapes are typed
    where they are built (`traces.jaeger`), and checking a big trace's tens of thousands
    of tags once more would cost more than building them (the routes still declare the
    model, for the OpenAPI document)."""
    return Response(_TRACES_JSON.dump_json(jaeger(traces)), media_type="application/json")


@router.get("/api/traces", tags=["jaeger"], response_model=JaegerAnswer[list[JaegerTrace]])
async def find_traces(
    request: Request,
    service: Annotated[str | None, Query(max_length=200)] = None,
    operation: Annotated[str | None, Query(max_length=500)] = None,
    tags: Annotated[str | None, Query(description='JSON object, e.g. {"error":"true"} or '
                                                  '{"otel.status_code":"ERROR"}')] = None,
    minDuration: timerange.SpanDuration | None = None,
    maxDuration: timerange.SpanDuration | None = None,
    limit: Annotated[int, Query(ge=0, le=1500, description=(
        f"Traces at most; 0 means the default, {_DEFAULT_TRACES}"))] = _DEFAULT_TRACES,
    lookback: timerange.Lookback | None = None,
    start: Annotated[int | None, Query(description="microseconds since the epoch")] = None,
    end: Annotated[int | None, Query(description="microseconds since the epoch")] = None,
    exclude: Annotated[list[str] | None, Query(max_length=20, description=(
        "kansoku's own: leave out traces whose root span's name matches this pattern "
        "(* for anything), e.g. 'GET */thumbnail'; up to 20 of them"))] = None,
    minSpans: Annotated[int, Query(ge=1, le=10_000, description=(
        "kansoku's own: leave out traces of fewer spans; 2 hides one-span traces"))] = 1,
) -> Response:
    """The newest traces matching the search, newest first, in Jaeger's shape. The
    answer holds at most KANSOKU_EXPLORER_MAX_ANSWER_BYTES of span data, shared by the
    traces found; a trace cut short says so in its `warnings`."""
    try:
        wanted = json.loads(tags) if tags else {}
    except ValueError as exc:
        raise invalid_parameter("tags", _("tags is not JSON ({error}); send an object "
                                          "such as {example}").format(
            error=exc, example='{"error": "true"}')) from exc
    if not isinstance(wanted, dict):
        raise invalid_parameter("tags", _("tags must be a JSON object"))
    try:
        # At most 2**62 ns (146 years): beyond it DuckDB's BIGINT would overflow.
        minimum = min(parse_duration_ns(minDuration, bare_unit="us", field="minDuration"),
                      2**62) if minDuration else None
    except ValueError as exc:
        raise invalid_parameter("minDuration", str(exc)) from exc
    try:
        maximum = min(parse_duration_ns(maxDuration, bare_unit="us", field="maxDuration"),
                      2**62) if maxDuration else None
    except ValueError as exc:
        raise invalid_parameter("maxDuration", str(exc)) from exc
    start_ns, end_ns = timerange.window(lookback, start, end)
    query = TraceQuery(
        service=service, operation=operation,
        tags=tuple((str(k), str(v).lower() if isinstance(v, bool) else str(v))
                   for k, v in wanted.items()),
        min_duration_ns=minimum, max_duration_ns=maximum, start_ns=start_ns, end_ns=end_ns,
        limit=limit or _DEFAULT_TRACES,
        exclude_roots=tuple(pattern for pattern in exclude or () if pattern.strip()),
        min_spans=minSpans)
    budget: int = request.app.state.settings.max_answer_bytes

    def search(store: TelemetryStore) -> tuple[list[str], TraceSpans]:
        trace_ids = queries.find_trace_ids(store, query)
        share = budget // max(len(trace_ids), 1)
        return trace_ids, queries.spans_of(store, trace_ids, bytes_per_trace=share)

    trace_ids, found = await asyncio.to_thread(search, store_of(request))
    bound = _("a search's answer holds {size} of span data, shared by its {count} traces; "
              "open the trace alone for more").format(size=mib(budget), count=len(trace_ids))
    return _traces_answer(jaeger_traces(found, trace_ids, bound=bound))


def _one_trace(request: Request, trace_id: str) -> TraceSpans:
    """A whole trace, within the bound of one answer."""
    return queries.spans_of(store_of(request), [trace_id],
                            bytes_per_trace=request.app.state.settings.max_answer_bytes)


def _one_trace_bound(request: Request) -> str:
    return _("one trace's answer holds {size} of span data").format(
        size=mib(request.app.state.settings.max_answer_bytes))


@router.get("/api/traces/{trace_id}", tags=["jaeger"],
            response_model=JaegerAnswer[list[JaegerTrace]], responses={404: PROBLEM})
async def trace(trace_id: TraceIdPath, request: Request) -> Response:
    """One trace, in Jaeger's shape (cut short, with `warnings`, past
    KANSOKU_EXPLORER_MAX_ANSWER_BYTES of span data)."""
    wanted = checked_trace_id(trace_id)
    found = await asyncio.to_thread(_one_trace, request, wanted)
    if not found.spans:
        raise Problem(404, "trace-not-found", _("No spans of trace {trace_id} have "
                                                "arrived.").format(trace_id=wanted))
    return _traces_answer(jaeger_traces(found, [wanted], bound=_one_trace_bound(request)))


@router.get("/api/spans/{trace_id}", tags=["kansoku"], response_model=Data[TraceWithLogs],
            responses={404: PROBLEM})
async def trace_with_logs(trace_id: TraceIdPath, request: Request) -> Response:
    """One trace as a flat list of spans (oldest first, every column), with the log
    records written during it. Past KANSOKU_EXPLORER_MAX_ANSWER_BYTES of span data the
    newest spans are left out, and `warnings` says so (as it does past 2,000 log
    records)."""
    wanted = checked_trace_id(trace_id)
    found = await asyncio.to_thread(_one_trace, request, wanted)
    if not found.spans:
        raise Problem(404, "trace-not-found", _("No spans of trace {trace_id} have "
                                                "arrived.").format(trace_id=wanted))
    logs = await read(request, queries.logs_of, wanted, queries.LOGS_OF_A_TRACE + 1)
    cut = found.cut_warning(wanted, len(found.spans), _one_trace_bound(request))
    warnings = [cut] if cut else []
    if len(logs) > queries.LOGS_OF_A_TRACE:
        logs = logs[:queries.LOGS_OF_A_TRACE]
        warnings.append(_("Only the trace's first {count} log records are here: search "
                          "the logs by trace id for the rest.").format(
            count=f"{queries.LOGS_OF_A_TRACE:,}"))
    answer = Data[TraceWithLogs].of({
        "trace_id": wanted, "spans": found.spans, "logs": logs,
        "span_count": found.span_counts.get(wanted, len(found.spans)), "warnings": warnings})
    # Checked once, above; FastAPI would dump and check it again (a trace can hold
    # thousands of spans).
    return Response(answer.model_dump_json(), media_type="application/json")
