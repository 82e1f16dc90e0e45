"""The explorer's routes: the OTLP/HTTP receiver, the Jaeger-compatible query API, and
kansoku's own JSON endpoints (RED, service map, logs, one trace with its logs, problems,
alerts and SLOs)."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
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

from kansoku.explorer import alerts, otlp, problems, queries, slos
from kansoku.explorer.schemas import AlertHistory, Alerts, Problems, Slos
from kansoku.explorer.store import StoreBusy, TelemetryStore
from kansoku.kit import semconv
from kansoku.kit.durations import DurationError, parse_duration_ns
from kansoku.kit.errors import Problem

router = APIRouter()

alerts_state = Literal["pending", "firing", "resolved"]

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


def _store(request: Request) -> TelemetryStore:
    store: TelemetryStore = request.app.state.store
    return store


async def _receive(request: Request, table: str, message: Message,
                   to_rows: Callable[[Any], otlp.Rows], answer: Message,
                   rejected_field: str) -> Response:
    body, is_json = await _body(request)

    def decode() -> otlp.Rows:
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
        await asyncio.wrap_future(_store(request).submit(rows))
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
    return await _receive(request, "spans", ExportTraceServiceRequest(), otlp.span_rows,
                          ExportTraceServiceResponse(), "rejected_spans")


@router.post("/v1/metrics", include_in_schema=False)
async def receive_metrics(request: Request) -> Response:
    return await _receive(request, "metric_points", ExportMetricsServiceRequest(), otlp.metric_rows,
                          ExportMetricsServiceResponse(), "rejected_data_points")


@router.post("/v1/logs", include_in_schema=False)
async def receive_logs(request: Request) -> Response:
    return await _receive(request, "logs", ExportLogsServiceRequest(), otlp.log_rows,
                          ExportLogsServiceResponse(), "rejected_log_records")


# --- the Jaeger query API (Grafana's Jaeger data source speaks it) --------------------

_DEFAULT_LOOKBACK_NS = 3_600_000_000_000  # an hour


def _window(lookback: str | None, start: int | None, end: int | None) -> tuple[int, int]:
    """(start, end) in ns from Jaeger's parameters: start/end in microseconds, or a
    lookback such as '1h' before now (default: the last hour)."""
    end_ns = end * 1000 if end else time.time_ns()
    if start:
        return start * 1000, end_ns
    if not lookback or lookback == "custom":  # Jaeger's UI sends "custom" with start/end
        return end_ns - _DEFAULT_LOOKBACK_NS, end_ns
    try:
        # A bare number is microseconds in Jaeger's API, as its timestamps are.
        span = parse_duration_ns(lookback, bare_unit="us", field="lookback")
    except DurationError as exc:
        raise Problem(400, "bad-parameter", str(exc), field="lookback") from exc
    return end_ns - span, end_ns


def _jaeger(data: Any) -> dict[str, Any]:
    return {"data": data, "total": len(data) if isinstance(data, list) else 0,
            "limit": 0, "offset": 0, "errors": None}


async def _read(request: Request, query: Callable[..., Any], *args: Any, **kwargs: Any
                ) -> Any:
    return await asyncio.to_thread(query, _store(request), *args, **kwargs)


@router.get("/api/services", tags=["jaeger"])
async def services(request: Request) -> dict[str, Any]:
    """Services that sent spans."""
    return _jaeger(await _read(request, queries.services))


@router.get("/api/services/{service}/operations", tags=["jaeger"])
async def service_operations(service: str, request: Request) -> dict[str, Any]:
    """Span names of one service."""
    found = await _read(request, queries.operations, service)
    return _jaeger(sorted({row["name"] for row in found}))


@router.get("/api/operations", tags=["jaeger"])
async def operations(request: Request, service: Annotated[str, Query(max_length=200)],
                     spanKind: Annotated[str | None, Query()] = None
                     ) -> dict[str, Any]:
    """Span names and kinds of one service (optionally of one kind)."""
    found = await _read(request, queries.operations, service)
    return _jaeger([{"name": row["name"], "spanKind": row["kind"]} for row in found
                    if spanKind in (None, "", row["kind"])])


#: A search's default number of traces (also for limit=0, as Jaeger takes it).
_DEFAULT_TRACES = 20


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


@router.get("/api/traces", tags=["jaeger"])
async def find_traces(
    request: Request,
    service: Annotated[str | None, Query(max_length=200)] = None,
    operation: Annotated[str | None, Query(max_length=500)] = None,
    tags: Annotated[str | None, Query(description='JSON object, e.g. {"error":"true"} or '
                                                  '{"otel.status_code":"ERROR"}')] = None,
    minDuration: Annotated[str | None, Query(description="e.g. 250ms, 1m30s")] = None,
    maxDuration: Annotated[str | None, Query(description="e.g. 2s")] = None,
    limit: Annotated[int, Query(ge=0, le=1500, description=(
        f"Traces at most; 0 means the default, {_DEFAULT_TRACES}"))] = _DEFAULT_TRACES,
    lookback: Annotated[str | None, Query(description="e.g. 1h, 1h30m, 2d")] = None,
    start: Annotated[int | None, Query(description="microseconds since the epoch")] = None,
    end: Annotated[int | None, Query(description="microseconds since the epoch")] = None,
    exclude: Annotated[list[str] | None, Query(max_length=20, description=(
        "kansoku's own: leave out traces whose root span's name matches this pattern "
        "(* for anything), e.g. 'GET */thumbnail'; up to 20 of them"))] = None,
) -> dict[str, Any]:
    """The newest traces matching the search, newest first, in Jaeger's shape. The
    answer holds at most KANSOKU_EXPLORER_MAX_ANSWER_BYTES of span data, shared by the
    traces found; a trace cut short says so in its `warnings`."""
    try:
        try:
            wanted = json.loads(tags) if tags else {}
        except ValueError as exc:
            raise ValueError(f"tags is not JSON ({exc}); send an object such as "
                             '{"error": "true"}') from exc
        if not isinstance(wanted, dict):
            raise ValueError("tags must be a JSON object")
        minimum = parse_duration_ns(minDuration, bare_unit="us", field="minDuration"
                                    ) if minDuration else None
        maximum = parse_duration_ns(maxDuration, bare_unit="us", field="maxDuration"
                                    ) if maxDuration else None
    except ValueError as exc:
        raise Problem(400, "bad-parameter", str(exc)) from exc
    start_ns, end_ns = _window(lookback, start, end)
    query = queries.TraceQuery(
        service=service, operation=operation,
        tags=tuple((str(k), str(v).lower() if isinstance(v, bool) else str(v))
                   for k, v in wanted.items()),
        min_duration_ns=minimum, max_duration_ns=maximum, start_ns=start_ns, end_ns=end_ns,
        limit=limit or _DEFAULT_TRACES,
        exclude_roots=tuple(pattern for pattern in exclude or () if pattern.strip()))
    budget: int = request.app.state.settings.max_answer_bytes

    def search(store: TelemetryStore) -> tuple[list[str], queries.TraceSpans]:
        trace_ids = queries.find_trace_ids(store, query)
        share = budget // max(len(trace_ids), 1)
        return trace_ids, queries.spans_of(store, trace_ids, bytes_per_trace=share)

    trace_ids, found = await asyncio.to_thread(search, _store(request))
    bound = (f"a search's answer holds {_mib(budget)} of span data, shared by its "
             f"{len(trace_ids)} traces; open the trace alone for more")
    return _jaeger(queries.jaeger_traces(found, trace_ids, bound=bound))


def _trace_id(trace_id: str) -> str:
    trace_id = trace_id.lower()
    if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
        raise Problem(400, "bad-trace-id", f"'{trace_id[:40]}' is not a trace id "
                      "(32 hexadecimal digits).", field="trace_id")
    if trace_id == otlp.INVALID_TRACE_ID:
        raise Problem(400, "bad-trace-id", "The all-zero trace id is no trace: OpenTelemetry "
                      "calls it invalid, and the explorer keeps no span with it.",
                      field="trace_id")
    return trace_id


def _one_trace(request: Request, trace_id: str) -> queries.TraceSpans:
    """A whole trace, within the bound of one answer."""
    return queries.spans_of(_store(request), [trace_id],
                            bytes_per_trace=request.app.state.settings.max_answer_bytes)


def _one_trace_bound(request: Request) -> str:
    return (f"one trace's answer holds {_mib(request.app.state.settings.max_answer_bytes)} "
            "of span data")


@router.get("/api/traces/{trace_id}", tags=["jaeger"])
async def trace(trace_id: str, request: Request) -> dict[str, Any]:
    """One trace, in Jaeger's shape (cut short, with `warnings`, past
    KANSOKU_EXPLORER_MAX_ANSWER_BYTES of span data)."""
    wanted = _trace_id(trace_id)
    found = await asyncio.to_thread(_one_trace, request, wanted)
    if not found.spans:
        raise Problem(404, "trace-not-found", f"No spans of trace {wanted} have arrived.")
    return _jaeger(queries.jaeger_traces(found, [wanted], bound=_one_trace_bound(request)))


@router.get("/api/dependencies", tags=["jaeger"])
async def dependencies(
    request: Request,
    endTs: Annotated[int | None, Query(description="milliseconds")] = None,
    lookback: Annotated[int | None, Query(description="milliseconds")] = None,
) -> dict[str, Any]:
    """Calls between services: parent, child, callCount."""
    end_ns = endTs * 1_000_000 if endTs else time.time_ns()
    start_ns = end_ns - (lookback or 3_600_000) * 1_000_000
    edges = await _read(request, queries.dependencies, start_ns, end_ns)
    return _jaeger([{"parent": e["parent"], "child": e["child"], "callCount": e["calls"]}
                    for e in edges if e["kind"] != "database"])


# --- kansoku's JSON endpoints --------------------------------------------------------

def _lookback_window(lookback: str) -> tuple[int, int]:
    return _window(lookback, None, None)


def _step_ns(step: str) -> int:
    """A chart's time step ('30s', '1m') in ns; at least a second."""
    try:
        return max(parse_duration_ns(step, bare_unit="us", field="step"), 1_000_000_000)
    except DurationError as exc:
        raise Problem(400, "bad-parameter", str(exc), field="step") from exc


@router.get("/api/spans/{trace_id}", tags=["kansoku"])
async def trace_with_logs(trace_id: str, request: Request) -> dict[str, Any]:
    """One trace as a flat list of spans (oldest first, every column), with the log
    records written during it. Past KANSOKU_EXPLORER_MAX_ANSWER_BYTES of span data the
    newest spans are left out, and `warnings` says so (as it does past 2,000 log
    records)."""
    wanted = _trace_id(trace_id)
    found = await asyncio.to_thread(_one_trace, request, wanted)
    if not found.spans:
        raise Problem(404, "trace-not-found", f"No spans of trace {wanted} have arrived.")
    logs = await _read(request, queries.logs_of, wanted, queries.LOGS_OF_A_TRACE + 1)
    cut = found.cut_warning(wanted, len(found.spans), _one_trace_bound(request))
    warnings = [cut] if cut else []
    if len(logs) > queries.LOGS_OF_A_TRACE:
        logs = logs[:queries.LOGS_OF_A_TRACE]
        warnings.append(f"Only the trace's first {queries.LOGS_OF_A_TRACE:,} log records "
                        "are here: search the logs by trace id for the rest.")
    return {"data": {"trace_id": wanted, "spans": found.spans, "logs": logs,
                     "span_count": found.span_counts.get(wanted, len(found.spans)),
                     "warnings": warnings}}


@router.get("/api/red", tags=["kansoku"])
async def red(request: Request,
              service: Annotated[str | None, Query(max_length=200)] = None,
              by_route: bool = False,
              lookback: Annotated[str, Query(description="e.g. 15m, 1h")] = "1h",
              ) -> dict[str, Any]:
    """Rate, error % and p50/p90/p95/p99 latency of server spans, per service (and per
    route with `by_route`)."""
    start_ns, end_ns = _lookback_window(lookback)
    return {"data": await _read(request, queries.red, start_ns, end_ns, service, by_route)}


@router.get("/api/red/series", tags=["kansoku"])
async def red_series(request: Request, service: Annotated[str, Query(max_length=200)],
                     route: Annotated[str | None, Query(max_length=500)] = None,
                     lookback: str = "1h",
                     step: Annotated[str, Query(description="e.g. 1m")] = "1m",
                     ) -> dict[str, Any]:
    """Requests, errors and p95 per time step, for one service or route."""
    start_ns, end_ns = _lookback_window(lookback)
    step_ns = _step_ns(step)
    return {"data": await _read(request, queries.red_series, start_ns, end_ns, step_ns,
                                service, route)}


@router.get("/api/map", tags=["kansoku"])
async def service_map(request: Request, lookback: str = "1h") -> dict[str, Any]:
    """The service map: services, databases and caches as nodes; calls as edges with
    rate, errors and mean latency."""
    start_ns, end_ns = _lookback_window(lookback)
    edges = await _read(request, queries.dependencies, start_ns, end_ns)
    nodes = sorted({e["parent"] for e in edges} | {e["child"] for e in edges})
    databases = {e["child"] for e in edges if e["kind"] == "database"}
    return {"data": {
        "nodes": [{"id": n, "kind": "database" if n in databases else "service"}
                  for n in nodes],
        "edges": edges}}


@router.get("/api/logs", tags=["kansoku"])
async def logs(
    request: Request,
    service: Annotated[str | None, Query(max_length=200)] = None,
    min_severity: Annotated[int | None, Query(ge=1, le=24,
                                              description="9 info, 13 warn, 17 error")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the message")] = None,
    trace_id: Annotated[str | None, Query(max_length=32)] = None,
    lookback: str = "1h",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Log records, newest first; each carries its trace id, to open its trace."""
    start_ns, end_ns = _lookback_window(lookback)
    return {"data": await _read(request, queries.search_logs, start_ns=start_ns,
                                end_ns=end_ns, service=service, min_severity=min_severity,
                                text=q, trace_id=trace_id, limit=limit)}


@router.get("/api/metrics", tags=["kansoku"])
async def metric_names(request: Request, lookback: str = "1h") -> dict[str, Any]:
    """Every metric that arrived in the time range: name, kind, unit, and who sends it."""
    start_ns, end_ns = _lookback_window(lookback)
    return {"data": await _read(request, queries.metric_names, start_ns, end_ns)}


@router.get("/api/metrics/series", tags=["kansoku"])
async def metric_series(request: Request, name: Annotated[str, Query(max_length=200)],
                        service: Annotated[str | None, Query(max_length=200)] = None,
                        lookback: str = "1h",
                        step: Annotated[str, Query(description="e.g. 1m")] = "1m",
                        by: Annotated[str | None, Query(
                            max_length=200, description="An attribute to split the series "
                                                        "by, e.g. currency")] = None,
                        ) -> dict[str, Any]:
    """One metric per time step and service (and value of `by`): the increase of a
    counter (or of a histogram's count) in each step, the average of a gauge. Each
    point's `time_ns` is its step's start; steps are counted from the range's start,
    which the answer gives (`start_ns`, `end_ns`, `step_ns`), so the last one ends
    with the range."""
    start_ns, end_ns = _lookback_window(lookback)
    step_ns = _step_ns(step)
    return {"data": await _read(request, queries.metric_series, name, service, start_ns,
                                end_ns, step_ns, by),
            "start_ns": start_ns, "end_ns": end_ns, "step_ns": step_ns}


@router.get("/api/funnel", tags=["kansoku"])
async def funnel(request: Request, lookback: str = "1h") -> dict[str, Any]:
    """The shop's funnel in the time range: product views, units added to carts, orders
    placed, orders paid."""
    start_ns, end_ns = _lookback_window(lookback)
    steps = (("Product views", semconv.METRIC_PRODUCT_VIEWS, None),
             ("Units added to carts", semconv.METRIC_CART_ADDS, None),
             ("Orders placed", semconv.METRIC_ORDERS, "placed"),
             ("Orders paid", semconv.METRIC_ORDERS, "paid"))
    data = []
    for label, name, status in steps:
        total = await _read(request, queries.metric_increase, name, start_ns, end_ns,
                            {"status": status} if status else None)
        data.append({"step": label, "metric": name, "count": total})
    return {"data": data}


@router.get("/api/vitals", tags=["kansoku"])
async def vitals(request: Request, lookback: str = "1h") -> dict[str, Any]:
    """Real users' Web Vitals per page at p75, rated good / needs-improvement / poor by
    web-vitals' thresholds, and their JavaScript errors."""
    start_ns, end_ns = _lookback_window(lookback)
    return {"data": {
        "vitals": await _read(request, queries.web_vitals, start_ns, end_ns),
        "errors": await _read(request, queries.browser_errors, start_ns, end_ns),
        "thresholds": {name: {"good": good, "poor": poor}
                       for name, (good, poor) in queries.VITAL_THRESHOLDS.items()}}}


@router.get("/api/problems", tags=["kansoku"], response_model=Problems)
async def list_problems(
    request: Request,
    service: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(description=", ".join(problems.KINDS))] = None,
    lookback: Annotated[str, Query(description="Seen within, e.g. 1h, 2d")] = "24h",
    trace_id: Annotated[str | None, Query(
        description="Only the problems of this trace, each with its spans (lookback is "
                    "then ignored)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Problems the explorer detected in the traces (N+1 queries, slow queries,
    consecutive queries that could run in parallel, N+1 calls between services, error
    hotspots, endpoints slower than their baseline), the most recently seen first: each
    with its example trace, first and last seen, occurrences, impact, and what to do."""
    if kind and kind not in problems.KINDS:
        raise Problem(400, "bad-parameter", f"kind '{kind[:60]}' is none of "
                      f"{', '.join(problems.KINDS)}.", field="kind")
    if trace_id is not None:
        found = await _read(request, queries.problems_of_trace, _trace_id(trace_id))
        found = [row for row in found if (not service or row["service"] == service)
                 and (not kind or row["kind"] == kind)]
    else:
        start_ns, _ = _lookback_window(lookback)
        found = await _read(request, queries.problems, since_ns=start_ns, service=service,
                            kind=kind, limit=limit)
    return {"data": [problems.presented(row) for row in found]}


def _evaluator(request: Request) -> alerts.AlertEvaluator:
    evaluator: alerts.AlertEvaluator | None = request.app.state.alerts
    if evaluator is None:
        raise Problem(404, "alerts-disabled", "Alerting is off in this explorer "
                      "(KANSOKU_EXPLORER_ALERTS_ENABLED=false).")
    return evaluator


@router.get("/api/alerts", tags=["alerts"], response_model=Alerts)
async def list_alerts(
    request: Request,
    state: Annotated[alerts_state | None, Query(
        description="Only alerts in this state")] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The alerts: firing first, then pending, then those resolved within the last
    hour; each with its rule, state, service, value, since when, labels, a summary
    that says where to look, and links into the explorer (docs/alerts.md)."""
    _evaluator(request)
    found = [alerts.presented(row) for row in await _read(request, queries.alert_states)]
    found = [alert for alert in found if (not state or alert["state"] == state)
             and (not service or alert["service"] == service)]
    found.sort(key=lambda a: (alerts.STATE_ORDER.get(a["state"], 9), -a["since_ns"]))
    return {"data": found}


@router.get("/api/alerts/history", tags=["alerts"], response_model=AlertHistory)
async def alert_history(
    request: Request,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    lookback: Annotated[str, Query(description="e.g. 1h, 2d")] = "24h",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Every change of an alert's state (pending, firing, resolved, or inactive: a
    pending alert that went away), newest first."""
    _evaluator(request)
    start_ns, _ = _lookback_window(lookback)
    return {"data": await _read(request, queries.alert_history, since_ns=start_ns,
                                rule=rule, service=service, limit=limit)}


@router.get("/api/alerts/rules", tags=["alerts"])
async def alert_rules(request: Request) -> dict[str, Any]:
    """The rules in use, where they come from, and the last error reading the rules
    file (the previous rules stay in use while the file has a mistake)."""
    evaluator = _evaluator(request)
    rules = evaluator.rules
    return {"data": {
        "source": evaluator.rules_source, "load_error": evaluator.load_error,
        "rule_errors": dict(evaluator.rule_errors),
        "rules": [rule.model_dump(mode="json", by_alias=True) for rule in rules.rules],
        "slos": [slo.model_dump(mode="json") for slo in rules.slos],
        "notifications": {
            **rules.notifications.model_dump(mode="json", exclude={"receivers"}),
            "receivers": [{"name": r.name, "kind": "webhook" if r.webhook else "email"}
                          for r in rules.notifications.receivers]}}}


@router.get("/api/slos", tags=["alerts"], response_model=Slos)
async def list_slos(request: Request,
                    lookback: Annotated[str, Query(description="The charts' range, e.g. "
                                                               "6h, 24h")] = "24h",
                    step: Annotated[str | None, Query(
                        description="The charts' step, e.g. 5m (default: about 60 "
                                    "steps)")] = None,
                    ) -> dict[str, Any]:
    """The SLOs of the rules file: over each SLO's window the requests, the share that
    was good and the error budget remaining; the burn rate over 5m, 30m, 1h, 6h and 3d;
    and per step the burn rate and the budget remaining, for charts."""
    evaluator = _evaluator(request)
    start_ns, end_ns = _lookback_window(lookback)
    step_ns = _step_ns(step) if step else max((end_ns - start_ns) // 60, 1_000_000_000)

    def build(store: TelemetryStore) -> list[dict[str, Any]]:
        return [slos.report(store, slo, now_ns=end_ns, lookback_ns=end_ns - start_ns,
                            step_ns=step_ns) for slo in evaluator.rules.slos]
    return {"data": await asyncio.to_thread(build, _store(request))}


@router.get("/api/stats", tags=["kansoku"])
async def stats(request: Request) -> dict[str, Any]:
    """What arrived since the explorer started, what waits to be written, the size of
    the store, and how far problem detection got."""
    store = _store(request)
    size = await asyncio.to_thread(store.size_bytes)
    detector: problems.ProblemDetector | None = request.app.state.problems
    evaluator: alerts.AlertEvaluator | None = request.app.state.alerts
    return {"received": dict(store.received), "pending_rows": store.pending_rows,
            "store_bytes": size, "services": await _read(request, queries.services),
            "problems": detector.stats() if detector else None,
            "alerts": evaluator.stats() if evaluator else None}
